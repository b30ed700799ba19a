"""The import hook: substitute remote-backed names into the real modules.

A ``sys.meta_path`` finder lets each module of :data:`SUBSTITUTIONS` load as
usual and then replaces the listed names in it; modules imported before
:func:`install` are patched at once. :func:`uninstall` puts every original
back; :func:`original` reaches one while the hook is installed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from types import ModuleType

_CONTEXT = "transparent_mp.context:default_context."

#: Every redirection, one row each: (module, name, replacement). A replacement
#: ``"pkg.mod:obj.attr"`` is resolved when the module is patched.
SUBSTITUTIONS: tuple[tuple[str, str, str], ...] = (
    ("multiprocessing", "Process", _CONTEXT + "Process"),
    ("multiprocessing", "get_context", _CONTEXT + "get_context"),
    ("multiprocessing", "get_start_method", _CONTEXT + "get_start_method"),
    ("multiprocessing", "set_start_method", _CONTEXT + "set_start_method"),
    ("multiprocessing", "get_all_start_methods", _CONTEXT + "get_all_start_methods"),
    ("multiprocessing", "cpu_count", _CONTEXT + "cpu_count"),
    ("multiprocessing", "Pipe", _CONTEXT + "Pipe"),
    ("multiprocessing", "Lock", _CONTEXT + "Lock"),
    ("multiprocessing", "RLock", _CONTEXT + "RLock"),
    ("multiprocessing", "Condition", _CONTEXT + "Condition"),
    ("multiprocessing", "Semaphore", _CONTEXT + "Semaphore"),
    ("multiprocessing", "BoundedSemaphore", _CONTEXT + "BoundedSemaphore"),
    ("multiprocessing", "Event", _CONTEXT + "Event"),
    ("multiprocessing", "Barrier", _CONTEXT + "Barrier"),
    ("multiprocessing", "Queue", _CONTEXT + "Queue"),
    ("multiprocessing", "JoinableQueue", _CONTEXT + "JoinableQueue"),
    ("multiprocessing", "SimpleQueue", _CONTEXT + "SimpleQueue"),
    ("multiprocessing", "Pool", _CONTEXT + "Pool"),
    ("multiprocessing.pool", "Pool", "transparent_mp.pool:Pool"),
    ("multiprocessing.pool", "ThreadPool", "transparent_mp.pool:ThreadPool"),
    ("multiprocessing", "RawValue", _CONTEXT + "RawValue"),
    ("multiprocessing", "RawArray", _CONTEXT + "RawArray"),
    ("multiprocessing", "Value", _CONTEXT + "Value"),
    ("multiprocessing", "Array", _CONTEXT + "Array"),
    ("multiprocessing", "Manager", _CONTEXT + "Manager"),
    ("multiprocessing.connection", "wait", "transparent_mp.connection:wait"),
    ("multiprocessing.connection", "Pipe", "transparent_mp.connection:Pipe"),
    ("multiprocessing.managers", "listener_client", "transparent_mp.managers:listener_client"),
    ("multiprocessing.managers", "get_context", _CONTEXT + "get_context"),
    ("multiprocessing.heap", "BufferWrapper", "transparent_mp.heap:BufferWrapper"),
    # (not ``concurrent.futures`` itself: asyncio imports it, and its package
    # imports ``.process`` only when ProcessPoolExecutor is first used)
    ("concurrent.futures.process", "ProcessPoolExecutor",
     "transparent_mp.futures:ProcessPoolExecutor"),
    ("joblib.parallel", "BACKENDS", "transparent_mp.integrations.joblib:BACKENDS"),
    ("pandarallel.core", "MEMORY_FS_ROOT",
     "transparent_mp.integrations.pandarallel:MEMORY_FS_ROOT"),
    *(("multiprocessing.sharedctypes", name, "transparent_mp.sharedctypes:" + name)
      for name in ("RawValue", "RawArray", "Value", "Array", "copy", "synchronized")),
)

#: The public names of the patched stdlib modules that stay the stdlib's, and why.
#: With :data:`SUBSTITUTIONS` they cover each module's ``__all__`` on every
#: supported version (``tests/test_compat.py`` fails on a name a version adds).
KEPT: dict[str, dict[str, str]] = {
    "multiprocessing": {
        **dict.fromkeys(("AuthenticationError", "BufferTooShort", "ProcessError",
                         "TimeoutError"), "exceptions: ours raise the stdlib's own"),
        **dict.fromkeys(("active_children", "current_process", "parent_process"),
                        "the stdlib's process table, which our Process objects are in"),
        **dict.fromkeys(("allow_connection_pickling", "freeze_support", "get_logger",
                         "log_to_stderr", "reducer", "set_executable",
                         "set_forkserver_preload"),
                        "local settings; workers receive the logger's as spawn passes them"),
    },
    "multiprocessing.connection": dict.fromkeys(
        ("Client", "Listener"), "sockets between local processes, local on purpose"),
    "multiprocessing.managers": dict.fromkeys(
        ("BaseManager", "SyncManager", "BaseProxy", "Token", "SharedMemoryManager"),
        "the stdlib's managers, served through our listener_client"),
    "concurrent.futures": {
        **dict.fromkeys(("ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "Executor",
                         "Future", "as_completed", "wait", "BrokenExecutor",
                         "CancelledError", "InvalidStateError", "TimeoutError"),
                        "the futures API our executor implements"),
        "ProcessPoolExecutor": "replaced in concurrent.futures.process, where the package "
                               "imports it from (and only once it is used)",
        "ThreadPoolExecutor": "threads, local on purpose",
        "InterpreterPoolExecutor": "3.14: subinterpreters of this process, local on purpose",
    },
}

_MODULES = frozenset(row[0] for row in SUBSTITUTIONS)
#: Our modules that replacements come from: a row waits for its module to finish
#: importing when that module is what imported the patched one.
_TARGETS = frozenset(row[2].partition(":")[0] for row in SUBSTITUTIONS)
_originals: dict[tuple[str, str], object] = {}
_pending: list[tuple[str, str, str]] = []
_lock = threading.RLock()
_finder: _Finder | None = None
_busy = threading.local()


def _resolve(target: str) -> object:
    module_name, _, path = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _initializing(module_name: str) -> bool:
    module = sys.modules.get(module_name)
    return module is not None and getattr(module.__spec__, "_initializing", False)


def _apply(module: ModuleType, name: str, target: str) -> None:
    key = (module.__name__, name)
    if key not in _originals:
        _originals[key] = getattr(module, name, None)
    setattr(module, name, _resolve(target))


def _patch(module: ModuleType) -> None:
    with _lock:
        for row in SUBSTITUTIONS:
            module_name, name, target = row
            if module_name != module.__name__:
                continue
            if _initializing(target.partition(":")[0]):
                _pending.append(row)  # applied when that module has finished importing
            else:
                _apply(module, name, target)


def _apply_pending() -> None:
    with _lock:
        for row in list(_pending):
            module_name, name, target = row
            if not _initializing(target.partition(":")[0]) and module_name in sys.modules:
                _pending.remove(row)
                _apply(sys.modules[module_name], name, target)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it loaded."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if _finder is not None:
            if module.__name__ in _MODULES:
                _patch(module)
            _apply_pending()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the real spec of a patched module and wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if (fullname not in _MODULES and fullname not in _TARGETS) or \
                getattr(_busy, "name", None) == fullname:
            return None
        _busy.name = fullname
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            _busy.name = None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Install the hook; a second call does nothing."""
    global _finder
    with _lock:
        if _finder is not None:
            return
        _finder = _Finder()
        sys.meta_path.insert(0, _finder)
        for module_name in sorted(_MODULES):
            module = sys.modules.get(module_name)
            if module is not None:
                _patch(module)


def uninstall() -> None:
    """Remove the hook and restore every original name."""
    global _finder
    with _lock:
        if _finder is None:
            return
        sys.meta_path.remove(_finder)
        _finder = None
        for (module_name, name), value in _originals.items():
            module = sys.modules.get(module_name)
            if module is not None:
                setattr(module, name, value)
        _originals.clear()
        _pending.clear()


def is_installed() -> bool:
    return _finder is not None


def original(module_name: str, name: str) -> object:
    """The unpatched ``module_name.name`` (the current one if it was never patched)."""
    with _lock:
        key = (module_name, name)
        if key in _originals:
            return _originals[key]
    return getattr(importlib.import_module(module_name), name)
