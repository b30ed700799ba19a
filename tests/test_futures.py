"""concurrent.futures.ProcessPoolExecutor on remote workers."""

from __future__ import annotations

import concurrent.futures as cf
import time
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.pool import RemoteTraceback

import pytest
from conftest import run

from transparent_mp import compat
from transparent_mp.futures import ProcessPoolExecutor
from transparent_mp.synchronize import Event


def cube(x: int) -> int:
    return x ** 3


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def explode(message: str) -> None:
    raise RuntimeError(message)


PREFIX = "unset"


def init(prefix: str) -> None:
    global PREFIX
    PREFIX = prefix


def tag(x: int) -> str:
    return f"{PREFIX}{x}"


def test_submit_map_and_the_futures_api(driver):
    with ProcessPoolExecutor(max_workers=2) as ex:
        futures = [ex.submit(cube, i) for i in range(10)]
        assert sorted(f.result(30) for f in cf.as_completed(futures)) == [i ** 3 for i in range(10)]
        assert [f.result() for f in futures] == [i ** 3 for i in range(10)]
        done, not_done = cf.wait(futures, timeout=30)
        assert len(done) == 10 and not not_done
        assert list(ex.map(cube, range(25), chunksize=4)) == [i ** 3 for i in range(25)]


def test_exception_and_remote_traceback(driver):
    with ProcessPoolExecutor(2) as ex:
        future = ex.submit(explode, "kaboom")
        with pytest.raises(RuntimeError, match="kaboom") as info:
            future.result(30)
    assert isinstance(info.value.__cause__, RemoteTraceback)


def test_map_timeout(driver):
    with ProcessPoolExecutor(1) as ex:
        results = ex.map(nap, [0.5], timeout=0.05)
        with pytest.raises(cf.TimeoutError):
            next(results)


def test_initializer_and_max_tasks_per_child(driver):
    with ProcessPoolExecutor(2, initializer=init, initargs=("x-",),
                             max_tasks_per_child=2) as ex:
        assert list(ex.map(tag, range(6))) == [f"x-{i}" for i in range(6)]


def hold(started, release) -> str:
    started.set()
    release.wait(30)
    return "held"


def test_shutdown_cancels_pending_futures_and_refuses_new_ones(driver):
    ex = ProcessPoolExecutor(1)
    started, release = Event(), Event()
    blocker = ex.submit(hold, started, release)
    assert started.wait(30)  # the only worker is busy with it
    queued = [ex.submit(cube, i) for i in range(5)]
    assert blocker.cancel() is False  # a worker has it
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    release.set()
    assert blocker.result(30) == "held"
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(cube, 1)
    with pytest.raises(ValueError):
        ProcessPoolExecutor(0)


def test_the_hook_redirects_concurrent_futures():
    code = ("import concurrent.futures as cf\n"
            "def f(x): return x + 1\n"
            "if __name__ == '__main__':\n"
            "    with cf.ProcessPoolExecutor(2) as ex:\n"
            "        print(cf.ProcessPoolExecutor.__module__, list(ex.map(f, range(3))))\n")
    result = run("cli", ["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1) == ["transparent_mp.futures", "[1, 2, 3]\n"]


def test_max_tasks_per_child_refuses_a_fork_context_as_the_stdlib(driver):
    from transparent_mp.context import RemoteContext

    with pytest.raises(ValueError, match="incompatible with the 'fork'"):
        ProcessPoolExecutor(2, mp_context=RemoteContext("fork"), max_tasks_per_child=1)
    with pytest.raises(TypeError, match="must be an integer"):
        ProcessPoolExecutor(2, max_tasks_per_child=1.5)


def test_map_zips_its_iterables_and_stops_at_the_shortest(driver):
    with ProcessPoolExecutor(2) as ex:
        assert list(ex.map(pow, range(7), [2] * 5, chunksize=2)) == [i ** 2 for i in range(5)]
        assert list(ex.map(cube, [])) == []


def test_map_buffersize_as_this_versions_stdlib(driver):
    with ProcessPoolExecutor(1) as ex:
        if compat.EXECUTOR_MAP_BUFFERSIZE:
            assert list(ex.map(cube, range(6), buffersize=2)) == [i ** 3 for i in range(6)]
        else:
            with pytest.raises(TypeError, match="buffersize"):
                ex.map(cube, range(6), buffersize=2)
    with cf.process.ProcessPoolExecutor(1) as stdlib:  # the same outcome as the stdlib's
        if not compat.EXECUTOR_MAP_BUFFERSIZE:
            with pytest.raises(TypeError, match="buffersize"):
                stdlib.map(cube, range(6), buffersize=2)


def test_forced_shutdown_breaks_what_is_running_or_pending(driver):
    """3.14's terminate_workers/kill_workers: the running and the queued futures get
    BrokenProcessPool, the executor takes nothing new."""
    ex = ProcessPoolExecutor(1)
    assert hasattr(ex, "terminate_workers") == compat.EXECUTOR_TERMINATE_WORKERS
    started, release = Event(), Event()
    running = ex.submit(hold, started, release)
    assert started.wait(30)
    queued = ex.submit(cube, 2)
    ex._force_shutdown(kill=True)
    with pytest.raises(BrokenProcessPool):
        running.result(30)
    assert queued.cancelled() or isinstance(queued.exception(30), BrokenProcessPool)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(cube, 1)
    ex.shutdown(wait=True)
