"""Pool: the stdlib's API and semantics on remote workers, and surviving dead workers."""

from __future__ import annotations

import itertools
import os
import signal
import time
from multiprocessing import TimeoutError as MPTimeoutError
from multiprocessing.pool import MaybeEncodingError, RemoteTraceback

import pytest

from transparent_mp.pool import Pool
from transparent_mp.synchronize import Event

GLOBAL = "as in the source"


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


def fail(x: int) -> None:
    raise KeyError(f"no {x}")


def slow_square(x: int, delay: float = 0.002) -> int:
    time.sleep(delay)
    return x * x


def set_global(value: str) -> None:
    global GLOBAL
    GLOBAL = value


def read_global(_: object) -> str:
    return GLOBAL


def worker_pid(_: object) -> int:
    return os.getpid()


def unpicklable_result(_: object):
    return lambda: 42


@pytest.fixture
def pool(driver):
    with Pool(2) as p:
        yield p


def test_map_starmap_apply(pool):
    assert pool.map(square, range(100)) == [x * x for x in range(100)]
    assert pool.map(square, range(10), chunksize=1) == [x * x for x in range(10)]
    assert pool.map(square, []) == []
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.apply(add, (2, 3)) == 5
    assert pool.apply(add, (), {"a": 1, "b": 1}) == 2


def test_async_results_and_callbacks(pool):
    got, errors = [], []
    r = pool.map_async(square, range(5), callback=got.append)
    assert r.get(30) == [0, 1, 4, 9, 16] and r.ready() and r.successful()
    assert got == [[0, 1, 4, 9, 16]]
    e = pool.apply_async(fail, (3,), error_callback=errors.append)
    e.wait(30)
    assert e.ready() and not e.successful()
    assert isinstance(errors[0], KeyError)


def test_get_timeout_leaves_the_job_running(pool):
    r = pool.apply_async(slow_square, (7, 0.5))
    with pytest.raises(MPTimeoutError):
        r.get(0.05)
    assert r.get(30) == 49


def test_exception_carries_the_remote_traceback(pool):
    with pytest.raises(KeyError, match="no 5") as info:
        pool.apply(fail, (5,))
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert 'raise KeyError(f"no {x}")' in cause.tb


def test_unpicklable_result_is_an_error_not_a_hang(pool):
    with pytest.raises(MaybeEncodingError):
        pool.apply_async(unpicklable_result, (1,)).get(30)
    assert pool.apply(square, (3,)) == 9  # and the pool goes on


def test_imap_consumes_an_infinite_generator_lazily(driver):
    with Pool(2) as p:  # as in the stdlib, the endless job keeps its pool's feeder busy
        infinite = p.imap(square, itertools.count())
        assert [next(infinite) for _ in range(50)] == [x * x for x in range(50)]


def test_imap_is_ordered_and_imap_unordered_is_not(pool):
    assert list(pool.imap(square, range(20), chunksize=3)) == [x * x for x in range(20)]
    gate = Event()  # the first task waits for it; it opens once another result is in
    results = pool.imap_unordered(_gated, [(0, gate), (1, None), (2, None), (3, None)])
    first = results.next(60)
    gate.set()
    assert first != 0
    assert sorted([first, *results]) == [0, 1, 2, 3]


def _gated(pair):
    index, gate = pair
    if gate is not None:
        assert gate.wait(60), "the gate never opened"
    return index


def test_initializer_sets_a_global_its_tasks_see(driver):
    with Pool(2, initializer=set_global, initargs=("set by the initializer",)) as p:
        assert set(p.map(read_global, range(20), chunksize=1)) == {"set by the initializer"}


def test_maxtasksperchild_replaces_workers(driver):
    with Pool(2, maxtasksperchild=3) as p:
        pids = p.map(worker_pid, range(30), chunksize=1)
    assert len(set(pids)) >= 10  # 30 tasks, at most 3 per worker


def test_closed_pool_refuses_work(driver):
    p = Pool(2)
    assert p.map(square, [2]) == [4]
    with pytest.raises(ValueError, match="still running"):
        p.join()
    p.close()
    with pytest.raises(ValueError, match="Pool not running"):
        p.apply_async(square, (1,))
    p.join()
    assert p._pool == []


def test_killed_workers_lose_no_task(driver):
    """Workers killed in the middle of a map of thousands of tasks: exact results."""
    with Pool(2) as p:
        result = p.starmap_async(slow_square, ((x, 0.0005) for x in range(3000)), chunksize=5)
        for _ in range(2):
            time.sleep(0.3)
            for pid in [w.pid for w in p._pool]:
                os.kill(pid, signal.SIGKILL)
        assert result.get(120) == [x * x for x in range(3000)]
        assert len(p._pool) == 2  # replaced


def test_context_manager_terminates(driver):
    with Pool(1) as p:
        workers = list(p._pool)
        p.apply_async(slow_square, (1, 30))
    for w in workers:
        w.join(30)
        assert w.exitcode == -signal.SIGTERM


def column_sum(X, column: int):
    return float(X[:, column].sum()), X.flags.writeable


def test_a_shared_large_argument_travels_once(pool, driver):
    np = pytest.importorskip("numpy")
    X = np.random.default_rng(1).standard_normal((4000, 32))  # 1 MB, shared by every task
    results = pool.starmap(column_sum, [(X, i % 32) for i in range(64)], chunksize=1)
    assert [r[0] for r in results] == [float(X[:, i % 32].sum()) for i in range(64)]
    assert not any(r[1] for r in results)  # read-only in the workers: no task can change it
    blobs = [k for k in driver.namespace.keys(driver.conn()) if b":blob:" in k]
    assert len(blobs) == 1  # stored once, not 64 times


class ShortLivedPool(Pool):
    _retire_after = 0.3  # as a backend's time limit would make it, less the margin


def test_workers_retire_before_their_time_limit_and_are_replaced(driver):
    with ShortLivedPool(2) as p:
        first = {w.pid for w in p._pool}
        results = p.starmap(slow_square, [(x, 0.02) for x in range(60)], chunksize=1)
        assert results == [x * x for x in range(60)]
        assert {w.pid for w in p._pool} != first  # replaced, and no task lost


DRIVER_PID = os.getpid()


def _only_in_the_driver() -> str:
    if os.getpid() != DRIVER_PID:
        raise LookupError("this argument cannot be rebuilt in a worker")
    return "rebuilt"


class LoadsOnlyInTheDriver:
    def __reduce__(self):
        return _only_in_the_driver, ()


def test_a_task_that_cannot_be_unpickled_in_the_worker_fails_alone(pool):
    pids = {p.pid for p in pool._pool}
    with pytest.raises(LookupError, match="cannot be rebuilt in a worker") as caught:
        pool.apply(square, (LoadsOnlyInTheDriver(),))
    assert isinstance(caught.value.__cause__, RemoteTraceback)  # the worker's traceback
    assert "_only_in_the_driver" in str(caught.value.__cause__)
    with pytest.raises(LookupError):
        pool.map(square, [1, LoadsOnlyInTheDriver(), 3], chunksize=1)
    assert pool.map(square, range(10)) == [x * x for x in range(10)]  # the pool goes on
    assert {p.pid for p in pool._pool} == pids  # with the same workers: none crashed


def test_a_fork_pool_sees_the_state_at_its_start_and_a_spawn_pool_the_source(driver):
    from transparent_mp.process import ForkProcess, SpawnProcess

    class Context:
        def __init__(self, process_class):
            self.Process = process_class

    set_global("set by the driver")
    try:
        with Pool(1, context=Context(ForkProcess)) as fork_pool:
            set_global("set after the fork pool started")
            with Pool(1, context=Context(SpawnProcess)) as spawn_pool:
                assert fork_pool.apply(read_global, (0,)) == "set by the driver"
                assert spawn_pool.apply(read_global, (0,)) == "as in the source"
    finally:
        set_global("as in the source")
