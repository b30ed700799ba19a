"""Queue, SimpleQueue and JoinableQueue: in one process and across processes."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from transparent_mp.process import Process
from transparent_mp.queues import JoinableQueue, Queue, SimpleQueue


def produce(q, n: int) -> None:
    for i in range(n):
        q.put(i)


def consume_and_mark_done(q, results, n: int) -> None:
    for _ in range(n):
        results.put(q.get() * 10)
        q.task_done()


def echo(inbox, outbox) -> None:
    while (item := inbox.get()) is not None:
        outbox.put(item)


def test_items_cross_processes_in_order(driver):
    inbox, outbox = Queue(), Queue()
    p = Process(target=echo, args=(inbox, outbox))
    p.start()
    items = [1, "two", (3.0, b"four"), {"five": [5]}, None]
    for item in items[:-1]:
        inbox.put(item)
    got = [outbox.get(timeout=30) for _ in items[:-1]]
    inbox.put(None)
    p.join()
    assert got == items[:-1]


def test_get_timeout_and_nowait_raise_empty(driver):
    q = Queue()
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - start >= 0.19
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(False)


def test_bounded_queue_blocks_and_drops_nothing(driver):
    q = Queue(2)
    p = Process(target=produce, args=(q, 50))
    p.start()
    got = [q.get(timeout=30) for _ in range(50)]
    p.join()
    assert got == list(range(50))
    assert q.empty()


def test_bounded_put_timeout_and_nowait_raise_full(driver):
    q = Queue(2)
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    start = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.2)
    assert time.monotonic() - start >= 0.19
    assert q.get() == 1  # the refused items took no place
    q.put(3, timeout=1)
    assert [q.get(), q.get()] == [2, 3]


def test_blocked_putter_wakes_when_room_is_made(driver):
    q = Queue(1)
    q.put("first")
    done = threading.Event()

    def putter():
        q.put("second", timeout=30)
        done.set()

    t = threading.Thread(target=putter)
    t.start()
    assert not done.wait(0.2)
    assert q.get() == "first"
    assert done.wait(30)
    t.join()
    assert q.get() == "second"


def test_unpicklable_item_raises_in_the_sender_and_queue_stays_usable(driver):
    q = Queue()
    with pytest.raises(TypeError, match="lock"):
        q.put(threading.Lock())
    q.put("still fine")
    assert q.get(timeout=5) == "still fine"


def test_closed_queue_refuses_and_join_thread_needs_close(driver):
    q = Queue()
    q.put(1)
    with pytest.raises(AssertionError, match="not closed"):
        q.join_thread()
    q.close()
    q.join_thread()
    with pytest.raises(ValueError, match="is closed"):
        q.put(2)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    q.cancel_join_thread()
    Queue.__setstate__(q, q.__getstate__())  # a fresh handle on the same queue
    assert q.get_nowait() == 1


@pytest.mark.parametrize("kind", [Queue, JoinableQueue])
def test_empty_of_a_closed_queue_raises_once_this_process_used_it(driver, kind):
    """As the stdlib's: close() of a queue never put into leaves empty() working;
    after a put, close() closes the reading end and empty() raises OSError."""
    unused, used = kind(), kind()
    unused.close()
    assert unused.empty()
    used.put("foo")
    used.close()
    used.join_thread()
    with pytest.raises(OSError, match="is closed"):
        used.empty()
    assert used.qsize() == 1  # the item is still there for other processes


def test_joinable_queue_join_and_task_done(driver):
    q, results = JoinableQueue(), Queue()
    for i in range(5):
        q.put(i)
    p = Process(target=consume_and_mark_done, args=(q, results, 5))
    p.start()
    q.join()  # returns only once every item is marked done
    assert sorted(results.get(timeout=5) for _ in range(5)) == [0, 10, 20, 30, 40]
    p.join()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_simple_queue(driver):
    q = SimpleQueue()
    assert q.empty()
    q.put([1, 2])
    assert not q.empty()
    assert q.get() == [1, 2]
    q.close()
    with pytest.raises(OSError):
        q.put(3)
