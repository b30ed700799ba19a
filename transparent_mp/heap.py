"""``BufferWrapper`` (the stdlib's ``multiprocessing.heap`` buffer) and the store
side of every shared buffer.

A :class:`Backing` ties a local buffer to a byte string in the store (split
over several keys beyond :data:`CHUNK`) and remembers the bytes last
synchronised, so that publishing writes only the blocks that changed.

A :class:`BufferWrapper` is raw shared memory with no lock of its own, used by
code that guards it with some lock: so every lock of this package refreshes
the process's wrappers when acquired and publishes them when released.
"""

from __future__ import annotations

import ctypes
import sys
import weakref

from . import runtime
from .store import KEY_TTL

__all__ = ["Backing", "BufferWrapper"]

#: Bytes per store key; larger buffers use several keys (a Redis value holds 512 MB).
CHUNK = 256 << 20
#: Granularity of publishing: only blocks that changed are written.
_BLOCK = 64 << 10


def _store_ranges(key: str, offset: int, length: int):
    """(chunk key, offset in chunk, offset in buffer, length) pieces of a byte range."""
    end = offset + length
    while offset < end:
        index, start = divmod(offset, CHUNK)
        n = min(end - offset, CHUNK - start)
        yield f"{key}:{index}", start, offset, n
        offset += n


class Backing:
    """The store side of one shared ctypes object and its last synchronised bytes."""

    def __init__(self, key: str, size: int, snapshot: bytes | None = None) -> None:
        self.key = key
        self.size = size
        self.snapshot = bytearray(size) if snapshot is None else bytearray(snapshot)

    def _local(self, obj: ctypes._CData) -> memoryview:
        return memoryview(obj).cast("B")

    def fetch(self, obj: ctypes._CData, offset: int = 0, length: int | None = None) -> None:
        """Copy bytes ``[offset, offset + length)`` from the store into ``obj``."""
        length = self.size - offset if length is None else length
        pieces = list(_store_ranges(self.key, offset, length))
        replies = runtime.current().conn().execute_many(
            [("GETRANGE", k, start, start + n - 1) for k, start, _, n in pieces])
        local = self._local(obj)
        for (_, _, at, n), data in zip(pieces, replies, strict=True):
            data = data.ljust(n, b"\0")  # never written: zeros, as a new ctypes object
            local[at:at + n] = data
            self.snapshot[at:at + n] = data

    def push(self, obj: ctypes._CData, offset: int = 0, length: int | None = None) -> None:
        """Write bytes ``[offset, offset + length)`` of ``obj`` to the store."""
        length = self.size - offset if length is None else length
        local = self._local(obj)
        commands = []
        for k, start, at, n in _store_ranges(self.key, offset, length):
            commands += [("SETRANGE", k, start, local[at:at + n]), ("EXPIRE", k, KEY_TTL)]
        if commands:
            runtime.current().conn().execute_many(commands)
        self.snapshot[offset:offset + length] = local[offset:offset + length]

    def publish(self, obj: ctypes._CData) -> None:
        """Write the blocks that changed locally since the last synchronisation."""
        local = self._local(obj)
        commands = []
        for at in range(0, self.size, _BLOCK):
            n = min(_BLOCK, self.size - at)
            if local[at:at + n] != self.snapshot[at:at + n]:
                for k, start, a, m in _store_ranges(self.key, at, n):
                    commands += [("SETRANGE", k, start, bytes(local[a:a + m])),
                                 ("EXPIRE", k, KEY_TTL)]
                self.snapshot[at:at + n] = local[at:at + n]
        if commands:
            runtime.current().conn().execute_many(commands)


_wrappers: weakref.WeakSet = weakref.WeakSet()


def wrappers() -> list[BufferWrapper]:
    """The BufferWrappers alive in this process."""
    return list(_wrappers)


class BufferWrapper:
    """``multiprocessing.heap.BufferWrapper`` whose bytes travel through the store."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"Size {size:n} out of range")
        if sys.maxsize <= size:
            raise OverflowError(f"Size {size:n} too large")
        rt = runtime.current()
        self._setup(Backing(rt.new_key("heap"), size))

    def _setup(self, backing: Backing) -> None:
        self._backing = backing
        self._buffer = (ctypes.c_char * backing.size)()
        _wrappers.add(self)

    def create_memoryview(self) -> memoryview:
        return memoryview(self._buffer).cast("B")

    def publish(self) -> None:
        self._backing.publish(self._buffer)

    def refresh(self) -> None:
        self._backing.fetch(self._buffer)

    def __reduce__(self):
        self.publish()
        return _rebuild_wrapper, (self._backing.key, self._backing.size)


def _rebuild_wrapper(key: str, size: int) -> BufferWrapper:
    wrapper = BufferWrapper.__new__(BufferWrapper)
    wrapper._setup(Backing(key, size))
    wrapper.refresh()
    return wrapper
