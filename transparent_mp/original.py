"""The stdlib's own objects, reachable while the hook is installed.

``from transparent_mp.original import multiprocessing`` gives a namespace in
which every name the hook replaced is the original again, e.g.
``multiprocessing.Process`` is the stdlib's local process class.
"""

from __future__ import annotations

import importlib

from . import hook


class OriginalModule:
    """Attribute access to ``module_name`` as it was before the hook patched it."""

    def __init__(self, module_name: str) -> None:
        self._module_name = module_name

    def __getattr__(self, name: str) -> object:
        return hook.original(self._module_name, name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self._module_name))

    def __repr__(self) -> str:
        return f"<original {self._module_name}>"


multiprocessing = OriginalModule("multiprocessing")
