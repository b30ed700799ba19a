"""Large arguments travel once: content-addressed blobs for Pool tasks.

When a task is pickled, every numpy array or ``bytes`` object of at least
:data:`MIN_SIZE` bytes is replaced by a reference to a *blob*: its own pickle
(protocol 5, the array's memory sent as an out-of-band buffer, not copied),
signed, stored once under the hash of its content. A worker fetches each blob
once and keeps it: the same X and y shared by a thousand tasks cross the wire
once per worker. Arrays a worker receives this way are read-only (as joblib's
memory-mapped arguments are), so a task cannot change what later tasks see.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import sys
import threading

from . import runtime, serialize
from .store import KEY_TTL

#: Objects smaller than this are pickled with their task.
MIN_SIZE = 64 << 10

_uploaded: set[str] = set()  # blob keys this process has stored
_fetched: dict[str, object] = {}  # blob key -> object, in a worker
_lock = threading.Lock()


def _is_big(obj: object) -> bool:
    if type(obj) is bytes:
        return len(obj) >= MIN_SIZE
    numpy = sys.modules.get("numpy")
    return (numpy is not None and type(obj) is numpy.ndarray and obj.nbytes >= MIN_SIZE
            and not obj.dtype.hasobject)


class _TaskPickler(serialize.Pickler):
    def __init__(self, file, blobs: dict, main_by_reference: bool | None) -> None:
        super().__init__(file, protocol=serialize.PROTOCOL)
        self.blobs = blobs
        self.main_by_reference = main_by_reference

    def persistent_id(self, obj: object):
        if not _is_big(obj):
            return None
        buffers: list[pickle.PickleBuffer] = []
        header = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        digest = hashlib.blake2b(header, digest_size=16)
        for raw in raws:
            digest.update(raw)
        key = runtime.current().namespace.key("blob", digest.hexdigest())
        self.blobs[key] = (header, raws)
        return ("blob", key)


def dumps(obj: object, main_by_reference: bool | None = None) -> bytes:
    """Pickle ``obj``, storing its large parts as blobs (each once per process);
    ``main_by_reference`` as :attr:`serialize.Pickler.main_by_reference`."""
    blobs: dict = {}
    buf = io.BytesIO()
    _TaskPickler(buf, blobs, main_by_reference).dump(obj)
    missing = [key for key in blobs if key not in _uploaded]
    if missing:
        rt = runtime.current()
        commands = []
        for key in missing:
            header, raws = blobs[key]
            sizes = [len(header)] + [r.nbytes for r in raws]
            parts = (struct.pack(f"<Q{len(sizes)}Q", len(sizes), *sizes), header, *raws)
            tag = serialize.tag_parts(parts, rt.secret)
            commands.append(("SET", key, (tag, *parts), "EX", KEY_TTL))
        rt.conn().execute_many(commands)
        rt.stats["blobs"] += len(missing)
        rt.stats["bytes_up"] += sum(len(blobs[k][0]) + sum(r.nbytes for r in blobs[k][1])
                                    for k in missing)
        with _lock:
            _uploaded.update(missing)
    return buf.getvalue()


class _TaskUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        kind, key = pid
        if kind != "blob":
            raise pickle.UnpicklingError(f"unknown reference {kind!r}")
        obj = _fetched.get(key)
        if obj is None:
            rt = runtime.current()
            data = rt.conn().execute("GET", key)
            if data is None:
                raise pickle.UnpicklingError(f"blob {key} is missing from the store")
            body = rt.verify(data)
            (count,) = struct.unpack_from("<Q", body)
            sizes = struct.unpack_from(f"<{count}Q", body, 8)
            pieces, at = [], 8 + 8 * count
            for size in sizes:
                pieces.append(body[at:at + size])
                at += size
            obj = pickle.loads(pieces[0], buffers=pieces[1:])
            with _lock:
                _fetched[key] = obj
        return obj


def loads(data: bytes | memoryview) -> object:
    """Unpickle what :func:`dumps` made (the signature was checked by the caller)."""
    return _TaskUnpickler(io.BytesIO(data)).load()
