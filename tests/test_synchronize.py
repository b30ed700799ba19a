"""Locks, semaphores, conditions, events and barriers across processes."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from transparent_mp.process import Process
from transparent_mp.queues import Queue
from transparent_mp.store import scripts
from transparent_mp.synchronize import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)


def hold_until_set(lock, held, release) -> None:
    with lock:
        held.set()
        release.wait(30)


def count_under_lock(lock, counter_queue, n: int) -> None:
    for _ in range(n):
        with lock:
            value = counter_queue.get()
            counter_queue.put(value + 1)


def wait_on_condition(cond, ready, results, timeout) -> None:
    with cond:
        ready.release()
        results.put(cond.wait(timeout))


def set_event_later(started, event) -> None:
    started.set()
    event.set()


def barrier_party(barrier, results) -> None:
    try:
        results.put(barrier.wait(30))
    except threading.BrokenBarrierError:
        results.put("broken")


def test_lock_excludes_other_processes(driver):
    lock, held, release = Lock(), Event(), Event()
    p = Process(target=hold_until_set, args=(lock, held, release))
    p.start()
    assert held.wait(30)
    assert lock.acquire(False) is False
    start = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert time.monotonic() - start >= 0.19
    release.set()
    assert lock.acquire(timeout=30) is True
    lock.release()
    p.join()
    with pytest.raises(ValueError, match="released too many times"):
        lock.release()


def test_counting_under_a_lock_loses_no_update(driver):
    lock, counter = Lock(), Queue()
    counter.put(0)
    procs = [Process(target=count_under_lock, args=(lock, counter, 30)) for _ in range(2)]
    for p in procs:
        p.start()
    count_under_lock(lock, counter, 30)
    for p in procs:
        p.join()
    assert counter.get(timeout=5) == 90


def test_rlock_is_recursive_and_owned(driver):
    lock = RLock()
    assert lock.acquire() and lock.acquire()
    assert "MainProcess" in repr(lock) and ", 2)" in repr(lock)
    lock.release()
    lock.release()
    with pytest.raises(AssertionError, match="not owned"):
        lock.release()
    errors = []

    def other_thread():
        try:
            lock.release()
        except AssertionError as exc:
            errors.append(exc)

    with lock:
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert len(errors) == 1


def test_semaphores_count_and_bound(driver):
    sem = Semaphore(2)
    assert sem.get_value() == 2
    assert sem.acquire() and sem.acquire(timeout=1)
    assert not sem.acquire(False)
    sem.release()
    sem.release()
    sem.release()  # an unbounded semaphore may go above its start
    assert sem.get_value() == 3
    bounded = BoundedSemaphore(1)
    with pytest.raises(ValueError, match="released too many times"):
        bounded.release()
    assert "maxvalue=1" in repr(bounded)
    huge = Semaphore(2**31 - 1)  # the stdlib's SEM_VALUE_MAX
    assert huge.get_value() == 2**31 - 1


def test_condition_wait_timeout_and_notify(driver):
    cond, ready, results = Condition(), Semaphore(0), Queue()
    with cond:
        assert cond.wait(0.1) is False
    procs = [Process(target=wait_on_condition, args=(cond, ready, results, 30))
             for _ in range(3)]
    for p in procs:
        p.start()
    for _ in procs:
        assert ready.acquire(timeout=30)
    with cond:  # every waiter is inside wait() once we hold the lock again
        cond.notify()
    assert results.get(timeout=30) is True
    with pytest.raises(queue.Empty):
        results.get(timeout=0.3)  # notify() woke exactly one
    with cond:
        cond.notify_all()
    assert [results.get(timeout=30) for _ in range(2)] == [True, True]
    for p in procs:
        p.join()
    # four waits in all (one timed out in this process), all of them over
    assert cond._sleeping_count.get_value() == cond._woken_count.get_value() == 4
    assert cond._wait_semaphore.get_value() == 0


def test_condition_needs_its_lock(driver):
    cond = Condition(Lock())
    with pytest.raises(AssertionError, match="must acquire"):
        cond.wait(0.01)
    with pytest.raises(AssertionError):
        cond.notify()
    with cond:
        assert cond.wait_for(lambda: 42) == 42
        assert cond.wait_for(lambda: False, timeout=0.1) is False


def test_a_waiter_timing_out_as_it_is_notified_keeps_the_wakeup(driver):
    cond = Condition()
    conn = driver.conn()
    conn.execute("RPUSH", cond._waiters, "w1")  # a waiter is queued,
    with cond:
        cond.notify()  # is notified,
    # and its BLPOP timed out just before: withdrawing reports the wake-up, not loses it
    assert conn.run(scripts.CANCEL_WAIT, [cond._waiters, cond._wake + "w1"], ["w1"]) == 1
    assert conn.execute("LLEN", cond._wake + "w1") == 0
    conn.execute("RPUSH", cond._waiters, "w2")  # one never notified withdraws cleanly
    assert conn.run(scripts.CANCEL_WAIT, [cond._waiters, cond._wake + "w2"], ["w2"]) == 0
    assert conn.execute("LLEN", cond._waiters) == 0


def test_interrupted_acquire_loses_no_unit(driver):
    sem = Semaphore(0)
    waiting = threading.Event()

    class Interrupt(Exception):
        pass

    def interrupt_soon():
        waiting.wait(10)
        time.sleep(0.05)
        sem.release()  # the unit is handed to the waiter being interrupted...
        raise_in_main.set()

    raise_in_main = threading.Event()
    original = driver.conn().blpop

    def blpop(keys, timeout):
        waiting.set()
        raise_in_main.wait(10)
        raise Interrupt  # ...as if Ctrl-C arrived at that moment

    conn = driver.conn()
    conn.blpop = blpop
    t = threading.Thread(target=interrupt_soon)
    t.start()
    try:
        with pytest.raises(Interrupt):
            sem.acquire(timeout=10)
    finally:
        conn.blpop = original
        t.join()
    assert sem.get_value() == 1  # handed back, not lost with the interrupted waiter


def test_event_set_from_a_child_wakes_the_parent(driver):
    started, event = Event(), Event()
    assert event.wait(0.1) is False
    assert "unset" in repr(event)
    p = Process(target=set_event_later, args=(started, event))
    p.start()
    assert event.wait(30) is True
    assert event.is_set()
    event.clear()
    assert not event.is_set()
    p.join()


def test_barrier_across_processes(driver):
    results = Queue()
    actions = Queue()
    barrier = Barrier(3, action=lambda: actions.put("action"), timeout=30)
    procs = [Process(target=barrier_party, args=(barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    index = barrier.wait()
    others = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join()
    assert sorted([index, *others]) == [0, 1, 2]
    assert actions.get(timeout=5) == "action" and actions.empty()
    assert barrier.n_waiting == 0 and not barrier.broken


def test_barrier_timeout_abort_and_reset(driver):
    barrier = Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.2)
    assert barrier.broken
    barrier.reset()
    assert not barrier.broken
    results = Queue()
    p = Process(target=barrier_party, args=(barrier, results))
    p.start()
    deadline = time.monotonic() + 30
    while barrier.n_waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    barrier.abort()
    assert results.get(timeout=30) == "broken"
    p.join()
