"""``Value``, ``Array``, ``RawValue`` and ``RawArray`` with their bytes in the store.

Each object is a real ctypes object (a subclass of the requested type), so the
stdlib's coercion, overflow and ``TypeError`` behaviour, ``len``, and buffer
views (``memoryview``, ``np.frombuffer``, ``np.ctypeslib.as_array``) are
ctypes' own. Its memory is this process's copy of a byte string in the store.

The consistency rule:

* **Element operations are strongly consistent.** ``.value``, ``.raw``,
  indexing, slicing, iteration and structure fields read from and write to the
  store on every access (and keep the local copy up to date).
* **Buffer views are release-consistent.** Writes made through a view of the
  local memory are *published* (only the bytes that changed) when the object is
  passed to another process (as an argument, in ``initargs``, through a queue)
  or when a lock guarding it (``get_lock()`` of a ``Value``/``Array`` whose
  ``get_obj()`` was taken) is released. The local memory is *refreshed* from
  the store when the object arrives in a process and when such a lock is
  acquired. So: fill an array through a numpy view, then hand it to workers;
  or write through views only while holding the object's lock.

Arrays larger than one Redis value (512 MB) are split over several keys.
"""

from __future__ import annotations

import ctypes
import weakref
from multiprocessing import sharedctypes as _mp_sharedctypes

from . import runtime, snapshot
from .heap import Backing
from .synchronize import RLock

__all__ = ["Array", "RawArray", "RawValue", "Value", "copy", "synchronized"]

typecode_to_type = _mp_sharedctypes.typecode_to_type


def _backing(obj) -> Backing:
    return obj.__dict__["_tmp_backing"]


def _describe(base: type) -> tuple:
    """A picklable description of a ctypes type (array types are made on the fly)."""
    if issubclass(base, ctypes.Array):
        return ("array", _describe(base._type_), base._length_)
    return ("type", base)


def _type_of(description: tuple) -> type:
    if description[0] == "array":
        return _type_of(description[1]) * description[2]
    return description[1]


def _reduce(obj):
    backing = _backing(obj)
    backing.publish(obj)
    return _rebuild, (_describe(type(obj).__mro__[1]), backing.key)


def _rebuild(description: tuple, key: str):
    arrived = snapshot.arrivals()  # a fork child's snapshot and Process share their objects
    if arrived is not None and key in arrived:
        return arrived[key]
    obj = _remote_type(_type_of(description))()
    backing = obj.__dict__["_tmp_backing"] = Backing(key, ctypes.sizeof(obj))
    backing.fetch(obj)
    if arrived is not None:
        arrived[key] = obj
    return obj


def _simple_methods(base: type) -> dict:
    def get_value(self):
        _backing(self).fetch(self)
        return base.value.__get__(self)

    def set_value(self, value):
        base.value.__set__(self, value)
        _backing(self).push(self)

    return {"value": property(get_value, set_value)}


def _array_methods(base: type) -> dict:
    esize = ctypes.sizeof(base._type_)
    length = base._length_

    def span(index) -> tuple[int, int]:
        if isinstance(index, slice):
            return 0, length * esize
        i = index + length if index < 0 else index
        if not 0 <= i < length:
            raise IndexError("invalid index")
        return i * esize, esize

    def getitem(self, index):
        _backing(self).fetch(self, *span(index))
        return base.__getitem__(self, index)

    def setitem(self, index, value):
        base.__setitem__(self, index, value)
        _backing(self).push(self, *span(index))

    def iterate(self):
        _backing(self).fetch(self)
        return iter([base.__getitem__(self, i) for i in range(length)])

    methods = {"__getitem__": getitem, "__setitem__": setitem, "__iter__": iterate}
    for name in ("value", "raw"):  # char arrays
        descriptor = getattr(base, name, None)
        if descriptor is not None:
            methods[name] = _whole_property(descriptor)
    return methods


def _whole_property(descriptor) -> property:
    def get(self):
        _backing(self).fetch(self)
        return descriptor.__get__(self)

    def set_(self, value):
        descriptor.__set__(self, value)
        _backing(self).push(self)

    return property(get, set_)


def _structure_methods(base: type) -> dict:
    methods = {}
    for field in base._fields_:
        name = field[0]
        descriptor = getattr(base, name)

        def get(self, descriptor=descriptor):
            _backing(self).fetch(self, descriptor.offset, descriptor.size)
            return descriptor.__get__(self)

        def set_(self, value, descriptor=descriptor):
            descriptor.__set__(self, value)
            _backing(self).push(self, descriptor.offset, descriptor.size)

        methods[name] = property(get, set_)
    return methods


_types: dict[type, type] = {}


def _remote_type(base: type) -> type:
    """The subclass of ctypes type ``base`` whose element operations reach the store."""
    cls = _types.get(base)
    if cls is None:
        if issubclass(base, ctypes.Array):
            methods = _array_methods(base)
        elif issubclass(base, ctypes.Structure):
            methods = _structure_methods(base)
        else:
            methods = _simple_methods(base)
        methods["__reduce__"] = _reduce
        methods["__shared_memory__"] = True  # (a fork snapshot keeps views of it as views)
        methods["__module__"] = __name__
        cls = _types[base] = type(base.__name__, (base,), methods)
        for name, method in methods.items():  # ctypes puts its own value/raw on char arrays
            setattr(cls, name, method)
    return cls


def _new(base: type, init) -> ctypes._CData:
    rt = runtime.current()
    obj = _remote_type(base)()
    backing = obj.__dict__["_tmp_backing"] = Backing(
        rt.new_key("shm"), ctypes.sizeof(obj))
    init(obj)
    backing.publish(obj)  # non-zero initial contents
    return obj


def RawValue(typecode_or_type, *args):
    """A shared ctypes object of the given type (or typecode), not synchronised."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    return _new(type_, lambda obj: type_.__init__(obj, *args))


def RawArray(typecode_or_type, size_or_initializer):
    """A shared ctypes array, zero-filled or filled from a sequence."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    if isinstance(size_or_initializer, int):
        return _new(type_ * size_or_initializer, lambda obj: None)
    values = list(size_or_initializer)

    def init(obj):
        obj.__init__(*values)

    return _new(type_ * len(values), init)


def copy(obj):
    """A new shared object with the type and contents of ``obj``."""
    ours = type(obj) in _types.values()
    if ours:
        _backing(obj).fetch(obj)
    base = type(obj).__mro__[1] if ours else type(obj)
    return _new(base, lambda new: ctypes.memmove(ctypes.addressof(new), ctypes.addressof(obj),
                                                 ctypes.sizeof(new)))


def _lock_for(lock):
    if lock in (True, None):
        return RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A synchronised shared object (``lock=False``: the raw object)."""
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock))


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """A synchronised shared array (``lock=False``: the raw array)."""
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock))


class _Guarded:
    """What a lock publishes before its release and refreshes after its acquire."""

    def __init__(self, obj) -> None:
        self.obj = obj

    def publish(self) -> None:
        _backing(self.obj).publish(self.obj)

    def refresh(self) -> None:
        _backing(self.obj).fetch(self.obj)


class _RemoteSynchronized:
    """Mixed into the stdlib's wrappers: they travel with their object and lock."""

    def __reduce__(self):
        return synchronized, (self._obj, self._lock)

    def get_obj(self):
        guards = getattr(self._lock, "_guarded", None)
        if guards is not None and id(self._obj) not in guards:
            guards[id(self._obj)] = _Guarded(self._obj)
            weakref.finalize(self, guards.pop, id(self._obj), None)
        return self._obj


class Synchronized(_RemoteSynchronized, _mp_sharedctypes.Synchronized):
    pass


class SynchronizedArray(_RemoteSynchronized, _mp_sharedctypes.SynchronizedArray):
    pass


class SynchronizedString(_RemoteSynchronized, _mp_sharedctypes.SynchronizedString):
    pass


_structure_wrappers: dict[type, type] = {}


def synchronized(obj, lock=None, ctx=None):
    """Wrap a shared ctypes object with a lock, as the stdlib's ``synchronized``."""
    lock = _lock_for(lock)
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock)
    if isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock)
        return SynchronizedArray(obj, lock)
    cls = type(obj)
    wrapper = _structure_wrappers.get(cls)
    if wrapper is None:
        fields = {field[0]: _mp_sharedctypes.make_property(field[0]) for field in cls._fields_}
        wrapper = _structure_wrappers[cls] = type(
            "Synchronized" + cls.__name__, (_RemoteSynchronized, _mp_sharedctypes.SynchronizedBase),
            fields)
    return wrapper(obj, lock)
