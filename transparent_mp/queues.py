"""``Queue``, ``SimpleQueue`` and ``JoinableQueue``, kept in the store.

A queue is a Redis list of signed, pickled items. ``put`` pickles in the
caller (an unpicklable object raises there and the queue stays usable) and
appends with one write whose reply is checked by the next command: like the
stdlib's feeder thread, it does not wait. ``get`` pops with a blocking BLPOP,
so a waiting consumer costs nothing and wakes as soon as an item arrives.

A bounded queue (``maxsize > 0``) checks the size and appends in one Lua
script, so it never holds more than ``maxsize`` items and never drops one; a
full queue's putters wait on a list that every ``get`` pushes a token onto.
"""

from __future__ import annotations

import pickle
import time
from queue import Empty, Full

from . import runtime
from .serialize import dumps_unsigned
from .store import KEY_TTL, scripts
from .synchronize import SEM_VALUE_MAX

__all__ = ["Empty", "Full", "JoinableQueue", "Queue", "SimpleQueue"]


def _pop(conn, key: str, block: bool, timeout: float | None) -> bytes | None:
    if not block or (timeout is not None and timeout <= 0):
        return conn.execute("LPOP", key)
    popped = conn.blpop([key], timeout)
    return None if popped is None else popped[1]


class Queue:
    """``multiprocessing.Queue`` with its items in the store."""

    _joinable = False

    def __init__(self, maxsize: int = 0, *, ctx=None) -> None:
        self._bounded = maxsize > 0
        self._maxsize = maxsize if maxsize > 0 else SEM_VALUE_MAX
        self._setup(runtime.current().new_key("queue"))

    def _setup(self, key: str) -> None:
        self._key = key
        self._waiting = key + ":waiting"
        self._room = key + ":room"
        self._unfinished = key + ":unfinished" if self._joinable else ""
        self._closed = False
        #: This process has put into the queue: its close() then closes the reading
        #: end too, as the stdlib's feeder thread does when it stops.
        self._used = False

    def __getstate__(self) -> tuple:
        return self._key, self._bounded, self._maxsize

    def __setstate__(self, state: tuple) -> None:
        key, self._bounded, self._maxsize = state
        self._setup(key)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, obj: object, block: bool = True, timeout: float | None = None) -> None:
        self._check_open()
        rt = runtime.current()
        body = dumps_unsigned(obj)
        self._used = True
        item = (rt.tag(body), body)
        conn = rt.conn()
        if not self._bounded:
            commands = [("RPUSH", self._key, item), ("EXPIRE", self._key, KEY_TTL)]
            if self._joinable:
                commands += [("INCR", self._unfinished), ("EXPIRE", self._unfinished, KEY_TTL)]
            conn.send_later(*commands)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        counted = False
        while True:
            wait = block and (deadline is None or deadline > time.monotonic())
            done = conn.run(scripts.BOUNDED_PUT, [self._key, self._waiting, self._unfinished],
                            [KEY_TTL, item, self._maxsize, int(counted), int(wait)])
            if done:
                return
            counted = wait
            if not wait:
                raise Full
            left = None if deadline is None else deadline - time.monotonic()
            if conn.blpop([self._room], left) is None:
                conn.send_later(("DECR", self._waiting))
                raise Full

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        self._check_open()
        rt = runtime.current()
        conn = rt.conn()
        item = _pop(conn, self._key, block, timeout)
        if item is None:
            raise Empty
        if self._bounded:
            conn.send_later(conn.script(scripts.MADE_ROOM, [self._waiting, self._room], [KEY_TTL]))
        return pickle.loads(rt.verify(item))

    def put_nowait(self, obj: object) -> None:
        self.put(obj, False)

    def get_nowait(self) -> object:
        return self.get(False)

    def qsize(self) -> int:
        return runtime.current().conn().execute("LLEN", self._key)

    def empty(self) -> bool:
        if self._closed and self._used:  # the stdlib's reader poll on a closed handle
            raise OSError("handle is closed")
        return self.qsize() == 0

    def full(self) -> bool:
        return self._bounded and self.qsize() >= self._maxsize

    def close(self) -> None:
        self._closed = True

    def join_thread(self) -> None:
        """Wait until every ``put`` of this process has reached the store."""
        assert self._closed, f"Queue {self!r} not closed"
        runtime.current().conn().flush()

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: a ``put`` has reached the store when it returns."""


class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: ``task_done`` and ``join``."""

    _joinable = True

    def task_done(self) -> None:
        rt = runtime.current()
        rt.conn().run(scripts.TASK_DONE, [self._unfinished, self._unfinished + ":joiners"],
                      [KEY_TTL, self._unfinished + ":wake:"])

    def join(self) -> None:
        rt = runtime.current()
        conn = rt.conn()
        waiter = rt.new_id()
        if conn.run(scripts.JOIN_WAIT, [self._unfinished, self._unfinished + ":joiners"],
                    [KEY_TTL, waiter]):
            return
        conn.blpop([self._unfinished + ":wake:" + waiter], None)


class SimpleQueue:
    """``multiprocessing.SimpleQueue``: ``get``, ``put``, ``empty``, ``close``."""

    def __init__(self, *, ctx=None) -> None:
        self._key = runtime.current().new_key("simplequeue")
        self._closed = False

    def __getstate__(self) -> str:
        return self._key

    def __setstate__(self, key: str) -> None:
        self._key = key
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise OSError("handle is closed")

    def put(self, obj: object) -> None:
        self._check_open()
        rt = runtime.current()
        body = dumps_unsigned(obj)
        rt.conn().send_later(("RPUSH", self._key, (rt.tag(body), body)),
                             ("EXPIRE", self._key, KEY_TTL))

    def get(self) -> object:
        self._check_open()
        rt = runtime.current()
        return pickle.loads(rt.verify(_pop(rt.conn(), self._key, True, None)))

    def empty(self) -> bool:
        self._check_open()
        return runtime.current().conn().execute("LLEN", self._key) == 0

    def close(self) -> None:
        self._closed = True
