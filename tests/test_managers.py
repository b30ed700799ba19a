"""Managers: the stdlib's managers with a remote server and store-backed connections."""

from __future__ import annotations

from multiprocessing.managers import BaseManager, DictProxy, SyncManager

import pytest

import transparent_mp
from transparent_mp.process import Process


@pytest.fixture(autouse=True)
def hooked(driver):
    """Managers are the stdlib's, made remote by the hook."""
    transparent_mp.install()
    try:
        yield
    finally:
        transparent_mp.uninstall()


def fill(shared, items, lock, done) -> None:
    with lock:
        for key, value in items:
            shared[key] = value
    done.put("filled")


def append_many(shared_list, n: int) -> None:
    for i in range(n):
        shared_list.append(i)


class Counter:
    def __init__(self, start: int = 0) -> None:
        self.n = start

    def incr(self) -> int:
        self.n += 1
        return self.n

    def value(self) -> int:
        return self.n


class CounterManager(BaseManager):
    pass


CounterManager.register("Counter", Counter)


def bump(counter, n: int) -> None:
    for _ in range(n):
        counter.incr()


@pytest.fixture
def manager(driver):
    with SyncManager() as m:
        yield m


def test_proxies_keep_types_and_cross_processes(manager):
    shared, lock, done = manager.dict(), manager.Lock(), manager.Queue()
    items = [((1, "a"), b"bytes"), (2.5, None), (frozenset({3}), [1, {"x": 2}])]
    p = Process(target=fill, args=(shared, items, lock, done))
    p.start()
    assert done.get(timeout=60) == "filled"
    p.join()
    assert isinstance(shared, DictProxy)
    assert dict(shared) == dict(items)  # keys keep their types
    assert shared.get((1, "a")) == b"bytes"


def test_list_namespace_and_nested_proxies(manager):
    outer = manager.list()
    inner = manager.dict()
    outer.append(inner)
    outer[0]["k"] = "set through the nested proxy"
    assert inner["k"] == "set through the nested proxy"
    ns = manager.Namespace()
    ns.answer = 42
    assert ns.answer == 42
    appends = [Process(target=append_many, args=(outer, 25)) for _ in range(2)]
    for p in appends:
        p.start()
    for p in appends:
        p.join()
    assert len(outer) == 51  # every append is atomic: none lost


def test_custom_manager_loses_no_update(driver):
    with CounterManager() as m:
        counter = m.Counter(10)
        procs = [Process(target=bump, args=(counter, 40)) for _ in range(2)]
        for p in procs:
            p.start()
        bump(counter, 40)
        for p in procs:
            p.join()
        assert counter.value() == 130


def test_manager_server_is_a_remote_process_and_shuts_down(driver):
    m = SyncManager()
    m.start()
    server = m._process
    assert server.pid is not None and server.is_alive()
    value = m.Value("i", 3)
    value.value += 1
    assert value.value == 4
    m.shutdown()
    server.join(30)
    assert not server.is_alive()
