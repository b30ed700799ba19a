"""``RemoteContext``: the context every ``multiprocessing`` name resolves to.

Shaped like the stdlib's ``multiprocessing.context``: a context object whose
factory methods import their classes lazily. Every start method (``fork``,
``spawn``, ``forkserver``) maps to a remote context, since a library that asks
for a start method means "a process"; ``get_start_method()`` still answers
with the method that was asked for. Factories this package does not replace
yet are the stdlib's ``BaseContext`` ones.
"""

from __future__ import annotations

from multiprocessing import context as _mp_context

from . import config
from .process import Process as _Process

START_METHODS = ("fork", "spawn", "forkserver")


class RemoteContext(_mp_context.BaseContext):
    """A ``multiprocessing`` context whose processes run remotely."""

    Process = _Process

    def __init__(self, name: str) -> None:
        self._name = name

    def get_context(self, method: str | None = None) -> RemoteContext:
        if method is None:
            return self
        return _context_for(method)

    def get_start_method(self, allow_none: bool = False) -> str:
        return self._name

    def set_start_method(self, method: str | None, force: bool = False) -> None:
        raise ValueError("cannot set start method of concrete context")

    def get_all_start_methods(self) -> list[str]:
        return default_context.get_all_start_methods()

    def cpu_count(self) -> int:
        """The backend's concurrency: apps that size pools by it scale out."""
        return config.settings().concurrency

    def _check_available(self) -> None:
        pass


class RemoteDefaultContext(RemoteContext):
    """The module-level context behind ``multiprocessing.get_context`` & co."""

    def __init__(self) -> None:
        super().__init__(_mp_context._default_context.get_start_method(allow_none=False))
        self._actual: RemoteContext | None = None

    def get_context(self, method: str | None = None) -> RemoteContext:
        if method is None:
            if self._actual is None:
                self._actual = _context_for(self._name)
            return self._actual
        return _context_for(method)

    def get_start_method(self, allow_none: bool = False) -> str | None:
        if self._actual is None:
            if allow_none:
                return None
            self._actual = _context_for(self._name)
        return self._actual._name

    def set_start_method(self, method: str | None, force: bool = False) -> None:
        if self._actual is not None and not force:
            raise RuntimeError("context has already been set")
        if method is None and force:
            self._actual = None
            return
        self._actual = _context_for(method)

    def get_all_start_methods(self) -> list[str]:
        return _mp_context._default_context.get_all_start_methods()


_contexts = {name: RemoteContext(name) for name in START_METHODS}


def _context_for(method: str | None) -> RemoteContext:
    try:
        return _contexts[method]
    except KeyError:
        raise ValueError(f"cannot find context for {method!r}") from None


default_context = RemoteDefaultContext()
