"""Value, Array, RawValue, RawArray: the stdlib's ctypes behaviour, contents in the store."""

from __future__ import annotations

import ctypes
from multiprocessing import sharedctypes as stdlib

import numpy as np
import pytest

from transparent_mp import heap
from transparent_mp.process import Process
from transparent_mp.queues import Queue
from transparent_mp.sharedctypes import Array, RawArray, RawValue, Value


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]


def double_everything(x, arr, text, point, raw) -> None:
    x.value *= 2
    for i in range(len(arr)):
        arr[i] *= 2
    text.value = text.value * 2
    point.x *= 2
    raw[1] = raw[1] * 2


def increment(counter, n: int) -> None:
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1


def checksum_of_view(table, results) -> None:
    view = np.frombuffer(table, dtype=np.float32)
    results.put((float(view.sum()), float(view[123_456]), len(view)))


def write_through_view_under_lock(arr) -> None:
    with arr.get_lock():
        view = np.frombuffer(arr.get_obj(), dtype=np.int64)
        view[:] += 100


@pytest.mark.parametrize(("code", "value"), [
    ("b", 200), ("B", -1), ("h", 40000), ("i", 2**31), ("I", -5), ("l", 2**63 - 1),
    ("q", -(2**63)), ("Q", 7), ("f", 1.1), ("d", 1 / 3), ("c", b"x"), ("u", "é"),
])
def test_typecodes_coerce_and_overflow_as_the_stdlib(driver, code, value):
    ours, theirs = RawValue(code, value), stdlib.RawValue(code, value)
    assert type(ours).__mro__[1] is type(theirs)
    assert ours.value == theirs.value


def test_wrong_types_raise_the_stdlib_type_error(driver):
    with pytest.raises(TypeError):
        Value("i", "seven")
    v = Value("d", 1.5)
    with pytest.raises(TypeError):
        v.value = "x"
    with pytest.raises(TypeError):
        Array("i", [1, "two"])


def test_changes_in_a_child_are_seen_by_the_parent(driver):
    x = Value("i", 7)
    arr = Array("d", [float(i) for i in range(5)])
    text = Array("c", 10)
    text.value = b"hi"
    point = Value(Point, 3, 2.5, lock=False)
    raw = RawArray("i", [1, 2, 3])
    p = Process(target=double_everything, args=(x, arr, text, point, raw))
    p.start()
    p.join()
    assert p.exitcode == 0
    assert x.value == 14
    assert arr[:] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert text.value == b"hihi" and text.raw[:5] == b"hihi\0"
    assert (point.x, point.y) == (6, 2.5)
    assert list(raw) == [1, 4, 3] and raw[-2] == 4 and raw[0:2] == [1, 4]


def test_value_increments_under_its_lock_lose_nothing(driver):
    counter = Value("i", 0)
    procs = [Process(target=increment, args=(counter, 50)) for _ in range(2)]
    for p in procs:
        p.start()
    increment(counter, 50)
    for p in procs:
        p.join()
    assert counter.value == 150


def test_lock_argument_and_wrappers(driver):
    raw = Value("i", 1, lock=False)
    assert isinstance(raw, ctypes.c_int)
    from transparent_mp.synchronize import Lock

    lock = Lock()
    v = Value("i", 2, lock=lock)
    assert v.get_lock() is lock
    assert isinstance(v.get_obj(), ctypes.c_int)
    with pytest.raises(AttributeError, match="has no method 'acquire'"):
        Value("i", 1, lock="not a lock")
    arr = Array("i", 4)
    assert len(arr) == 4 and arr[:] == [0, 0, 0, 0]
    arr[1:3] = [5, 6]
    assert arr[:] == [0, 5, 6, 0] and list(arr) == [0, 5, 6, 0]
    with pytest.raises(IndexError):
        arr[4]


def test_evolution_strategies_noise_table(driver):
    """Filled through a numpy view in the parent, read through views in workers."""
    count = 5_000_000  # 20 MB of float32
    table = RawArray(ctypes.c_float, count)
    view = np.ctypeslib.as_array(table)
    view[:] = np.random.default_rng(0).standard_normal(count, dtype=np.float32)
    results = Queue()
    procs = [Process(target=checksum_of_view, args=(table, results)) for _ in range(2)]
    for p in procs:
        p.start()
    seen = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    expected = (float(view.sum()), float(view[123_456]), count)
    assert seen == [expected, expected]


def test_views_are_published_when_the_lock_is_released(driver):
    arr = Array(ctypes.c_int64, 1000)
    view = np.frombuffer(arr.get_obj(), dtype=np.int64)
    with arr.get_lock():
        view[:] = np.arange(1000)
    p = Process(target=write_through_view_under_lock, args=(arr,))
    p.start()
    p.join()
    with arr.get_lock():  # acquiring refreshes what the child published
        assert view[0] == 100 and view[999] == 1099
    assert arr[500] == 600  # element access goes to the store anyway


def test_large_buffers_are_split_over_keys(driver, monkeypatch):
    monkeypatch.setattr(heap, "CHUNK", 1000)  # stand-in for 256 MB: same code path
    arr = RawArray(ctypes.c_uint8, 3500)
    np.frombuffer(arr, dtype=np.uint8)[:] = np.arange(3500) % 251
    clone = type(arr).__reduce__(arr)
    copy = clone[0](*clone[1])
    assert bytes(copy) == bytes(arr)
    keys = [k.decode() for k in driver.namespace.keys(driver.conn()) if b":shm:" in k]
    assert len({k.rsplit(":", 1)[0] for k in keys}) == 1 and len(keys) == 4
    assert copy[2500] == 2500 % 251
