"""Fork semantics on a remote worker: a snapshot of the parent, rebuilt in the child.

A forked child starts with a copy of its parent's memory. A remote worker
cannot, so at ``Process.start()`` the parent takes a *snapshot* of what a fork
child relies on: the namespaces of ``__main__`` and of the app's own modules
(see :mod:`.spawn`), ``sys.argv``, ``sys.path``, ``os.environ``, the logging
configuration and numpy's global random state. The child rebuilds those
modules from it without running the main script.

* Each global is pickled on its own and named by the hash of its pickle, so a
  value that did not change is neither stored nor fetched again.
* A global that another global (or the Process object) refers to travels by
  name, so identities hold: a function of ``__main__`` keeps ``__main__``'s
  namespace as its globals, and an initializer that sets a global is seen by
  the tasks.
* ``threading`` locks arrive as fresh ones, as a fork child gets its own copies.
  Anything else that does not pickle (an open file, a socket, a connection, a
  generator) arrives as an :class:`Unavailable` placeholder that raises a clear
  error, naming it, when the remote code uses it.
"""

from __future__ import annotations

import _thread
import ctypes
import functools
import hashlib
import importlib.util
import io
import logging
import marshal
import os
import pickle
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cloudpickle

from . import compat, serialize, spawn

#: Pickles at least this large are stored as blobs of their own; smaller ones
#: travel inside the manifest.
INLINE_LIMIT = 2048
#: Above this size a snapshot is logged as a warning, with its largest parts.
WARN_SIZE = 100 * 10**6
#: Module attributes a child gets afresh rather than from the parent.
_OWN_DUNDERS = frozenset({"__builtins__", "__loader__", "__spec__", "__file__", "__cached__",
                          "__name__", "__path__", "__warningregistry__"})
#: Environment variables a worker's platform owns (its credentials, its runtime, its
#: interpreter's paths): the worker keeps its own.
_PLATFORM_ENV_PREFIXES = ("AWS_", "LAMBDA_", "_HANDLER", "_X_AMZN", "TRANSPARENT_MP_")
_PLATFORM_ENV = frozenset({"PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "HOME",
                           "PWD", "OLDPWD", "TMPDIR", "TEMP", "TMP", "SHLVL", "_"})


#: Values that are never referred to by name (identity does not matter, or they
#: are modules, imported by name anyway).
_ATOMIC = (int, float, complex, str, bytes, bool, type(None), types.ModuleType)
_LOCK_TYPES = {type(_thread.allocate_lock()): _thread.allocate_lock, _thread.RLock: _thread.RLock}


def _platform_owned(key: str) -> bool:
    return key in _PLATFORM_ENV or key.startswith(_PLATFORM_ENV_PREFIXES)


class StateUnavailable(RuntimeError):
    """Raised when a worker uses a part of the parent's state that could not travel."""


class Unavailable:
    """Stands in for what could not travel from the parent; any use raises."""

    def __init__(self, what: str, type_name: str, reason: str) -> None:
        object.__setattr__(self, "_unavailable", (what, type_name, reason))

    def _raise(self, *args: object, **kwargs: object):
        what, type_name, reason = object.__getattribute__(self, "_unavailable")
        raise StateUnavailable(
            f"{what} (a {type_name}) did not travel to this remote process: {reason}. "
            "A forked child inherits it, but a remote worker gets a copy of the parent's "
            "state through pickling; create it in the child instead (in the process's "
            "target, or in a Pool initializer)")

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols probed by pickle, copy, inspect...
        self._raise()

    def __repr__(self) -> str:
        what, type_name, _ = object.__getattribute__(self, "_unavailable")
        return f"<unavailable in this remote process: {what} ({type_name})>"

    def __reduce__(self):
        return Unavailable, object.__getattribute__(self, "_unavailable")

    __call__ = __setattr__ = __delattr__ = __getitem__ = __setitem__ = __delitem__ = _raise
    __iter__ = __next__ = __len__ = __contains__ = __enter__ = __exit__ = _raise
    __bool__ = __lt__ = __le__ = __gt__ = __ge__ = _raise
    __hash__, __eq__ = object.__hash__, object.__eq__  # containers may hold one
    __add__ = __sub__ = __mul__ = __truediv__ = __int__ = __float__ = __index__ = _raise


# -- functions rebuilt against the child's module namespaces --

def _make_function(module: str, code: bytes, name: str, ncells: int):
    target = sys.modules[module]
    closure = tuple(types.CellType() for _ in range(ncells)) or None
    return types.FunctionType(_relocated(marshal.loads(code), getattr(target, "__file__", None)),
                              target.__dict__, name, None, closure)


def _relocated(code: types.CodeType, filename: str | None) -> types.CodeType:
    """``code`` with the parent's file name of its module replaced by ``filename`` (the
    module's source in this worker), so that tracebacks show its lines."""
    if filename is None:
        return code
    original = code.co_filename

    def swap(c: types.CodeType) -> types.CodeType:
        if c.co_filename != original:
            return c
        consts = tuple(swap(k) if isinstance(k, types.CodeType) else k for k in c.co_consts)
        return c.replace(co_filename=filename, co_consts=consts)

    return swap(code)


_EMPTY_CELL = "<empty cell>"


def _set_function_state(func: types.FunctionType, state: tuple) -> None:
    defaults, kwdefaults, qualname, annotations, doc, attrs, module, cells = state
    func.__defaults__, func.__kwdefaults__, func.__qualname__ = defaults, kwdefaults, qualname
    func.__annotations__, func.__doc__, func.__module__ = annotations, doc, module
    func.__dict__.update(attrs)
    for cell, value in zip(func.__closure__ or (), cells, strict=True):
        if value is not _EMPTY_CELL:
            cell.cell_contents = value
    return func


def _function_reduce(func: types.FunctionType, module: str) -> tuple:
    cells = []
    for cell in func.__closure__ or ():
        try:
            cells.append(cell.cell_contents)
        except ValueError:
            cells.append(_EMPTY_CELL)
    state = (func.__defaults__, func.__kwdefaults__, func.__qualname__, func.__annotations__,
             func.__doc__, dict(func.__dict__), func.__module__, tuple(cells))
    # marshal keeps what cloudpickle drops (the file name, for tracebacks); the
    # worker runs the same Python version (the version guard sees to it)
    return (_make_function, (module, marshal.dumps(func.__code__), func.__name__, len(cells)),
            state,
            None, None, _set_function_state)


def _stopped_thread(name: str, daemon: bool) -> threading.Thread:
    """A thread of the parent, as a fork child sees it: there, but not running."""
    return threading.Thread(name=name, daemon=daemon)


def _shared_view_reduce(array) -> tuple | None:
    """A numpy array viewing shared memory (``np.ctypeslib.as_array(raw_array)``) as a
    view of that shared object in the child, as a fork child sees it, not a copy."""
    base = array
    while type(base).__name__ == "ndarray":
        base = base.base
    owner = base.obj if isinstance(base, memoryview) else None
    if not getattr(type(owner), "__shared_memory__", False):
        return None
    offset = array.__array_interface__["data"][0] - ctypes.addressof(owner)
    return _shared_view, (owner, array.dtype.str, array.shape, array.strides, offset)


def _shared_view(owner: object, dtype: str, shape: tuple, strides: tuple, offset: int):
    import numpy

    return numpy.ndarray(shape, dtype, buffer=owner, offset=offset, strides=strides)


def _lru_cached(func: Callable, maxsize: int | None, typed: bool) -> Callable:
    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


_CTYPES_STRUCT_TYPES = (type(ctypes.Structure), type(ctypes.Union))


def _ctypes_struct_reduce(cls: type) -> tuple:
    """A ctypes Structure or Union class, rebuilt from its ``_fields_`` (its field
    descriptors do not pickle)."""
    namespace = {k: v for k, v in vars(cls).items()
                 if k not in ("__dict__", "__weakref__") and type(v).__name__ != "CField"}
    union = isinstance(cls, _CTYPES_STRUCT_TYPES[1])
    return _make_ctypes_struct, (union, cls.__name__, cls.__bases__, namespace)


def _make_ctypes_struct(union: bool, name: str, bases: tuple, namespace: dict) -> type:
    return _CTYPES_STRUCT_TYPES[union](name, bases, namespace)


class _StatePickler(serialize.Pickler):
    """Pickles one global (or the Process object): other globals by name, functions
    of the snapshot's modules against the child's namespaces, locks afresh, and
    what ``swap`` names as placeholders."""

    main_by_reference = True

    def __init__(self, file, snap: Snapshot, root: object, swap: dict[int, tuple]) -> None:
        super().__init__(file, protocol=serialize.PROTOCOL)
        self.snap, self.root, self.swap = snap, root, swap

    def _defined_here(self, obj: object) -> bool:
        """Whether ``obj`` is the root global and was defined where it is one (a class
        or function of the module, which must travel by value, not by its name)."""
        home = self.snap.refs.get(id(obj))
        return (obj is self.root and home is not None
                and getattr(obj, "__module__", None) == home[1]
                and getattr(obj, "__qualname__", None) == home[2])

    def persistent_id(self, obj: object):
        found = self.swap.get(id(obj))
        if found is not None:
            return ("u", *found)
        if obj is self.root:
            return None
        return self.snap.refs.get(id(obj))

    def reducer_override(self, obj: object):
        make_lock = _LOCK_TYPES.get(type(obj))
        if make_lock is not None:
            return make_lock, ()
        if isinstance(obj, threading.Thread):
            return _stopped_thread, (obj.name, obj.daemon)
        if type(obj).__name__ == "ndarray":
            view = _shared_view_reduce(obj)
            if view is not None:
                return view
        if isinstance(obj, types.FunctionType):
            module = self.snap.module_of_dict.get(id(obj.__globals__))
            if module is not None:
                return _function_reduce(obj, module)
        elif isinstance(obj, type) and self._defined_here(obj):
            if isinstance(obj, _CTYPES_STRUCT_TYPES):
                return _ctypes_struct_reduce(obj)
            return cloudpickle.cloudpickle._dynamic_class_reduce(obj)
        elif isinstance(obj, compat.lru_cache_wrapper) and self._defined_here(obj):
            params = obj.cache_parameters()
            return _lru_cached, (obj.__wrapped__, params["maxsize"], params["typed"])
        return super().reducer_override(obj)


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file, resolve: Callable[[str, str], object]) -> None:
        super().__init__(file)
        self.resolve = resolve

    def persistent_load(self, pid):
        if pid[0] == "u":
            return Unavailable(*pid[1:])
        return self.resolve(pid[1], pid[2])

    def find_class(self, module: str, name: str):
        if module in _restoring and "." not in name:
            return self.resolve(module, name)
        return super().find_class(module, name)


# -- taking a snapshot (in the parent) --

@dataclass
class Snapshot:
    """What a fork child of this process would inherit, pickled."""

    #: id of each global's value -> ("g", module, name), for references by name.
    refs: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    module_of_dict: dict[int, str] = field(default_factory=dict)
    #: The blobs too large for the manifest: digest -> pickle.
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    #: The manifest, pickled (what is stored, and named by its hash).
    manifest_pickle: bytes = b""
    #: What became a placeholder, described.
    unavailable: list[str] = field(default_factory=list)

    def dumps(self, obj: object, what: str) -> bytes:
        """Pickle ``obj`` against this snapshot; what cannot travel becomes a placeholder."""
        return _dumps_tolerant(self, obj, what, self.unavailable)

    def size(self) -> int:
        return sum(len(b) for b in self.blobs.values()) + len(self.manifest_pickle)


def _dumps(snap: Snapshot, obj: object, swap: dict[int, tuple]) -> bytes:
    buf = io.BytesIO()
    _StatePickler(buf, snap, obj, swap).dump(obj)
    return buf.getvalue()


def _dumps_tolerant(snap: Snapshot, obj: object, what: str, unavailable: list[str]) -> bytes:
    try:
        return _dumps(snap, obj, {})
    except Exception:
        pass
    swap: dict[int, tuple] = {}
    _find_unpicklable(snap, obj, obj, what, swap, depth=0)
    for desc, type_name, reason in swap.values():
        unavailable.append(f"{desc} ({type_name}): {reason}")
    return _dumps(snap, obj, swap)


def _children(obj: object, path: str) -> list[tuple[str, object]]:
    """The parts ``obj`` pickles through, each with its path for messages."""
    if isinstance(obj, dict):
        return [(f"{path}[{k!r}]", v) for k, v in obj.items()] + \
               [(f"{path} key {k!r}", k) for k in obj]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, types.MethodType):
        return [(f"{path}.__self__", obj.__self__)]
    if isinstance(obj, type):
        return [(f"{path}.{k}", v) for k, v in vars(obj).items()]
    if isinstance(obj, types.FunctionType):
        parts = [(f"{path} (closure variable {name!r})", cell.cell_contents)
                 for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (),
                                       strict=False)
                 if _cell_filled(cell)]
        return parts + [(f"{path} (default)", d) for d in obj.__defaults__ or ()]
    try:
        reduced = obj.__reduce_ex__(serialize.PROTOCOL)
    except Exception:
        return []
    if not isinstance(reduced, tuple):
        return []
    parts = [(f"{path} (argument {i})", a) for i, a in enumerate(reduced[1] or ())
             if not isinstance(a, type)]
    state = reduced[2] if len(reduced) > 2 else None
    if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slots)
        for part in state:
            if isinstance(part, dict):
                parts += [(f"{path}.{k}", v) for k, v in part.items()]
    elif isinstance(state, dict):
        parts += [(f"{path}.{k}", v) for k, v in state.items()]
    elif state is not None:
        parts.append((f"{path} (state)", state))
    for extra in reduced[3:5]:
        if extra is not None:
            parts += [(f"{path}[{i}]", v) for i, v in enumerate(extra)]
    return parts


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _find_unpicklable(snap: Snapshot, root: object, obj: object, path: str,
                      swap: dict[int, tuple], depth: int) -> None:
    """Mark in ``swap`` the deepest parts of ``obj`` that do not pickle."""

    def fails() -> Exception | None:
        try:
            buf = io.BytesIO()
            pickler = _StatePickler(buf, snap, root, swap)
            if obj is not root:
                pickler.root = obj if snap.refs.get(id(obj)) is None else root
            pickler.dump(obj)
        except Exception as exc:
            return exc
        return None

    if id(obj) in swap or fails() is None:
        return
    if depth < 40:
        for sub_path, child in _children(obj, path):
            if not isinstance(child, _ATOMIC):
                _find_unpicklable(snap, root, child, sub_path, swap, depth + 1)
    error = fails()
    if error is not None:
        swap[id(obj)] = (path, f"{type(obj).__module__}.{type(obj).__qualname__}",
                         f"{type(error).__name__}: {error}")


def _logging_state() -> dict:
    """Levels of the root and named loggers, and their handlers to stdout/stderr."""
    def describe(logger: logging.Logger) -> dict:
        handlers = []
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            name = {id(sys.stdout): "stdout", id(sys.stderr): "stderr",
                    id(sys.__stdout__): "stdout", id(sys.__stderr__): "stderr"}.get(id(stream))
            if type(handler) is not logging.StreamHandler or name is None:
                continue
            fmt = handler.formatter
            form, style = compat.formatter_spec(fmt) if fmt else (None, None)
            handlers.append({"stream": name, "level": handler.level, "format": form,
                             "datefmt": fmt.datefmt if fmt else None, "style": style})
        return {"level": logger.level, "propagate": logger.propagate,
                "disabled": logger.disabled, "handlers": handlers}

    loggers = {"": describe(logging.getLogger())}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not name.startswith("transparent_mp"):
            loggers[name] = describe(logger)
    return loggers


def take() -> Snapshot:
    """Snapshot this process's state as a fork child would inherit it."""
    snap = Snapshot()
    modules = {"__main__": sys.modules["__main__"], **spawn.app_modules()}
    for name, module in modules.items():
        snap.module_of_dict[id(module.__dict__)] = name
        for attr, value in list(module.__dict__.items()):
            if attr in _OWN_DUNDERS or isinstance(value, _ATOMIC):
                continue
            if getattr(value, "__module__", None) == name and \
                    getattr(value, "__qualname__", None) == attr:
                snap.refs[id(value)] = ("g", name, attr)  # where it was defined wins
            else:
                snap.refs.setdefault(id(value), ("g", name, attr))
    described = []
    sizes: list[tuple[int, str]] = []
    current: set[int] = set()
    for name, module in modules.items():
        attrs: dict[str, tuple] = {}
        for attr, value in list(module.__dict__.items()):
            if attr in _OWN_DUNDERS:
                continue
            cached = _immutable.get(id(value))
            if cached is not None and cached[0] is value:
                _, digest, body = cached
            else:
                body = snap.dumps(value, f"global {attr!r} of module {name}")
                digest = digest_of(body) if len(body) >= INLINE_LIMIT else None
                if digest is not None and type(value) in (bytes, str):
                    _immutable[id(value)] = (value, digest, body)
            sizes.append((len(body), f"{name}.{attr}"))
            current.add(id(value))
            if digest is None:
                attrs[attr] = ("i", body)
            else:
                snap.blobs[digest] = body
                attrs[attr] = ("b", digest)
        described.append({"name": name, "file": _module_file(name, module),
                          "package": module.__dict__.get("__package__"),
                          "is_package": hasattr(module, "__path__"), "attrs": attrs})
    for key in _immutable.keys() - current:  # let go of values no longer global
        del _immutable[key]
    numpy = sys.modules.get("numpy")
    snap.manifest = {
        "modules": described,
        "argv": list(sys.argv),
        "path": _portable_path(modules),
        "environ": {k: v for k, v in os.environ.items() if not _platform_owned(k)},
        "logging": _logging_state(),
        "numpy_random": numpy.random.get_state() if numpy is not None else None,
    }
    snap.manifest_pickle = pickle.dumps(snap.manifest, protocol=serialize.PROTOCOL)
    total = snap.size()
    from .util import logger

    logger.info("fork snapshot: %d globals, %.1f MB", len(sizes), total / 1e6)
    if snap.unavailable:
        logger.info("fork snapshot: placeholders for what does not pickle: %s",
                    "; ".join(snap.unavailable))
    if total > WARN_SIZE:
        largest = ", ".join(f"{n} {s / 1e6:.1f} MB" for s, n in sorted(sizes)[::-1][:5])
        _warn_once(f"the fork snapshot of this process's globals is {total / 1e6:.0f} MB "
                   f"(largest: {largest}); each new worker process fetches what it has not "
                   "seen, so starts are slower than they need be. Pass large data as "
                   "arguments, or use the 'spawn' start method")
    return snap


#: Large immutable globals (bytes, str) already pickled: id -> (value, digest, pickle).
_immutable: dict[int, tuple[object, str, bytes]] = {}


def digest_of(body: bytes) -> str:
    """The content address of a pickle (SHA-256: the fastest hash here, in hardware)."""
    return hashlib.sha256(body).hexdigest()[:32]


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    from .util import logger

    if not _warned:
        _warned.add(message)
        logger.warning(message)


def _module_file(name: str, module: types.ModuleType) -> str | None:
    """Where the module's source lies in the worker's code directory, relative."""
    if name == "__main__":
        main = spawn.preparation_data()["main"]
        if main is None:
            return None
        if main["kind"] == "path":
            return main["file"]
        return spawn.relative_path(main["name"], module)
    return spawn.relative_path(name, module)


def _portable_path(modules: dict[str, types.ModuleType]) -> list[str | None]:
    """``sys.path``, with the directories of the app's ``modules`` as None (the
    worker's code dir)."""
    roots = spawn.app_roots(modules)
    out: list[str | None] = []
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        item = None if real in roots else entry
        if item not in out:
            out.append(item)
    return out


# -- rebuilding it (in the child) --

_restoring: set[str] = set()
#: Shared objects (by store key) rebuilt since :func:`restore` began, until the Process
#: object is loaded: each arrives once, as one object, as inheritance gives one.
_arrivals: dict[str, object] | None = None


def arrivals() -> dict[str, object] | None:
    """Where shared objects arriving with a fork child's snapshot are memoised, if now."""
    return _arrivals


def restore(manifest: dict, blobs: dict[str, bytes], code_dir: Path) -> None:
    """Make this process the fork child the snapshot describes (without running main).
    :func:`loads` then loads its Process object."""
    global _arrivals
    _arrivals = {}
    sys.argv = list(manifest["argv"])
    sys.path[:] = _worker_path(manifest["path"], code_dir)
    env = manifest["environ"]
    for key in [k for k in os.environ if k not in env and not _platform_owned(k)]:
        del os.environ[key]
    os.environ.update(env)
    _restore_logging(manifest["logging"])
    modules = {}
    for info in manifest["modules"]:
        module = types.ModuleType(info["name"])
        module.__builtins__ = __builtins__
        if info["file"] is not None:
            path = code_dir / info["file"]
            module.__file__ = str(path)
            if info["name"] != "__main__":
                module.__spec__ = importlib.util.spec_from_file_location(
                    info["name"], path,
                    submodule_search_locations=[str(path.parent)] if info["is_package"] else None)
                if info["is_package"]:
                    module.__path__ = [str(path.parent)]
        if info["name"] == "__main__":
            module.__spec__ = None
        modules[info["name"]] = (module, info["attrs"])
        sys.modules[info["name"]] = module
    _restoring.clear()
    _restoring.update(modules)
    done: dict[tuple[str, str], object] = {}
    busy: set[tuple[str, str]] = set()

    def resolve(module: str, name: str) -> object:
        key = (module, name)
        if key in done:
            return done[key]
        target, attrs = modules[module]
        if name not in attrs:
            raise AttributeError(f"module {module!r} of the parent has no global {name!r}")
        if key in busy:
            raise pickle.UnpicklingError(f"{module}.{name} refers back to itself through "
                                         "other globals")
        busy.add(key)
        kind, data = attrs[name]
        body = data if kind == "i" else blobs[data]
        try:
            value = _StateUnpickler(io.BytesIO(body), resolve).load()
        except Exception as exc:
            value = Unavailable(f"global {name!r} of module {module}", "value",
                                f"it could not be rebuilt here: {type(exc).__name__}: {exc}")
        busy.discard(key)
        done[key] = value
        setattr(target, name, value)
        return value

    for name, (_, attrs) in modules.items():
        for attr in attrs:
            resolve(name, attr)
    _restoring.clear()
    if manifest.get("numpy_random") is not None:
        import numpy

        numpy.random.set_state(manifest["numpy_random"])


def _worker_path(path: list[str | None], code_dir: Path) -> list[str]:
    out = [str(code_dir) if entry is None else entry for entry in path]
    if str(code_dir) not in out:
        out.insert(0, str(code_dir))
    return out + [p for p in sys.path if p not in out]


def _restore_logging(loggers: dict) -> None:
    for name, state in loggers.items():
        logger = logging.getLogger(name or None)
        logger.setLevel(state["level"])
        logger.propagate, logger.disabled = state["propagate"], state["disabled"]
        for handler in list(logger.handlers):  # the parent's handlers, not this platform's
            logger.removeHandler(handler)
        for spec in state["handlers"]:
            handler = logging.StreamHandler(getattr(sys, spec["stream"]))
            handler.setLevel(spec["level"])
            if spec["format"] is not None or spec["datefmt"] is not None:
                style = {"PercentStyle": "%", "StrFormatStyle": "{",
                         "StringTemplateStyle": "$"}.get(spec["style"], "%")
                handler.setFormatter(logging.Formatter(spec["format"], spec["datefmt"], style))
            logger.addHandler(handler)


def _global(module: str, name: str) -> object:
    return getattr(sys.modules[module], name)


def loads(body: bytes | memoryview) -> object:
    """Unpickle what :meth:`Snapshot.dumps` made, once :func:`restore` has run."""
    global _arrivals
    try:
        return _StateUnpickler(io.BytesIO(body), _global).load()
    finally:
        _arrivals = None
