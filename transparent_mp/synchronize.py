"""Locks, semaphores, conditions, events and barriers, kept in the store.

A semaphore is a Redis list holding one token per unit of its value:
``acquire`` pops one with a blocking BLPOP (timeouts are the server's),
``release`` pushes one back. Ownership (``RLock``, ``Condition``) is known to
the process that acquired, as in the stdlib. A waiter of a ``Condition`` or
``Event`` queues its own id and blocks on a list of its own; ``notify`` and
``set`` push a token onto the lists of the waiters they wake, in Lua, so a
wake-up is never lost, also not when a waiter times out at the same moment.
"""

from __future__ import annotations

import _multiprocessing
import os
import threading
import time
from multiprocessing import process

from . import heap, runtime
from .store import KEY_TTL, scripts

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore"]

SEM_VALUE_MAX = _multiprocessing.SemLock.SEM_VALUE_MAX


def _me() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def await_wake(waiters: str, wake_prefix: str, waiter: str, timeout: float | None,
               on_interrupted_wake=None) -> bool:
    """Block until ``waiter`` (queued on ``waiters``) is woken, or ``timeout``.

    On timeout or interruption the waiter withdraws in one atomic step; if a
    wake-up had already been given to it, that counts: True is returned, or
    ``on_interrupted_wake`` hands it back before the interruption goes on.
    """
    rt = runtime.current()
    wake = wake_prefix + waiter
    try:
        if rt.conn().blpop([wake], timeout) is not None:
            return True
    except BaseException:
        if rt.conn().run(scripts.CANCEL_WAIT, [waiters, wake], [waiter]) and on_interrupted_wake:
            on_interrupted_wake()
        raise
    return bool(rt.conn().run(scripts.CANCEL_WAIT, [waiters, wake], [waiter]))


class SemLock:
    """The state under every lock and semaphore: a value and a queue of waiters.

    ``acquire`` takes a unit if there is one, else queues and blocks on its own
    wake list; ``release`` hands the unit to the first waiter, else adds it to
    the value. Both are one Lua script, so units are neither lost nor doubled.
    """

    _recursive = False

    def __init__(self, value: int, maxvalue: int) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > SEM_VALUE_MAX:
            raise OverflowError("value is too large")
        self._key = runtime.current().new_key("sem")
        self._maxvalue = maxvalue
        self._reset_local()
        runtime.current().conn().execute("SET", self._key, value, "EX", KEY_TTL)

    def _reset_local(self) -> None:
        self._waiters = self._key + ":waiters"
        self._wake = self._key + ":wake:"
        self._owner: tuple[int, int] | None = None
        self._count = 0  # acquisitions held by this process through this object
        #: Shared objects whose views this lock guards (see sharedctypes).
        self._guarded: dict = {}

    def __getstate__(self) -> tuple:
        return self._key, self._maxvalue

    def __setstate__(self, state: tuple) -> None:
        self._key, self._maxvalue = state
        self._reset_local()

    # -- the SemLock interface --
    def _is_mine(self) -> bool:
        return self._count > 0 and self._owner == _me()

    def _get_value(self) -> int:
        return int(runtime.current().conn().execute("GET", self._key) or 0)

    def _is_zero(self) -> bool:
        return self._get_value() == 0

    def _guards(self) -> list:
        """Shared buffers made consistent at this lock's acquire and release."""
        return [*self._guarded.values(), *heap.wrappers()]

    def _take(self, block: bool, timeout: float | None) -> bool:
        rt = runtime.current()
        wait = block and (timeout is None or timeout > 0)
        waiter = rt.new_id() if wait else ""
        if rt.conn().run(scripts.SEM_ACQUIRE, [self._key, self._waiters], [KEY_TTL, waiter]):
            return True
        if not wait:
            return False
        return await_wake(self._waiters, self._wake, waiter, timeout, self._give)

    def _give(self) -> None:
        conn = runtime.current().conn()
        conn.run(scripts.SEM_RELEASE, [self._key, self._waiters],
                 [KEY_TTL, self._maxvalue, self._wake])

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if self._recursive and self._is_mine():
            self._count += 1
            return True
        got = self._take(block, timeout)
        if got:
            self._owner = _me()
            self._count += 1
            for guarded in self._guards():
                guarded.refresh()
        return got

    def release(self) -> None:
        if self._recursive:
            if not self._is_mine():
                raise AssertionError("attempt to release recursive lock not owned by thread")
            if self._count > 1:
                self._count -= 1
                return
        for guarded in self._guards():
            guarded.publish()
        conn = runtime.current().conn()
        command = conn.script(scripts.SEM_RELEASE, [self._key, self._waiters],
                              [KEY_TTL, self._maxvalue, self._wake])
        held_here = self._count > 0
        if held_here or self._maxvalue >= SEM_VALUE_MAX:
            # Held here (or unbounded): it cannot be refused. Local state first, as
            # the stdlib does: the next owner may be a thread of this process.
            self._count -= held_here
            if self._count == 0:
                self._owner = None
            conn.send_later(command)
        else:
            conn.execute(*command)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _owner_name(self) -> str:
        """Who holds the lock, in the words of the stdlib's reprs."""
        try:
            if self._is_mine():
                name = process.current_process().name
                if threading.current_thread().name != "MainThread":
                    name += "|" + threading.current_thread().name
                return name
            if self._get_value() == 1:
                return "None"
            return "SomeOtherThread" if self._count > 0 else "SomeOtherProcess"
        except Exception:
            return "unknown"


class Semaphore(SemLock):
    def __init__(self, value: int = 1, *, ctx=None) -> None:
        super().__init__(value, SEM_VALUE_MAX)

    def get_value(self) -> int:
        return self._get_value()

    def __repr__(self) -> str:
        try:
            value = self._get_value()
        except Exception:
            value = "unknown"
        return f"<{type(self).__name__}(value={value})>"


class BoundedSemaphore(Semaphore):
    def __init__(self, value: int = 1, *, ctx=None) -> None:
        SemLock.__init__(self, value, value)

    def __repr__(self) -> str:
        try:
            value = self._get_value()
        except Exception:
            value = "unknown"
        return f"<{type(self).__name__}(value={value}, maxvalue={self._maxvalue})>"


class Lock(SemLock):
    def __init__(self, *, ctx=None) -> None:
        super().__init__(1, 1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(owner={self._owner_name()})>"


class RLock(SemLock):
    _recursive = True

    def __init__(self, *, ctx=None) -> None:
        super().__init__(1, 1)

    def __repr__(self) -> str:
        name = self._owner_name()
        count = self._count if self._is_mine() else 0 if name == "None" else "nonzero"
        return f"<{type(self).__name__}({name}, {count})>"


class Condition:
    """``multiprocessing.Condition`` over a lock of this module."""

    def __init__(self, lock: SemLock | None = None, *, ctx=None) -> None:
        self._lock = lock if lock is not None else RLock()
        self._key = runtime.current().new_key("cond")
        self._bind()

    def _bind(self) -> None:
        self._waiters = self._key + ":waiters"
        self._wake = self._key + ":wake:"
        # The stdlib's bookkeeping, readable as its tests read it.
        self._sleeping_count = _Counter(self._key + ":sleeping")
        self._woken_count = _Counter(self._key + ":woken")
        self._wait_semaphore = _Counter(self._key + ":pending")
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __getstate__(self) -> tuple:
        return self._lock, self._key

    def __setstate__(self, state: tuple) -> None:
        self._lock, self._key = state
        self._bind()

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)

    def __repr__(self) -> str:
        try:
            waiters = runtime.current().conn().execute("LLEN", self._waiters)
        except Exception:
            waiters = "unknown"
        return f"<Condition({self._lock}, {waiters})>"

    def wait(self, timeout: float | None = None) -> bool:
        assert self._lock._is_mine(), "must acquire() condition before using wait()"
        rt = runtime.current()
        waiter = rt.new_id()
        rt.conn().send_later(("RPUSH", self._waiters, waiter), ("EXPIRE", self._waiters, KEY_TTL),
                             *self._sleeping_count.incr(1))
        count = self._lock._count
        for _ in range(count):
            self._lock.release()
        woke = False
        try:
            woke = await_wake(self._waiters, self._wake, waiter, timeout)
            return woke
        finally:
            rt.conn().send_later(*self._woken_count.incr(1),
                                 *(self._wait_semaphore.incr(-1) if woke else ()))
            for _ in range(count):
                self._lock.acquire()

    def notify(self, n: int = 1) -> None:
        assert self._lock._is_mine(), "lock is not owned"
        conn = runtime.current().conn()
        conn.send_later(conn.script(scripts.NOTIFY, [self._waiters, self._wait_semaphore.key],
                                    [KEY_TTL, n, self._wake]))

    def notify_all(self) -> None:
        self.notify(-1)

    def wait_for(self, predicate, timeout: float | None = None):
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else time.monotonic() + timeout
        waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result


class _Counter:
    """A number in the store with the ``get_value()`` of a semaphore."""

    def __init__(self, key: str) -> None:
        self.key = key

    def get_value(self) -> int:
        return int(runtime.current().conn().execute("GET", self.key) or 0)

    def incr(self, n: int) -> tuple[tuple, tuple]:
        return ("INCRBY", self.key, n), ("EXPIRE", self.key, KEY_TTL)


class Event:
    """``multiprocessing.Event``: a flag in the store and its waiters."""

    def __init__(self, *, ctx=None) -> None:
        self._key = runtime.current().new_key("event")
        self._waiters = self._key + ":waiters"

    def __getstate__(self) -> str:
        return self._key

    def __setstate__(self, key: str) -> None:
        self._key = key
        self._waiters = key + ":waiters"

    def is_set(self) -> bool:
        return bool(runtime.current().conn().execute("EXISTS", self._key))

    def set(self) -> None:
        runtime.current().conn().run(scripts.EVENT_SET, [self._key, self._waiters],
                                     [KEY_TTL, self._key + ":wake:"])

    def clear(self) -> None:
        runtime.current().conn().execute("DEL", self._key)

    def wait(self, timeout: float | None = None) -> bool:
        rt = runtime.current()
        waiter = rt.new_id()
        if rt.conn().run(scripts.EVENT_WAIT, [self._key, self._waiters], [KEY_TTL, waiter]):
            return True
        return await_wake(self._waiters, self._key + ":wake:", waiter, timeout) or self.is_set()

    def __repr__(self) -> str:
        state = "set" if self.is_set() else "unset"
        return f"<{type(self).__qualname__} at {id(self):#x} {state}>"


class Barrier(threading.Barrier):
    """``threading.Barrier``'s algorithm over a Condition and state in the store.

    As in the stdlib, ``_state`` and ``_count`` are read and written only while
    the condition's lock is held, so each access goes to the store.
    """

    def __init__(self, parties: int, action=None, timeout: float | None = None, *,
                 ctx=None) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        key = runtime.current().new_key("barrier")
        self.__setstate__((parties, action, timeout, Condition(Lock()), key))
        self._state = 0
        self._count = 0

    def __setstate__(self, state: tuple) -> None:
        self._parties, self._action, self._timeout, self._cond, self._key = state

    def __getstate__(self) -> tuple:
        return self._parties, self._action, self._timeout, self._cond, self._key

    def _get(self, field: str) -> int:
        return int(runtime.current().conn().execute("HGET", self._key, field) or 0)

    def _set(self, field: str, value: int) -> None:
        runtime.current().conn().execute_many(
            [("HSET", self._key, field, value), ("EXPIRE", self._key, KEY_TTL)])

    @property
    def _state(self) -> int:
        return self._get("state")

    @_state.setter
    def _state(self, value: int) -> None:
        self._set("state", value)

    @property
    def _count(self) -> int:
        return self._get("count")

    @_count.setter
    def _count(self, value: int) -> None:
        self._set("count", value)
