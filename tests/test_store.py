"""The embedded Redis server, store connections and the run's key space."""

from __future__ import annotations

import os
import socket
import stat
import time

import pytest
import redis

from transparent_mp.store import KEY_TTL, Namespace, StoreUnavailable, connect, redacted
from transparent_mp.store.server import EmbeddedServer


def test_embedded_server_is_private(redis_server: EmbeddedServer):
    assert stat.S_IMODE(os.stat(redis_server.dir).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(redis_server.socket).st_mode)
    cmdline = open(f"/proc/{redis_server.process.pid}/cmdline", "rb").read()
    assert redis_server.password.encode() not in cmdline
    anonymous = redis.Redis(unix_socket_path=str(redis_server.socket), retry=None)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_embedded_server_keeps_nothing_on_disk(redis_client: redis.Redis):
    assert redis_client.config_get("save") == {"save": ""}
    assert redis_client.config_get("appendonly") == {"appendonly": "no"}
    assert redis_client.config_get("port") == {"port": "0"}  # no TCP listener


def test_stop_ends_the_server_and_removes_its_directory():
    server = EmbeddedServer()
    pid, directory = server.process.pid, server.dir
    server.stop()
    assert server.process.returncode is not None
    assert not directory.exists()
    assert not os.path.exists(f"/proc/{pid}/cmdline") or server.process.poll() is not None


def test_refused_url_is_a_clear_error():
    with pytest.raises(StoreUnavailable, match=r"cannot reach the Redis store at redis://"):
        connect("redis://127.0.0.1:1/0")


def test_silent_server_is_reported_within_seconds():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach"):
            connect(f"redis://127.0.0.1:{port}/0")
    finally:
        listener.close()
    assert time.monotonic() - start < 10


def test_wrong_password_is_a_clear_error(redis_server: EmbeddedServer):
    with pytest.raises(StoreUnavailable, match="refused the password"):
        connect(f"unix://{redis_server.socket}?password=wrong")


def test_redacted_hides_passwords():
    assert "s3cret" not in redacted("unix:///tmp/r.sock?password=s3cret")
    assert "s3cret" not in redacted("rediss://user:s3cret@host:6379/0")


def test_namespace_refresh_and_delete_touch_only_the_run(redis_server, redis_client):
    conn = connect(redis_server.url)
    ns, other = Namespace("run-a"), Namespace("run-b")
    redis_client.set(ns.key("x", 1), b"1", ex=5)
    redis_client.rpush(ns.key("list"), b"a")
    redis_client.set(other.key("y"), b"2")
    ns.refresh(conn)
    assert 5 < redis_client.ttl(ns.key("x", 1)) <= KEY_TTL
    assert 0 < redis_client.ttl(ns.key("list")) <= KEY_TTL
    assert redis_client.ttl(other.key("y")) == -1
    ns.delete_all(conn)
    assert ns.keys(conn) == []
    assert redis_client.get(other.key("y")) == b"2"
