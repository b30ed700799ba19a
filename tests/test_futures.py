"""concurrent.futures.ProcessPoolExecutor on remote workers."""

from __future__ import annotations

import concurrent.futures as cf
import time
from multiprocessing.pool import RemoteTraceback

import pytest
from conftest import run

from transparent_mp.futures import ProcessPoolExecutor


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


def test_shutdown_cancels_pending_futures_and_refuses_new_ones(driver):
    ex = ProcessPoolExecutor(1)
    blocker = ex.submit(nap, 0.3)
    queued = [ex.submit(cube, i) for i in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert blocker.result() == 0.3
    assert all(f.cancelled() or f.result() == i ** 3 for i, f in enumerate(queued))
    assert any(f.cancelled() for f in queued)
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
