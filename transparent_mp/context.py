"""``RemoteContext``: the context every ``multiprocessing`` name resolves to.

Shaped like the stdlib's ``multiprocessing.context``: a context object whose
factory methods import their classes lazily. Every start method (``fork``,
``spawn``, ``forkserver``) maps to a remote context, since a library that asks
for a start method means "a process"; each context's ``Process`` carries its
method, which decides what the child starts from, as in the stdlib (a fork
child gets a snapshot of the parent, a spawned one rebuilds ``__main__``).
The default context answers what plain python answers here. Factories this
package does not replace yet are the stdlib's ``BaseContext`` ones.
"""

from __future__ import annotations

from multiprocessing import context as _mp_context

from . import compat, config
from .process import PROCESS_CLASSES
from .process import Process as _Process

START_METHODS = ("fork", "spawn", "forkserver")


class RemoteContext(_mp_context.BaseContext):
    """A ``multiprocessing`` context whose processes run remotely."""

    Process = _Process

    def __init__(self, name: str) -> None:
        self._name = name
        self.Process = PROCESS_CLASSES[name]

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

    # -- factories, each importing its class lazily, as the stdlib's do --
    def Pipe(self, duplex: bool = True):
        from .connection import Pipe

        return Pipe(duplex)

    def Lock(self):
        from .synchronize import Lock

        return Lock(ctx=self)

    def RLock(self):
        from .synchronize import RLock

        return RLock(ctx=self)

    def Condition(self, lock=None):
        from .synchronize import Condition

        return Condition(lock, ctx=self)

    def Semaphore(self, value: int = 1):
        from .synchronize import Semaphore

        return Semaphore(value, ctx=self)

    def BoundedSemaphore(self, value: int = 1):
        from .synchronize import BoundedSemaphore

        return BoundedSemaphore(value, ctx=self)

    def Event(self):
        from .synchronize import Event

        return Event(ctx=self)

    def Barrier(self, parties: int, action=None, timeout: float | None = None):
        from .synchronize import Barrier

        return Barrier(parties, action, timeout, ctx=self)

    def Queue(self, maxsize: int = 0):
        from .queues import Queue

        return Queue(maxsize, ctx=self)

    def JoinableQueue(self, maxsize: int = 0):
        from .queues import JoinableQueue

        return JoinableQueue(maxsize, ctx=self)

    def SimpleQueue(self):
        from .queues import SimpleQueue

        return SimpleQueue(ctx=self)

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None):
        from .pool import Pool

        return Pool(processes, initializer, initargs, maxtasksperchild, context=self)

    def RawValue(self, typecode_or_type, *args):
        from .sharedctypes import RawValue

        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        from .sharedctypes import RawArray

        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        from .sharedctypes import Value

        return Value(typecode_or_type, *args, lock=lock, ctx=self)

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        from .sharedctypes import Array

        return Array(typecode_or_type, size_or_initializer, lock=lock, ctx=self)


class RemoteDefaultContext(RemoteContext):
    """The module-level context behind ``multiprocessing.get_context`` & co."""

    def __init__(self) -> None:
        super().__init__(compat.default_context.get_start_method(allow_none=False))
        self.Process = _Process  # its start method is the default context's, at start()
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
        return compat.default_context.get_all_start_methods()


_contexts = {name: RemoteContext(name) for name in START_METHODS}


def _context_for(method: str | None) -> RemoteContext:
    try:
        return _contexts[method]
    except KeyError:
        raise ValueError(f"cannot find context for {method!r}") from None


default_context = RemoteDefaultContext()
