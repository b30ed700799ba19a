"""Managers: the stdlib's ``multiprocessing.managers``, over the store.

The stdlib's managers (``BaseManager``, ``SyncManager``, ``register``, proxies,
reference counting, nested proxies) are kept whole. What changes is where they
run and how they talk:

* the server is started with the remote context's ``Process``, so it is an
  invocation like any other process (``Manager()`` works unchanged);
* its listener and its clients' connections are pipes in the store, so a
  server and its proxies reach each other from any worker, on any machine.

The hook puts :data:`listener_client` into ``multiprocessing.managers`` and
the remote ``Pipe`` into ``multiprocessing.connection``; everything else is
the stdlib's code, so a custom ``BaseManager`` subclass in unmodified code
works too. Each method call on a proxy is one message each way, served by one
thread per connection in the server, as in the stdlib: every call is atomic.
"""

from __future__ import annotations

from multiprocessing import AuthenticationError
from multiprocessing import connection as _mp_connection

from . import runtime
from .connection import Connection, Pipe, _acquire_local

__all__ = ["Client", "Listener", "listener_client"]

_HELLO = b"#TRANSPARENT_MP_ACCEPTED"


class Listener:
    """Accepts connections at an address that is a key of the store."""

    def __init__(self, address: str | None = None, family=None, backlog: int = 1,
                 authkey: bytes | None = None) -> None:
        if authkey is not None and not isinstance(authkey, bytes):
            raise TypeError("authkey should be a byte string")
        rt = runtime.current()
        self._address = address or rt.new_key("listener")
        self._authkey = authkey
        self._closed = False
        self._last_accepted: str | None = None

    @property
    def address(self) -> str:
        return self._address

    @property
    def last_accepted(self) -> str | None:
        return self._last_accepted

    def accept(self) -> Connection:
        if self._closed:
            raise OSError("listener is closed")
        popped = runtime.current().conn().blpop([self._address + ":accept"], None)
        pipe_key = popped[1].decode()
        conn = Connection(pipe_key, "b", True, True)
        _acquire_local(runtime.current(), [conn._end])
        conn.send_bytes(_HELLO)  # the client may now let go of this end
        if self._authkey is not None:
            _mp_connection.deliver_challenge(conn, self._authkey)
            _mp_connection.answer_challenge(conn, self._authkey)
        self._last_accepted = pipe_key
        return conn

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def Client(address: str, family=None, authkey: bytes | None = None) -> Connection:
    """A connection to the :class:`Listener` at ``address``."""
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError("authkey should be a byte string")
    mine, theirs = Pipe()
    conn = runtime.current().conn()
    conn.execute("RPUSH", address + ":accept", mine._pipe_key)
    if mine.recv_bytes() != _HELLO:
        raise AuthenticationError("the listener did not accept the connection")
    theirs.close()  # the listener holds it now: if it goes, we get EOF
    if authkey is not None:
        _mp_connection.answer_challenge(mine, authkey)
        _mp_connection.deliver_challenge(mine, authkey)
    return mine


#: What ``multiprocessing.managers`` uses to serve and to reach a manager.
listener_client = {
    "pickle": (Listener, Client),
    "xmlrpclib": (_mp_connection.XmlListener, _mp_connection.XmlClient),
}
