"""Pickling for payloads that cross process boundaries, signed with the run's key.

Every payload is ``HMAC-SHA256(key, body) + body``; :func:`loads` verifies the
tag before it unpickles anything, so a payload written into the store by
anyone without the key is rejected and runs no code.

The pickler is cloudpickle's, with one change that mirrors the stdlib's
``spawn``: functions and classes of ``__main__`` are pickled *by reference*
when the main module travels to workers as source (see :mod:`.spawn`), so
they share one module namespace there. Anything that cannot be found by name
(lambdas, closures, ``-c`` code) still goes by value.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
import sys
import types
from multiprocessing import AuthenticationError

import cloudpickle

from . import spawn

PROTOCOL = 5
TAG_SIZE = hashlib.sha256().digest_size


def versions() -> dict[str, str]:
    """What must match between a driver and its workers for payloads to load."""
    python = "{}.{}".format(*sys.version_info[:2])
    return {"python": python, "cloudpickle": cloudpickle.__version__}


class PayloadRejected(AuthenticationError):
    """A payload whose signature does not verify; it was not unpickled."""


def _main_attr(qualname: str) -> object:
    obj: object = sys.modules["__main__"]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class Pickler(cloudpickle.Pickler):
    """cloudpickle, but ``__main__`` names go by reference when main travels."""

    #: Whether ``__main__``'s functions and classes go by reference: None means
    #: when the main module is rebuilt from source in workers (spawn); a fork
    #: child's ``__main__`` is a snapshot, where they always can.
    main_by_reference: bool | None = None

    def reducer_override(self, obj):
        if isinstance(obj, types.MethodType):
            # As the stdlib pickles a bound method: its object and its name. (cloudpickle
            # would ship a classmethod's code by value, losing its source lines.)
            name = obj.__func__.__name__
            if getattr(obj.__self__, name, None) == obj:
                return getattr, (obj.__self__, name)
        if (
            isinstance(obj, (type, types.FunctionType))
            and getattr(obj, "__module__", None) == "__main__"
            and (spawn.main_travels() if self.main_by_reference is None
                 else self.main_by_reference)
        ):
            try:
                found = _main_attr(obj.__qualname__)
            except AttributeError:
                found = None
            if found is obj:
                return NotImplemented  # the plain pickle path: save_global
        return super().reducer_override(obj)


def dumps_unsigned(obj: object) -> bytes:
    buf = io.BytesIO()
    Pickler(buf, protocol=PROTOCOL).dump(obj)
    return buf.getvalue()


def tag(body: bytes | memoryview, key: bytes) -> bytes:
    """The signature that prefixes ``body`` in a signed payload."""
    return hmac.digest(key, body, "sha256")


def tag_parts(parts, key: bytes) -> bytes:
    """The signature of the concatenation of ``parts`` (buffers), without joining them."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def sign(body: bytes | memoryview, key: bytes) -> bytes:
    return tag(body, key) + body


def verify(data: bytes | memoryview, key: bytes) -> memoryview:
    """The body of a signed payload; :class:`PayloadRejected` if it was altered."""
    view = memoryview(data)
    if len(view) < TAG_SIZE:
        raise PayloadRejected("payload rejected: too short to carry a signature")
    body = view[TAG_SIZE:]
    expected = hmac.digest(key, body, "sha256")
    if not hmac.compare_digest(expected, view[:TAG_SIZE]):
        raise PayloadRejected(
            "payload rejected: its HMAC-SHA256 signature does not match this run's key "
            "(tampered with, or written by another run); nothing was unpickled"
        )
    return body


def dumps(obj: object, key: bytes) -> bytes:
    """Pickle and sign ``obj``."""
    return sign(dumps_unsigned(obj), key)


def loads(data: bytes | memoryview, key: bytes) -> object:
    """Verify and unpickle a payload made by :func:`dumps`."""
    return pickle.loads(verify(data, key))
