"""A lean Redis connection for the primitives' hot paths.

One socket, RESP2 parsed by hiredis, no pool and no per-call machinery: a
command costs one ``sendmsg`` (large arguments are not copied) and the reads of
its reply. Commands whose reply nobody waits for (a queue ``put``, a pipe
``send``, a lock ``release``) are sent with :meth:`Connection.send_later`;
their replies are read, and any error raised, before the next reply is read,
so a message costs one write and no round trip of its own.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, unquote, urlparse

import hiredis

from . import scripts

CONNECT_TIMEOUT = 3.0
#: Longest a single non-blocking command may take before the store counts as lost.
COMMAND_TIMEOUT = 30.0

#: Seconds a blocking command may overrun its own timeout before the store counts as lost.
BLOCKING_MARGIN = 10.0
#: Longest single BLPOP; longer waits are made of several, each a liveness check.
WAIT_CHUNK = 30.0
_RECV_SIZE = 1 << 20
_INLINE_LIMIT = 1 << 14

Buffer = bytes | bytearray | memoryview
#: A command argument; a tuple of buffers is sent as one argument, without joining them.
Arg = Buffer | str | int | float | tuple[Buffer, ...]


class StoreUnavailable(ConnectionError):
    """The Redis store cannot be reached (or stopped answering)."""


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    url = re.sub(r"(password=)[^&]*", r"\1***", url)
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


class StoreError(RuntimeError):
    """The Redis server answered a command with an error."""


#: Errors our Lua scripts raise, and the exception each one means.
_SCRIPT_ERRORS = {
    "RELEASED_TOO_MANY": lambda: ValueError("semaphore or lock released too many times"),
    "TASK_DONE_TOO_MANY": lambda: ValueError("task_done() called too many times"),
}


def _error(reply: hiredis.ReplyError, earlier: bool = False) -> Exception:
    text = str(reply)
    for code, make in _SCRIPT_ERRORS.items():
        if code in text.split(" ", 1)[0]:
            return make()
    return StoreError(f"an earlier command failed: {text}" if earlier else text)


def _size(data: Buffer) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _encode(arg: Arg) -> Buffer:
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    return repr(arg).encode() if isinstance(arg, float) else str(arg).encode()


def _pack_large(args: Sequence[Arg], parts: list[Buffer]) -> None:
    """Frame one command whose large arguments are sent as buffers of their own."""
    head = bytearray(b"*%d\r\n" % len(args))
    for arg in args:
        pieces = arg if isinstance(arg, tuple) else (_encode(arg),)
        head += b"$%d\r\n" % sum(_size(p) for p in pieces)
        for data in pieces:
            if _size(data) < _INLINE_LIMIT:
                head += data
            else:
                parts.append(bytes(head))
                parts.append(data)
                head = bytearray()
        head += b"\r\n"
    parts.append(bytes(head))


def _pack(commands: Iterable[Sequence[Arg]]) -> list[Buffer]:
    """RESP frames for ``commands``; large arguments are not copied."""
    parts: list[Buffer] = []
    small = bytearray()
    for args in commands:
        flat = []
        large = False
        for arg in args:
            if isinstance(arg, tuple):
                if sum(_size(p) for p in arg) >= _INLINE_LIMIT:
                    large = True
                    break
                arg = b"".join(arg)
            elif isinstance(arg, memoryview) and arg.nbytes >= _INLINE_LIMIT:
                large = True
                break
            flat.append(arg)
        if large:
            if small:
                parts.append(bytes(small))
                small = bytearray()
            _pack_large(args, parts)
        else:
            small += hiredis.pack_command(tuple(flat))
    if small:
        parts.append(bytes(small))
    return parts


class Connection:
    """One connection to the store; use from one thread at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._reader = hiredis.Reader()
        self._buf = bytearray(_RECV_SIZE)
        self._deferred = 0  # replies of send_later() commands not read yet
        self._checks: deque = deque()  # for each of them: None, or what to check it with
        self._unread = 0  # replies an interrupted execute_many() did not read
        self.client_id = 0
        self._sock = self._connect(url)

    def _connect(self, url: str) -> socket.socket:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        password = unquote(parsed.password) if parsed.password else query.get("password", [None])[0]
        username = unquote(parsed.username) if parsed.username else None
        try:
            if parsed.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(CONNECT_TIMEOUT)
                sock.connect(parsed.path)
            else:
                sock = socket.create_connection((parsed.hostname or "localhost",
                                                 parsed.port or 6379), CONNECT_TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if parsed.scheme == "rediss":
                    context = ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=parsed.hostname)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot reach the Redis store at {redacted(url)}: {exc}") from exc
        self._sock = sock
        login: list[tuple] = []  # first, alone: the server drops unauthenticated long commands
        if password:
            login.append(("AUTH", username, password) if username else ("AUTH", password))
        if parsed.scheme == "unix":
            db = query.get("db", ["0"])[0]
        else:
            db = (parsed.path or "/0").lstrip("/")
        if db and db != "0":
            login.append(("SELECT", db))
        login.append(("CLIENT", "ID"))
        try:
            *_, self.client_id = self.execute_many(login)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"cannot reach the Redis store at {redacted(url)}: "
                                   f"{exc.__cause__ or exc}") from exc
        except StoreError as exc:
            self.close()
            raise StoreUnavailable(
                f"the Redis store at {redacted(url)} refused the password: {exc}") from exc
        loaded = self.execute("SCRIPT", "EXISTS", *(script.sha for script in scripts.ALL))
        missing = [script for script, ok in zip(scripts.ALL, loaded, strict=True) if not ok]
        if missing:  # the first connection to this server: load them, once
            self.execute_many([("SCRIPT", "LOAD", script.source) for script in missing])
        sock.settimeout(COMMAND_TIMEOUT)
        return sock

    # -- writing --
    def _send(self, commands: Iterable[Sequence[Arg]]) -> None:
        if self._sock is None:
            raise StoreUnavailable(f"the connection to {redacted(self.url)} was lost")
        while self._unread:  # an interrupted call's replies: not ours to return
            self._read_reply()
            self._unread -= 1
        parts = _pack(commands)
        try:
            if len(parts) == 1:
                self._sock.sendall(parts[0])
            else:
                for part in parts:
                    self._sock.sendall(part)
        except OSError as exc:
            self._lost(exc)

    # -- reading --
    def _read_reply(self) -> object:
        reader = self._reader
        while True:
            reply = reader.gets()
            if reply is not False:
                return reply
            try:
                n = self._sock.recv_into(self._buf)
            except TimeoutError as exc:
                self._lost(exc, "stopped answering")
            except OSError as exc:
                self._lost(exc)
            if n == 0:
                self._lost(ConnectionError("connection closed by the server"))
            reader.feed(self._buf, 0, n)

    def _drain_deferred(self) -> None:
        while self._deferred:
            reply = self._read_reply()
            self._deferred -= 1
            check = self._checks.popleft()
            if isinstance(reply, hiredis.ReplyError):
                raise _error(reply, earlier=True)
            if check is not None:
                check(reply)

    def _lost(self, exc: BaseException, what: str = "lost the connection") -> None:
        self.close()
        raise StoreUnavailable(f"the Redis store at {redacted(self.url)} {what}: {exc}") from exc

    # -- the API --
    @staticmethod
    def script(script: scripts.Script, keys: Sequence[Arg], args: Sequence[Arg]) -> tuple:
        """The command that runs ``script`` (for :meth:`execute_many` and friends)."""
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def run(self, script: scripts.Script, keys: Sequence[Arg], args: Sequence[Arg]) -> object:
        return self.execute(*self.script(script, keys, args))

    def send_later(self, *commands: Sequence[Arg], check=None) -> None:
        """Send ``commands`` now; their replies are checked before the next reply is read
        (errors raise; ``check``, if given, is called with the last one's reply)."""
        self._send(commands)
        self._deferred += len(commands)
        self._checks.extend([None] * (len(commands) - 1))
        self._checks.append(check)

    def execute(self, *args: Arg) -> object:
        """Run one command and return its reply."""
        return self.execute_many((args,))[0]

    def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list:
        """Run ``commands`` in one round trip; a server error raises :class:`StoreError`."""
        self._send(commands)
        try:
            self._drain_deferred()
        except BaseException:  # an earlier command's error: this call's replies still come
            self._unread += len(commands)
            raise
        replies: list = []
        try:
            for _ in commands:
                replies.append(self._read_reply())
        except StoreUnavailable:
            raise
        except BaseException:  # KeyboardInterrupt and the like: the replies still come
            self._unread = len(commands) - len(replies)
            raise
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise _error(reply)
        return replies

    def execute_blocking(self, timeout: float, *args: Arg) -> object:
        """Run a blocking command (BLPOP, ...) whose server-side timeout is ``timeout``."""
        self._sock.settimeout(timeout + BLOCKING_MARGIN)
        try:
            return self.execute(*args)
        finally:
            if self._sock is not None:
                self._sock.settimeout(COMMAND_TIMEOUT)

    def blpop(self, keys: Sequence[str], timeout: float | None) -> tuple[bytes, bytes] | None:
        """Pop the first item of the first non-empty list of ``keys``, waiting up to
        ``timeout`` seconds (None: for ever) on the server; None on timeout."""
        if timeout is not None and timeout <= 0:
            for key in keys:
                item = self.execute("LPOP", key)
                if item is not None:
                    return key.encode(), item
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            chunk = WAIT_CHUNK if deadline is None else min(WAIT_CHUNK,
                                                            deadline - time.monotonic())
            if chunk <= 0:
                return None
            try:
                # at least 1 ms: a BLPOP timeout that rounds to 0 would block for ever
                reply = self.execute_blocking(chunk, "BLPOP", *keys, f"{max(chunk, 0.001):.3f}")
            except StoreUnavailable:
                raise
            except BaseException:
                self._undo_interrupted_blpop()
                raise
            if reply is not None:
                return reply[0], reply[1]

    def _undo_interrupted_blpop(self) -> None:
        """After an interrupted BLPOP: unblock it and put back what it popped, if anything."""
        if not self._unread:
            return
        side = Connection(self.url)
        try:
            side.execute("CLIENT", "UNBLOCK", self.client_id)
        finally:
            side.close()
        reply = self._read_reply()
        self._unread -= 1
        if isinstance(reply, list):
            self.execute("LPUSH", reply[0], reply[1])

    def flush(self) -> None:
        """Wait for every reply sent with :meth:`send_later`."""
        self._drain_deferred()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None  # type: ignore[assignment]


def ping(url: str) -> None:
    """Connect to ``url``, authenticate and PING; :class:`StoreUnavailable` if that fails."""
    conn = Connection(url)
    try:
        conn.execute("PING")
    finally:
        conn.close()


def connect(url: str) -> Connection:
    """A connection to ``url`` that has answered, or :class:`StoreUnavailable` within
    :data:`CONNECT_TIMEOUT` seconds (also for a server that accepts but never answers)."""
    return Connection(url)
