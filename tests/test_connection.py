"""Pipe, Connection and wait() over the store."""

from __future__ import annotations

import array
import os
import socket
import threading

import pytest

from transparent_mp.connection import BufferTooShort, Pipe, wait
from transparent_mp.process import Process


def echo(conn) -> None:
    while (msg := conn.recv_bytes()) != b"stop":
        conn.send_bytes(msg)
    conn.close()


def env_worker(remote, parent_remote) -> None:
    """What stable-baselines3's SubprocVecEnv worker does with its pipe."""
    parent_remote.close()
    while True:
        cmd, data = remote.recv()
        if cmd == "step":
            remote.send(data * 2)
        elif cmd == "close":
            remote.close()
            break


def send_then_block(conn) -> None:
    conn.send("last words")
    r, _w = os.pipe()
    os.read(r, 1)


def test_objects_and_bytes_cross_processes(driver):
    conn, child = Pipe()
    p = Process(target=echo, args=(child,))
    p.start()
    child.close()
    conn.send_bytes(b"hello")
    assert conn.recv_bytes() == b"hello"
    conn.send_bytes(array.array("i", range(4)))
    buf = array.array("i", [0] * 10)
    assert conn.recv_bytes_into(buf, 3 * buf.itemsize) == 16
    assert list(buf) == [0, 0, 0, 0, 1, 2, 3, 0, 0, 0]
    big = os.urandom(16 << 20)
    conn.send_bytes(big)
    assert conn.recv_bytes() == big
    conn.send_bytes(b"x" * 50)
    with pytest.raises(BufferTooShort) as info:
        conn.recv_bytes_into(bytearray(10))
    assert info.value.args == (b"x" * 50,)
    conn.send_bytes(b"stop")
    p.join()
    with pytest.raises(EOFError):  # the child closed its end and is gone
        conn.recv()


def test_send_recv_poll_in_one_process(driver):
    a, b = Pipe()
    assert not b.poll()
    assert not b.poll(0.1)
    a.send({"k": (1, 2)})
    assert b.poll(5)
    assert b.poll()  # still there: poll does not consume
    assert b.recv() == {"k": (1, 2)}
    b.send_bytes(b"abcdef", 2, 3)
    assert a.recv_bytes() == b"cde"
    a.send_bytes(b"too long")
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(maxlength=3)
    with pytest.raises(ValueError):
        a.send_bytes(b"abc", 4)
    a.close()
    b.close()


def test_subprocvecenv_pattern_gives_eof_only_when_every_holder_closed(driver):
    remote, work_remote = Pipe()
    p = Process(target=env_worker, args=(work_remote, remote), daemon=True)
    p.start()
    work_remote.close()  # the parent's copy only: the child's stays open
    for i in range(20):
        remote.send(("step", i))
        assert remote.recv() == 2 * i
    remote.send(("close", None))
    p.join()
    with pytest.raises(EOFError):
        remote.recv()
    with pytest.raises(EOFError):  # and again: end of file stays
        remote.recv()


def test_killed_holder_gives_eof_after_its_data(driver):
    conn, child = Pipe()
    p = Process(target=send_then_block, args=(child,))
    p.start()
    child.close()
    assert conn.recv() == "last words"
    p.kill()
    p.join()
    with pytest.raises(EOFError):
        conn.recv()


def test_send_to_a_closed_peer_is_broken_pipe(driver):
    a, b = Pipe()
    b.close()
    with pytest.raises(BrokenPipeError):
        a.send("nobody listens")
        a.poll()  # the refusal may come with the next call


def test_closed_and_one_way_handles_raise_oserror(driver):
    r, w = Pipe(duplex=False)
    assert (r.readable, r.writable, w.readable, w.writable) == (True, False, False, True)
    with pytest.raises(OSError, match="read-only"):
        r.send(1)
    with pytest.raises(OSError, match="write-only"):
        w.recv()
    w.send("one way")
    assert r.recv() == "one way"
    w.close()
    assert w.closed
    with pytest.raises(OSError, match="handle is closed"):
        w.send(2)
    r.close()


def test_unpicklable_message_raises_and_pipe_stays_usable(driver):
    a, b = Pipe()
    with pytest.raises(TypeError):
        a.send(threading.Lock())
    a.send("fine")
    assert b.recv() == "fine"


def test_fileno_is_a_real_descriptor(driver):
    a, b = Pipe()
    fd = b.fileno()
    assert isinstance(fd, int)
    assert wait([fd], 0.1) == []
    a.send("wake")
    assert wait([fd], 10) == [fd]
    assert b.recv() == "wake"
    assert wait([fd], 0.1) == []
    a.close()
    b.close()


def test_wait_mixes_connections_sentinels_and_sockets(driver):
    a, b = Pipe()
    c, d = Pipe()
    left, right = socket.socketpair()
    p = Process(target=send_then_block, args=(d,))
    p.start()
    assert wait([b, left, p.sentinel], 0.1) == []
    ready = wait([b, c, left, p.sentinel], 30)
    assert ready == [c]
    assert c.recv() == "last words"
    right.send(b"x")
    assert wait([b, left, p.sentinel], 30) == [left]
    left.recv(1)
    p.kill()
    assert wait([b, left, p.sentinel], 30) == [p.sentinel]
    p.join()
    a.send("now")
    assert wait([b, left], 30) == [b]
    assert b.recv() == "now"
    left.close()
    right.close()
