"""Install transparent_mp's import hook at interpreter start.

Put this folder first on ``PYTHONPATH``
(``PYTHONPATH=$(python -m transparent_mp --sitecustomize-dir) python app.py``).
A ``sitecustomize`` that was already on the path is found and run as well, so
tools and users that rely on their own keep it.
"""

import importlib.machinery
import importlib.util
import os
import sys


def _chain_next_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["_transparent_mp_chained_sitecustomize"] = module
    spec.loader.exec_module(module)


def _install() -> None:
    if getattr(sys, "_transparent_mp_sitecustomize", False):
        return
    sys._transparent_mp_sitecustomize = True
    try:
        import transparent_mp

        transparent_mp.install()
    except Exception as exc:  # never break the interpreter's start
        sys.stderr.write(f"transparent_mp: could not install the import hook: {exc!r}\n")
    _chain_next_sitecustomize()


_install()
