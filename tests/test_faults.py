"""Faults: Ctrl-C, a killed driver, an unreachable store, processes left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import APPS, command, descendants, pid_alive, run


def wait_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """The pids still alive after waiting up to ``timeout`` for them to exit."""
    deadline = time.monotonic() + timeout
    alive = {p for p in pids if pid_alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {p for p in alive if pid_alive(p)}
    return alive


def start_interruptible(*options: str) -> tuple[subprocess.Popen, list[int]]:
    argv, env = command("cli", [*options, "interrupt_me.py"])
    proc = subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("children"), proc.stderr.read() if proc.poll() is not None else line
    return proc, [int(pid) for pid in line.split()[1:]]


def test_ctrl_c_stops_remote_processes_and_leaves_nothing(redis_server, redis_client):
    proc, children = start_interruptible("--redis-url", redis_server.url)
    try:
        helpers = descendants(proc.pid)  # workers and the children they forked
        assert set(children) <= helpers
        assert redis_client.keys("tmp:*")  # the run is using the store
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT  # as plain python dies of an uncaught Ctrl-C
    assert wait_gone(helpers) == set()
    assert redis_client.keys("tmp:*") == []


def test_killed_driver_takes_its_server_and_workers_along():
    proc, children = start_interruptible()
    helpers = descendants(proc.pid)
    assert set(children) <= helpers and len(helpers) > len(children)  # + redis-server
    proc.kill()
    proc.communicate(timeout=30)
    assert wait_gone(helpers) == set()


def test_a_grandchild_outlives_its_terminated_parent_and_dies_with_the_driver():
    argv, env = command("cli", ["orphaned_grandchild.py"])
    proc = subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("orphan"), proc.stderr.read() if proc.poll() is not None else line
        _, pid, parent_alive = line.split()
        assert parent_alive == "False"  # it saw its parent die, and lived on
        orphan = {int(pid), _parent_of(int(pid))}  # and its worker, no longer ours
        assert all(pid_alive(p) for p in orphan)
        helpers = descendants(proc.pid) | orphan
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert wait_gone(helpers) == set()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_daemonic_children_are_terminated_at_exit():
    result = run("cli", ["daemon_left_running.py"])
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[1])
    assert wait_gone({pid}) == set()


def test_unreachable_store_is_a_clear_error_not_a_hang():
    start = time.monotonic()
    result = run("cli", ["--redis-url", "redis://127.0.0.1:1/0", "interrupt_me.py"])
    assert time.monotonic() - start < 20
    assert result.returncode == 1
    assert "cannot reach the Redis store at redis://127.0.0.1:1/0" in result.stderr


def test_keys_written_by_a_run_carry_a_ttl(redis_server, redis_client):
    code = ("import multiprocessing as mp\n"
            "p = mp.Process(target=print, args=('hi',)); p.start(); p.join()\n"
            "import redis, sys\n"
            "from transparent_mp import runtime\n"
            "rt = runtime.current()\n"
            "ttls = [rt.conn().execute('TTL', k) for k in rt.namespace.keys(rt.conn())]\n"
            "print(len(ttls), all(t > 0 for t in ttls))\n")
    result = run("cli", ["--redis-url", redis_server.url, "-c", code])
    assert result.returncode == 0, result.stderr
    # the preparation data and the fork snapshot, each with a TTL
    assert result.stdout.split() == ["hi", "2", "True"]
    assert redis_client.keys("tmp:*") == []  # and a finished run deletes its keys


@pytest.mark.local_backend
def test_worker_killed_while_idle_is_replaced(driver):
    from transparent_mp.process import Process

    first = Process(target=os.getpid)
    first.start()
    first.join()
    zygotes = descendants(os.getpid()) - {driver.server.process.pid}
    for pid in zygotes:
        os.kill(pid, signal.SIGKILL)
    assert wait_gone(zygotes) == set()
    second = Process(target=os.getpid)
    second.start()
    second.join()
    assert second.exitcode == 0


def test_lost_store_during_a_blocking_get_is_a_clear_error(redis_server):
    argv, env = command("cli", ["--redis-url", redis_server.url, "blocked_get.py"])
    proc = subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "waiting\n"
        redis_server.process.kill()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "StoreUnavailable" in err and "lost the connection" in err


def test_stdlib_exception_classes_are_kept():
    code = ("import multiprocessing as mp, multiprocessing.context as c\n"
            "print(mp.TimeoutError is c.TimeoutError, mp.ProcessError is c.ProcessError,\n"
            "      mp.BufferTooShort is c.BufferTooShort,\n"
            "      mp.AuthenticationError is c.AuthenticationError,\n"
            "      type(mp.Queue()).__module__, type(mp.Lock()).__module__)\n")
    result = run("cli", ["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 4 + ["transparent_mp.queues",
                                                    "transparent_mp.synchronize"]


def test_a_child_whose_parent_died_before_it_asked_to_die_with_it_exits(tmp_path):
    # A forks B and exits at once; B, asking only then to die with A, must not live on
    # as an orphan (the zygote's children and the driver's workers have this race).
    report = tmp_path / "report"
    code = ("import os, sys, time\n"
            "from transparent_mp.util import die_with_parent\n"
            "parent = os.getpid()\n"
            "if os.fork() == 0:\n"
            "    while os.getppid() == parent:\n"
            "        time.sleep(0.01)\n"
            f"    open({str(report)!r}, 'w').write(str(os.getpid()))\n"
            "    die_with_parent(parent_pid=parent)\n"
            f"    open({str(report)!r}, 'w').write('lived on')\n"
            "    os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    deadline = time.monotonic() + 60
    while not (report.exists() and report.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphan = int(report.read_text())
    assert wait_gone({orphan}) == set()
    assert report.read_text() == str(orphan)  # it exited in die_with_parent
