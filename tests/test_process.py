"""Process on the local backend, with this test process as the driver."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from multiprocessing import connection
from multiprocessing.process import active_children, current_process, parent_process

import pytest

from transparent_mp.process import ForkProcess, Process, SpawnProcess

MODULE_STATE = "as in the source"


def noop() -> None:
    pass


def exit_with(code: object) -> None:
    sys.exit(code)


def hard_exit(code: int) -> None:
    os._exit(code)


def raise_value_error() -> None:
    raise ValueError("boom in child")


def die_by(sig: int) -> None:
    os.kill(os.getpid(), sig)


def wait_for_stdin_eof() -> None:
    """Blocks until killed: stdin is /dev/null in a child, so wait on a pipe nobody writes."""
    r, _w = os.pipe()
    print("running", flush=True)
    os.read(r, 1)


def report() -> None:
    me = current_process()
    parent = parent_process()
    print(json.dumps({
        "pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "name": me.name,
        "daemon": me.daemon, "authkey": bytes(me.authkey).hex(), "state": MODULE_STATE,
        "parent": [parent.name, parent.pid], "parent_alive": parent.is_alive(),
        "module": __name__,
    }), flush=True)


class Greeter(Process):
    def __init__(self, greeting: str) -> None:
        super().__init__(name="greeter")
        self.greeting = greeting

    def run(self) -> None:
        print(f"{self.greeting} from {current_process().name}", flush=True)


def child_report(capsys, process_class: type = Process, **kwargs) -> tuple[Process, dict]:
    p = process_class(target=report, **kwargs)
    p.start()
    p.join()
    assert p.exitcode == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")][-1]
    return p, json.loads(line)


@pytest.mark.parametrize(("target", "args", "exitcode"), [
    (noop, (), 0),
    (exit_with, (3,), 3),
    (exit_with, (None,), 0),
    (hard_exit, (7,), 7),
    (die_by, (signal.SIGSEGV,), -signal.SIGSEGV),
    (die_by, (signal.SIGTERM,), -signal.SIGTERM),
])
def test_exit_codes(driver, target, args, exitcode):
    p = Process(target=target, args=args)
    p.start()
    p.join()
    assert p.exitcode == exitcode
    assert not p.is_alive()


def test_exception_gives_exit_1_and_traceback_on_stderr(driver, capfd):
    p = Process(target=raise_value_error)
    p.start()
    p.join()
    assert p.exitcode == 1
    err = capfd.readouterr().err
    assert f"Process {p.name}:" in err
    assert "ValueError: boom in child" in err


def test_exit_with_message_prints_it(driver, capfd):
    p = Process(target=exit_with, args=("goodbye from the child",))
    p.start()
    p.join()
    assert p.exitcode == 1
    assert "goodbye from the child" in capfd.readouterr().err


@pytest.mark.parametrize(("method", "sig"), [("terminate", signal.SIGTERM),
                                            ("kill", signal.SIGKILL)])
def test_terminate_and_kill(driver, method, sig):
    p = Process(target=wait_for_stdin_eof)
    p.start()
    assert p.is_alive()
    assert p.join(0.05) is None and p.exitcode is None
    getattr(p, method)()
    p.join()
    assert p.exitcode == -sig
    assert not p.is_alive()


@pytest.mark.parametrize(("process_class", "state"), [
    (Process, "changed by the driver before start"),  # the default method here: fork
    (ForkProcess, "changed by the driver before start"),  # the child has a snapshot
    (SpawnProcess, "as in the source"),  # the module was rebuilt from source
])
def test_runs_in_another_process_and_directory(driver, capsys, process_class, state):
    global MODULE_STATE
    MODULE_STATE = "changed by the driver before start"
    try:
        p, seen = child_report(capsys, process_class)
    finally:
        MODULE_STATE = "as in the source"
    assert seen["pid"] == p.pid != os.getpid()
    assert seen["cwd"] != os.getcwd()
    assert os.path.basename(seen["cwd"]).startswith("transparent_mp-worker-")
    assert seen["state"] == state
    assert seen["name"] == p.name
    assert seen["authkey"] == bytes(current_process().authkey).hex()
    assert seen["parent"] == [current_process().name, os.getpid()]
    assert seen["parent_alive"] is True


def test_name_and_daemon_travel(driver, capsys):
    p, seen = child_report(capsys, name="worker-7", daemon=True)
    assert seen["name"] == "worker-7"
    assert seen["daemon"] is True


@pytest.mark.local_backend
def test_warm_worker_is_reused(driver, capsys):
    _, first = child_report(capsys)
    _, second = child_report(capsys)
    assert first["ppid"] == second["ppid"]  # the same warm worker forked both
    assert first["pid"] != second["pid"]  # each process starts from a clean state


def test_subclass_run_and_attributes_are_shipped(driver, capsys):
    p = Greeter("hello")
    p.start()
    p.join()
    assert p.exitcode == 0
    assert "hello from greeter" in capsys.readouterr().out


def test_sentinel_works_with_connection_wait(driver):
    slow = Process(target=wait_for_stdin_eof)
    fast = Process(target=noop)
    slow.start()
    fast.start()
    ready = connection.wait([slow.sentinel, fast.sentinel], timeout=30)
    assert ready == [fast.sentinel]
    slow.kill()
    assert connection.wait([slow.sentinel], timeout=30) == [slow.sentinel]
    slow.join()
    fast.join()


def test_unpicklable_argument_raises_at_start_and_invokes_nothing(driver):
    before = driver.stats["invocations"]
    p = SpawnProcess(target=noop, args=(threading.Lock(),))  # fork would give a fresh lock
    with pytest.raises(TypeError, match="lock"):
        p.start()
    assert driver.stats["invocations"] == before
    assert p not in active_children()


def test_active_children_and_close(driver):
    assert parent_process() is None
    p = Process(target=wait_for_stdin_eof)
    p.start()
    assert p in active_children()
    with pytest.raises(ValueError, match="still running"):
        p.close()
    p.terminate()
    p.join()
    assert p not in active_children()
    p.close()
    with pytest.raises(ValueError, match="closed"):
        p.is_alive()


def test_start_twice_is_an_error(driver):
    p = Process(target=noop)
    p.start()
    with pytest.raises(AssertionError, match="start a process twice"):
        p.start()
    p.join()


def _blocked_signals(thread: threading.Thread) -> int:
    status = open(f"/proc/self/task/{thread.native_id}/status").read()
    return int(status.split("SigBlk:")[1].split()[0], 16)


def test_signals_from_outside_reach_the_main_thread_not_ours(driver):
    """The package's threads block SIGINT and SIGTERM, so Ctrl-C or a child's
    os.kill(parent) interrupts the program's main thread (its blocking call on the
    store), as in plain python; the workers they start block nothing."""
    from transparent_mp.connection import Pipe, wait
    from transparent_mp.pool import Pool

    with Pool(1) as pool:
        assert pool.apply(os.getpid) != os.getpid()
        r, w = Pipe(duplex=False)
        w.send("ready")
        assert r.fileno() >= 0 and wait([r], 30) == [r]  # a bridge thread, and wait()'s
        ours = [t for t in threading.enumerate() if t.name.startswith("transparent_mp-")]
        assert {"transparent_mp-pool-tasks", "transparent_mp-pool-results",
                "transparent_mp-ttl"} <= {t.name for t in ours}
        for thread in ours:
            for sig in (signal.SIGINT, signal.SIGTERM):
                assert _blocked_signals(thread) & (1 << (sig - 1)), (thread.name, sig)
        assert not _blocked_signals(threading.main_thread()) & (1 << (signal.SIGINT - 1))
        worker = pool._core.workers[0]
        assert pool.apply(_own_blocked_signals) == 0, worker


def _own_blocked_signals() -> int:
    return _blocked_signals(threading.main_thread())
