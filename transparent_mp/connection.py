"""``Pipe``, ``Connection`` and ``wait``, with the messages in the store.

A pipe has two ends, ``a`` and ``b``; each end's incoming messages are a Redis
list, its *inbox*. ``send`` appends a signed item to the peer's inbox (one
write, no round trip of its own: its reply is checked with the next command),
``recv`` pops from the own inbox with a blocking BLPOP.

End of file follows the stdlib: every process that holds an end is recorded
in the store as a *holder*. A process becomes one when it creates the pipe,
receives an end, or is started with one; it stops being one when it closes
its last copy of the end or when it ends. When an end has no holder left, an
empty item is appended to the peer's inbox: once the messages before it are
read, ``recv`` raises ``EOFError``, and ``send`` to such an end raises
``BrokenPipeError`` (on that send, or on the next call if the news comes with
the reply). Closing the parent's copy of an end it handed to a child does not
close the child's copy.
"""

from __future__ import annotations

import os
import pickle
import queue
import selectors
import threading
import time
import weakref
from collections import deque
from multiprocessing import BufferTooShort
from multiprocessing import context as _mp_context

from . import runtime
from .serialize import dumps_unsigned
from .store import KEY_TTL, resp, scripts
from .util import start_service_thread

__all__ = ["BufferTooShort", "Connection", "Pipe", "wait"]

_EOF = b""

_holds: dict[str, int] = {}
_holds_pid = os.getpid()
_holds_lock = threading.Lock()


def _local_holds() -> dict[str, int]:
    """How many open Connection objects of each end this process has."""
    global _holds_pid
    if _holds_pid != os.getpid():
        _holds.clear()
        _holds_pid = os.getpid()
    return _holds


def _hold(rt: runtime.Runtime, token: str, ends: list[str]) -> None:
    rt.conn().run(scripts.HOLD_ENDS, [rt.namespace.key("tok", token)], [KEY_TTL, token, *ends])


def _release(rt: runtime.Runtime, end: str) -> None:
    token = rt.token
    rt.conn().send_later(rt.conn().script(
        scripts.RELEASE_ENDS, [rt.namespace.key("tok", token)], [KEY_TTL, token, end]))


def _acquire_local(rt: runtime.Runtime, ends: list[str]) -> None:
    with _holds_lock:
        holds = _local_holds()
        new = [e for e in ends if not holds.get(e)]
        for e in ends:
            holds[e] = holds.get(e, 0) + 1
    if new:
        _hold(rt, rt.token, new)


def _drop_local(end: str, pid: int) -> None:
    """Called when a Connection object of ``end`` is closed or collected."""
    if os.getpid() != pid:
        return  # collected in a forked child (e.g. before an exec): not ours to release
    with _holds_lock:
        holds = _local_holds()
        left = holds.get(end, 0) - 1
        if left > 0:
            holds[end] = left
            return
        if left < 0:
            return
        holds.pop(end, None)
    try:
        _release(runtime.current(), end)
    except Exception:  # the store may be gone already (interpreter exit)
        pass


def _peer_held(holders: int) -> None:
    """Checks the reply to a send: nobody holds the other end any more."""
    if not holders:
        raise BrokenPipeError(32, "Broken pipe: the other end of the pipe is closed")


class Connection:
    """One end of a :func:`Pipe`; the stdlib's Connection API."""

    def __init__(self, pipe_key: str, side: str, readable: bool, writable: bool) -> None:
        if not readable and not writable:
            raise ValueError("at least one of `readable` and `writable` must be True")
        other = "b" if side == "a" else "a"
        self._pipe_key = pipe_key
        self._side = side
        self._end = f"{pipe_key}:{side}"
        self._inbox = f"{self._end}:in"
        self._peer_inbox = f"{pipe_key}:{other}:in"
        self._peer_holders = f"{pipe_key}:{other}:h"
        self._readable = readable
        self._writable = writable
        self._closed = False
        self._stash: deque[bytes] = deque()
        self._bridge: _FdBridge | None = None
        self._finalizer = weakref.finalize(self, _drop_local, self._end, os.getpid())

    # -- state --
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def _check_closed(self) -> None:
        if self._closed:
            raise OSError("handle is closed")

    def _check_readable(self) -> None:
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self) -> None:
        if not self._writable:
            raise OSError("connection is read-only")

    def fileno(self) -> int:
        """A file descriptor that is readable while a message (or EOF) is waiting.

        The first call starts a thread that keeps the next message fetched.
        """
        self._check_closed()
        self._check_readable()
        if self._bridge is None:
            self._bridge = _FdBridge(self)
            start_service_thread(self._bridge)
        return self._bridge.r

    def _stop_bridge(self) -> None:
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stop_bridge()
            self._finalizer()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("r" if self._readable else "") + (
            "w" if self._writable else "")
        return f"<Connection {self._end} {state}>"

    # -- sending --
    def _send_item(self, body: bytes | memoryview) -> None:
        rt = runtime.current()
        rt.conn().send_later(("RPUSH", self._peer_inbox, (rt.tag(body), body)),
                             ("EXPIRE", self._peer_inbox, KEY_TTL),
                             ("SCARD", self._peer_holders), check=_peer_held)

    def send_bytes(self, buf, offset: int = 0, size: int | None = None) -> None:
        self._check_closed()
        self._check_writable()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        self._send_item(m[offset:offset + size])

    def send(self, obj: object) -> None:
        self._check_closed()
        self._check_writable()
        self._send_item(dumps_unsigned(obj))

    # -- receiving --
    def _recv_item(self, timeout: float | None = None) -> memoryview | None:
        """The next message's body, None on timeout; EOFError at end of file."""
        self._check_closed()
        self._check_readable()
        rt = runtime.current()
        if self._bridge is not None:
            item = self._bridge.take(timeout)
            if item is None:
                return None
        elif self._stash:
            item = self._stash[0]
            if item != _EOF:
                self._stash.popleft()
        else:
            popped = rt.conn().blpop([self._inbox], timeout)
            if popped is None:
                return None
            item = popped[1]
            if item == _EOF:
                self._stash.append(item)
        if item == _EOF:
            raise EOFError
        return rt.verify(item)

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        body = self._recv_item()
        if maxlength is not None and len(body) > maxlength:
            raise OSError("bad message length")
        return bytes(body)

    def recv_bytes_into(self, buf, offset: int = 0) -> int:
        m = memoryview(buf)
        bytesize = m.itemsize * len(m)
        if offset < 0:
            raise ValueError("negative offset")
        if offset > bytesize:
            raise ValueError("offset too large")
        body = self._recv_item()
        size = len(body)
        if bytesize < offset + size:
            raise BufferTooShort(bytes(body))
        m.cast("B")[offset:offset + size] = body
        return size

    def recv(self) -> object:
        return pickle.loads(self._recv_item())

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether a message (or end of file) can be read without blocking."""
        self._check_closed()
        self._check_readable()
        if self._bridge is not None:
            return self._bridge.ready(timeout)
        if self._stash:
            return True
        conn = runtime.current().conn()
        if timeout is not None and timeout <= 0:
            return bool(conn.execute("LLEN", self._inbox))
        popped = conn.blpop([self._inbox], timeout)
        if popped is None:
            return False
        self._stash.append(popped[1])
        return True

    # -- travelling --
    def __reduce__(self):
        self._check_closed()
        self._stop_bridge()
        rt = runtime.current()
        if self._stash:  # put what poll() took back in front, for the next reader
            conn = rt.conn()
            conn.execute("LPUSH", self._inbox, *reversed(self._stash))
            self._stash.clear()
        popen = _mp_context.get_spawning_popen()
        token = getattr(popen, "token", None)
        if token is not None:  # the child holds the end from now on
            _hold(rt, token, [self._end])
        return _rebuild, (self._pipe_key, self._side, self._readable, self._writable)


def _rebuild(pipe_key: str, side: str, readable: bool, writable: bool) -> Connection:
    conn = Connection(pipe_key, side, readable, writable)
    _acquire_local(runtime.current(), [conn._end])
    return conn


def Pipe(duplex: bool = True) -> tuple[Connection, Connection]:
    """A pair of connected ends; with ``duplex=False``, (receive-only, send-only)."""
    rt = runtime.current()
    key = rt.new_key("pipe")
    if duplex:
        a, b = Connection(key, "a", True, True), Connection(key, "b", True, True)
    else:
        a, b = Connection(key, "a", True, False), Connection(key, "b", False, True)
    _acquire_local(rt, [a._end, b._end])
    return a, b


class _FdBridge(threading.Thread):
    """Makes a Connection waitable as a file descriptor.

    The thread keeps the connection's next message fetched into its stash, and
    one byte in a pipe while the stash is not empty.
    """

    def __init__(self, owner: Connection) -> None:
        super().__init__(name=f"transparent_mp-fd-{owner._end}", daemon=True)
        self.inbox = owner._inbox
        self.stash = owner._stash
        self.r, self.w = os.pipe()
        self.cond = threading.Condition()
        self.stopped = False
        self.marked = False
        self.error: BaseException | None = None
        self.conn = resp.Connection(runtime.current().store_url)
        if self.stash:
            self._mark()

    def _mark(self) -> None:
        if not self.marked:
            os.write(self.w, b"x")
            self.marked = True

    def run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.stopped or not self.stash)
                if self.stopped:
                    return
            try:
                popped = self.conn.blpop([self.inbox], 1.0)
            except Exception as exc:
                with self.cond:
                    self.error = exc
                    self._mark()
                    self.cond.notify_all()
                return
            if popped is not None:
                with self.cond:
                    self.stash.append(popped[1])
                    self._mark()
                    self.cond.notify_all()

    def _wait(self, timeout: float | None) -> bool:
        ready = self.cond.wait_for(lambda: self.stash or self.error, timeout)
        if self.error is not None and not self.stash:
            raise self.error
        return bool(ready)

    def ready(self, timeout: float | None) -> bool:
        with self.cond:
            return self._wait(timeout)

    def take(self, timeout: float | None) -> bytes | None:
        with self.cond:
            if not self._wait(timeout):
                return None
            item = self.stash[0]
            if item != _EOF:
                self.stash.popleft()
            if not self.stash:
                os.read(self.r, 1)
                self.marked = False
                self.cond.notify_all()
            return item

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        self.join(5)
        os.close(self.r)
        os.close(self.w)
        self.conn.close()


# -- wait() --

class _Waiter(threading.Thread):
    """Blocks on the store for :func:`wait` while the caller selects on file descriptors."""

    def __init__(self) -> None:
        super().__init__(name="transparent_mp-wait", daemon=True)
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.conn = resp.Connection(runtime.current().store_url)  # a connection of its own
        self.client_id = self.conn.execute("CLIENT", "ID")
        self.pid = os.getpid()

    def run(self) -> None:
        while True:
            keys, timeout, done = self.requests.get()
            try:
                done.result = self.conn.blpop(keys, timeout)
            except resp.StoreError as exc:
                if "UNBLOCKED" not in str(exc):  # else: wait() has what it waited for
                    done.error = exc
            except BaseException as exc:
                done.error = exc
            os.write(done.w, b"x")


_waiter: _Waiter | None = None
_waiter_lock = threading.Lock()


def _get_waiter() -> _Waiter:
    global _waiter
    with _waiter_lock:
        if _waiter is None or _waiter.pid != os.getpid():
            _waiter = _Waiter()
            start_service_thread(_waiter)
        return _waiter


class _Pending:
    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.result = None
        self.error: BaseException | None = None


def _store_ready(conns: list[Connection]) -> list[Connection]:
    """Connections that can be read now (checked with one round trip)."""
    ready = [c for c in conns if c._stash]
    rest = [c for c in conns if not c._stash]
    if rest:
        lengths = runtime.current().conn().execute_many([("LLEN", c._inbox) for c in rest])
        ready += [c for c, n in zip(rest, lengths, strict=True) if n]
    return ready


def _stash_popped(conns: list[Connection], popped: tuple[bytes, bytes] | None) -> list:
    if popped is None:
        return []
    key, item = popped
    for c in conns:
        if c._inbox.encode() == key:
            c._stash.append(item)
            return [c]
    return []


def _wait_os(object_list, timeout: float | None) -> list:
    """The stdlib's wait for objects with a ``fileno()`` (or file descriptors)."""
    with selectors.PollSelector() as selector:
        for obj in object_list:
            selector.register(obj, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready = selector.select(timeout)
            if ready:
                return [key.fileobj for key, _ in ready]
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout < 0:
                    return []


def wait(object_list, timeout: float | None = None) -> list:
    """The stdlib's ``multiprocessing.connection.wait`` over our Connections too.

    Our Connections, Process sentinels, sockets and file descriptors may be mixed.
    """
    # a Connection whose fileno() was taken is waited on as a file descriptor
    ours = [o for o in object_list if isinstance(o, Connection) and o._bridge is None]
    others = [o for o in object_list if not any(o is c for c in ours)]
    if not ours:
        return _wait_os(others, timeout)
    for c in ours:
        c._check_closed()
    ready: list = _store_ready(ours)
    if others:
        ready += _wait_os(others, 0)
    if ready or (timeout is not None and timeout <= 0):
        return ready
    if not others:
        popped = runtime.current().conn().blpop([c._inbox for c in ours], timeout)
        return _stash_popped(ours, popped)
    return _wait_mixed(ours, others, timeout)


def _wait_mixed(ours: list[Connection], others: list, timeout: float | None) -> list:
    waiter = _get_waiter()
    pending = _Pending()
    waiter.requests.put(([c._inbox for c in ours], timeout, pending))
    ready: list = []
    try:
        ready = _wait_os([*others, pending.r], timeout)
    finally:
        # the waiter must be done with ``pending`` before its descriptors close
        if pending.r not in ready:
            conn = runtime.current().conn()
            while not _wait_os([pending.r], 0.05):
                conn.execute("CLIENT", "UNBLOCK", waiter.client_id, "ERROR")
        os.read(pending.r, 1)
        os.close(pending.r)
        os.close(pending.w)
    if pending.error is not None:
        raise pending.error
    found = [o for o in ready if o is not pending.r]
    return _stash_popped(ours, pending.result) + found
