"""``Pool``: long-lived remote workers that pull chunks of tasks from the store.

``Pool(n)`` starts n worker Processes (invocations). Each pulls a fair share of
the waiting chunks into its own in-flight list (one Lua script), runs them and
publishes each result while removing its chunk from in-flight (another), so
the driver receives every result exactly once. When a worker ends for any
reason (killed, out of memory, ``maxtasksperchild``), what it still had in
flight goes back to the front of the queue and a new worker takes its place:
a ``map`` survives dead workers with exact results.

The driver runs three threads, as the stdlib's Pool does: one feeds chunks
(lazily, so ``imap`` over an infinite generator works), one receives results,
one watches the workers. Result objects are the stdlib's own
(``ApplyResult``, ``MapResult``, ``IMapIterator``...), so ``get(timeout)``,
``wait``, ``ready``, ``successful`` and callbacks behave as documented;
exceptions come back with the remote traceback as ``__cause__``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pickle
import queue
import struct
import threading
import time
import warnings
from multiprocessing import pool as _mp_pool
from multiprocessing import util

from . import blobs, compat, config, runtime
from .connection import wait
from .process import Process, default_start_method
from .store import KEY_TTL, scripts
from .util import start_service_thread

__all__ = ["AsyncResult", "MaybeEncodingError", "Pool", "ThreadPool"]

ApplyResult = AsyncResult = _mp_pool.ApplyResult
MapResult = _mp_pool.MapResult
IMapIterator = _mp_pool.IMapIterator
IMapUnorderedIterator = _mp_pool.IMapUnorderedIterator
MaybeEncodingError = _mp_pool.MaybeEncodingError
mapstar, starmapstar = _mp_pool.mapstar, _mp_pool.starmapstar

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
#: A stored task: its job and index, readable even if the rest cannot be unpickled.
_HEADER = struct.Struct("<qq")
#: The job of the item that tells a worker to leave.
_STOP = -1
#: Most chunks a worker takes from the queue at once.
_MOST_PULLED = 64
#: Seconds a worker waits for work before it checks that its pool still runs.
_IDLE_CHECK = 5.0
#: A worker retires this long before its backend's time limit for an invocation.
_RETIRE_MARGIN = 60.0
#: Results (and chunks) waiting at most this long to be sent together.
_FLUSH_AFTER = 0.001

_worker_counter = itertools.count(1)


def _pool_worker(key: str, size: int, initializer, initargs, maxtasks: int | None,
                 wrap_exception: bool, most_pulled: int = _MOST_PULLED,
                 retire_after: float | None = None) -> None:
    """The loop of one worker: pull chunks, run them, publish each result; leave
    after ``maxtasks`` tasks or ``retire_after`` seconds (the pool replaces it)."""
    rt = runtime.current()
    deadline = None if retire_after is None else time.monotonic() + retire_after
    if rt.deadline is not None:  # the backend ends this invocation then: retire before it
        margin = min(_RETIRE_MARGIN, (rt.deadline - time.monotonic()) / 4)
        deadline = min(deadline or rt.deadline, rt.deadline - margin)
    tasks, results = key + ":tasks", key + ":results"
    inflight = f"{key}:inflight:{rt.token}"
    if initializer is not None:
        initializer(*initargs)
    done = 0
    while (maxtasks is None or done < maxtasks) and (deadline is None
                                                     or time.monotonic() < deadline):
        conn = rt.conn()
        room = most_pulled if maxtasks is None else min(most_pulled, maxtasks - done)
        items = conn.run(scripts.PULL, [tasks, inflight], [KEY_TTL, size, room])
        if not items:
            item = conn.execute_blocking(_IDLE_CHECK, "BLMOVE", tasks, inflight, "LEFT", "RIGHT",
                                         _IDLE_CHECK)
            if item is None:
                if not conn.execute("EXISTS", key + ":running"):
                    return  # the pool is gone
                continue
            items = [item]
        completions: list[tuple] = []  # sent together, or after _FLUSH_AFTER seconds
        started = time.monotonic()
        for item in items:
            body = rt.verify(item)
            job, i = _HEADER.unpack_from(body)
            if job == _STOP:
                completions.append(conn.script(scripts.COMPLETE, [results, inflight],
                                               [KEY_TTL, b"", item]))
                conn.send_later(*completions)
                return
            try:
                func, args, kwds = blobs.loads(body[_HEADER.size:])
            except Exception as exc:  # this task fails; the worker goes on
                exc = _unloadable(exc)
                result = (False, _mp_pool.ExceptionWithTraceback(exc, exc.__traceback__)
                          if wrap_exception else exc)
            else:
                try:
                    result = (True, func(*args, **kwds))
                except Exception as exc:
                    if wrap_exception and func is not compat.helper_reraises_exception:
                        exc = _mp_pool.ExceptionWithTraceback(exc, exc.__traceback__)
                    result = (False, exc)
            try:  # results are pickled as the stdlib pickles them (no lambdas)
                body = pickle.dumps((job, i, result), protocol=5)
            except Exception as exc:
                wrapped = MaybeEncodingError(exc, result[1])
                body = pickle.dumps((job, i, (False, wrapped)), protocol=5)
            completions.append(conn.script(scripts.COMPLETE, [results, inflight],
                                           [KEY_TTL, (rt.tag(body), body), item]))
            done += 1
            if time.monotonic() - started > _FLUSH_AFTER:
                conn.send_later(*completions)
                completions.clear()
                started = time.monotonic()
        if completions:
            conn.send_later(*completions)


def _unloadable(exc: Exception) -> Exception:
    """The error for a task that could not be unpickled in the worker: ``exc`` itself
    (with the worker's traceback) when it pickles back to the caller."""
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(f"the task could not be unpickled in the worker: "
                            f"{type(exc).__name__}: {exc}")
    return exc


def _local_pool_module():
    """A private copy of the stdlib's ``multiprocessing.pool``, for its ThreadPool.

    The hook replaces ``multiprocessing.pool.Pool``, and the stdlib's ThreadPool
    reaches its base class through that module global (``Pool.__init__``,
    ``Pool._get_tasks``...): in this copy the name is still the stdlib's Pool, and
    its context the stdlib's.
    """
    spec = importlib.util.spec_from_file_location("multiprocessing._local_pool",
                                                  _mp_pool.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.get_context = compat.default_context.get_context
    return module


#: ``multiprocessing.pool.ThreadPool`` (and ``multiprocessing.dummy.Pool``): threads,
#: local on purpose.
ThreadPool = _local_pool_module().ThreadPool


def _chunks(func, iterable, size: int):
    """(func, tuple of up to ``size`` items) for each chunk of ``iterable``."""
    it = iter(iterable)
    while chunk := tuple(itertools.islice(it, size)):
        yield func, chunk


class _Notifier:
    """What the stdlib's result cache calls (``put(None)``) when it empties."""

    def __init__(self, core: _Core) -> None:
        self.core = core

    def put(self, _obj: object) -> None:
        self.core.cache_emptied()


class _Core:
    """A pool's engine: its workers, its three threads and its result cache.

    The threads hold the core, never the :class:`Pool`, so an unclosed pool can
    be garbage-collected (with the stdlib's ResourceWarning) and shut down.
    """

    def __init__(self, processes: int, initializer, initargs, maxtasks: int | None,
                 wrap_exception: bool, most_pulled: int = _MOST_PULLED,
                 retire_after: float | None = None, process_class: type = Process) -> None:
        self.state = RUN
        self.processes = processes
        #: The workers' class: its start method decides what they start from.
        self.process_class = process_class
        method = process_class._start_method or default_start_method()
        #: A fork pool's workers have the driver's ``__main__`` (a snapshot): its
        #: functions always go by reference, as a fork pool pickles them.
        self.main_by_reference = True if method == "fork" else None
        rt = runtime.current()
        limit = rt.backend.time_limit
        if retire_after is None and limit is not None:
            retire_after = max(limit - _RETIRE_MARGIN, limit / 2)
        self.worker_args = (processes, initializer, initargs, maxtasks, wrap_exception,
                            most_pulled, retire_after)
        self.key = rt.new_key("pool")
        self.tasks, self.results = self.key + ":tasks", self.key + ":results"
        rt.conn().execute("SET", self.key + ":running", 1, "EX", KEY_TTL)
        self._cache = compat.PoolCache(notifier=_Notifier(self))
        self.delivered: dict[int, set[int]] = {}
        self.lock = threading.Condition()
        self.outstanding = 0  # chunks in the store, not answered yet
        self.max_outstanding = max(64, 16 * processes)
        self.taskqueue: queue.SimpleQueue = queue.SimpleQueue()
        self.feed_lock = threading.Lock()  # held while a job's chunks are being stored
        #: Stored items of jobs that may be withdrawn before a worker takes them
        #: (b"" while not fed yet), and jobs withdrawn before they were fed.
        self.withdrawable: dict[int, bytes] = {}
        self.withdrawn: set[int] = set()
        self.workers: list[Process] = []
        self.workers_lock = threading.Lock()
        self.inflight_keys: list[str] = []  # of every worker ever started
        self.wake_r, self.wake_w = os.pipe()
        self.repopulate()
        self.threads = [threading.Thread(target=target, name=f"transparent_mp-pool-{name}",
                                         daemon=True)
                        for name, target in (("tasks", self.feed_tasks),
                                             ("results", self.receive_results),
                                             ("workers", self.watch_workers))]
        for thread in self.threads:
            start_service_thread(thread)

    # -- workers --
    def inflight(self, worker: Process) -> str:
        return f"{self.key}:inflight:{worker._popen.token}"

    def repopulate(self) -> None:
        """Reap workers that ended (requeueing what they held) and start new ones."""
        conn = runtime.current().conn()
        with self.workers_lock:  # not while shutdown() is terminating them
            for worker in [w for w in self.workers if w.exitcode is not None]:
                worker.join()
                self.workers.remove(worker)
                conn.run(scripts.REQUEUE, [self.inflight(worker), self.tasks], [KEY_TTL])
            wanted = self.state == RUN or (self.state == CLOSE and self._cache)
            with runtime.current().one_snapshot():
                while wanted and len(self.workers) < self.processes:
                    worker = self.process_class(
                        target=_pool_worker, args=(self.key, *self.worker_args),
                        name=f"PoolWorker-{next(_worker_counter)}", daemon=True)
                    worker.start()
                    self.workers.append(worker)
                    self.inflight_keys.append(self.inflight(worker))

    def watch_workers(self) -> None:
        while self.state != TERMINATE and (self.state == RUN or self.workers):
            ready = wait([*(w.sentinel for w in self.workers), self.wake_r], None)
            if self.wake_r in ready:
                os.read(self.wake_r, 1)
            if self.state != TERMINATE:
                self.repopulate()

    # -- tasks --
    def submit(self, job: int, tasks, set_length=None, withdrawable: bool = False) -> None:
        """Queue ``tasks`` (an iterable of (job, i, func, args, kwds)) for the feeder,
        or store a ready list at once when the feeder has nothing to do (one thread
        hand-off less for ``apply``)."""
        if withdrawable:
            self.withdrawable[job] = b""
        if isinstance(tasks, list) and self.feed_lock.acquire(blocking=False):
            try:
                if self.taskqueue.empty() and self.outstanding + len(tasks) < self.max_outstanding:
                    self.feed_job(runtime.current(), job, tasks, set_length)
                    return
            finally:
                self.feed_lock.release()
        self.taskqueue.put((job, tasks, set_length))

    def withdraw(self, job: int) -> bool:
        """Take a one-task job back if no worker has taken it yet."""
        with self.lock:
            item = self.withdrawable.pop(job, None)
            if item is None:
                return False
            if item == b"":  # not in the store yet: the feeder will skip it
                self.withdrawn.add(job)
                self._cache.pop(job, None)
                return True
        if runtime.current().conn().execute("LREM", self.tasks, 1, item):
            with self.lock:
                self.outstanding -= 1
                self._cache.pop(job, None)
            return True
        with self.lock:
            self.withdrawable[job] = item  # a worker has it: it runs
        return False

    def feed_tasks(self) -> None:
        """Put each job's chunks into the store, never too far ahead of the workers."""
        rt = runtime.current()
        while True:
            job, tasks, set_length = self.taskqueue.get()
            if tasks is None:
                return
            with self.feed_lock:
                if not self.feed_job(rt, job, tasks, set_length):
                    return

    def feed_job(self, rt: runtime.Runtime, job: int, tasks, set_length) -> bool:
        count = 0
        batch: list[tuple] = []  # stored together, or after _FLUSH_AFTER seconds
        started = time.monotonic()
        try:
            for task in tasks:
                if self.state == TERMINATE:
                    return False
                item = self.prepare(rt, task, batch)
                if item is not None:
                    batch.append(item)
                count += 1
                if batch and time.monotonic() - started > _FLUSH_AFTER:
                    self.store(rt, batch)
                    started = time.monotonic()
        except Exception as exc:  # the iterable itself failed: the job fails there
            entry = self._cache.get(job)
            if entry is not None:
                entry._set(count, (False, exc))
            count += 1
        self.store(rt, batch)
        if set_length is not None:
            set_length(count)
        return True

    def store(self, rt: runtime.Runtime, batch: list[tuple]) -> None:
        if batch:
            rt.conn().send_later(("RPUSH", self.tasks, *batch), ("EXPIRE", self.tasks, KEY_TTL))
            rt.stats["pool_chunks"] += len(batch)
            rt.stats["bytes_up"] += sum(len(item[1]) if isinstance(item, tuple) else len(item)
                                        for item in batch)
            batch.clear()

    def prepare(self, rt: runtime.Runtime, task: tuple, batch: list[tuple]):
        """The stored item of ``task`` (None if it is not to be stored), counted as
        outstanding; waits while too many are (storing ``batch`` first)."""
        try:
            body = _HEADER.pack(task[0], task[1]) + blobs.dumps(task[2:], self.main_by_reference)
        except Exception as exc:  # as the stdlib: the job gets the pickling error
            entry = self._cache.get(task[0])
            if entry is not None:
                entry._set(task[1], (False, exc))
            return None
        item = (rt.tag(body), body)
        with self.lock:
            if self.outstanding >= self.max_outstanding:
                self.store(rt, batch)  # the workers need them to make room
                self.lock.wait_for(lambda: self.outstanding < self.max_outstanding
                                   or self.state == TERMINATE)
            if task[0] in self.withdrawn:
                self.withdrawn.discard(task[0])
                return None
            if task[0] in self.withdrawable:
                item = self.withdrawable[task[0]] = item[0] + item[1]
            self.outstanding += 1
        return item

    # -- results --
    def receive_results(self) -> None:
        rt = runtime.current()
        conn = rt.conn()
        while True:
            popped = conn.blpop([self.results], None)
            for item in [popped[1], *(conn.execute("LPOP", self.results, 512) or [])]:
                if item == b"-":
                    return
                if item:  # empty: a worker acknowledged its stop
                    self.deliver(*pickle.loads(rt.verify(item)))

    def deliver(self, job: int, i: int, result: tuple) -> None:
        with self.lock:
            self.outstanding -= 1
            self.lock.notify_all()
        delivered = self.delivered.setdefault(job, set())
        if i in delivered:
            return  # already delivered: each result counts once
        delivered.add(i)
        self.withdrawable.pop(job, None)
        entry = self._cache.get(job)
        if entry is not None:
            entry._set(i, result)
        if job not in self._cache:
            self.delivered.pop(job, None)

    def cache_emptied(self) -> None:
        if self.state == CLOSE:
            self.stop_workers()

    # -- ending --
    def stop_workers(self) -> None:
        """Tell each worker to leave once the queue ahead of it is done."""
        self.taskqueue.put((None, None, None))
        rt = runtime.current()
        body = _HEADER.pack(_STOP, 0)
        item = (rt.tag(body), body)
        rt.conn().execute_many([("RPUSH", self.tasks, *([item] * len(self.workers))),
                                ("EXPIRE", self.tasks, KEY_TTL),
                                ("DEL", self.key + ":running")])

    def shutdown(self) -> None:
        """Stop workers and threads, delete the pool's keys (terminate, join, or GC)."""
        with self.workers_lock:
            self.state = TERMINATE  # from now on no worker is started
        with self.lock:
            self.lock.notify_all()
        self.taskqueue.put((None, None, None))
        for worker in list(self.workers):
            if worker.exitcode is None:
                worker.terminate()
        for worker in list(self.workers):
            worker.join()
        try:
            runtime.current().conn().execute_many([
                ("DEL", self.key + ":running", self.tasks, *self.inflight_keys),
                ("RPUSH", self.results, b"-")])
            os.write(self.wake_w, b"x")
        except (OSError, ValueError):
            pass  # the store is gone already (interpreter exit)
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(10)
        os.close(self.wake_r)
        os.close(self.wake_w)


class Pool:
    """``multiprocessing.Pool`` whose workers are remote invocations."""

    _wrap_exception = True
    #: Most chunks a worker takes at once (a fair share of those waiting, up to this).
    _most_pulled = _MOST_PULLED
    #: Seconds a worker serves before it is replaced (None: the backend's time limit
    #: less a margin, or for ever where there is none).
    _retire_after: float | None = None

    def __init__(self, processes: int | None = None, initializer=None, initargs=(),
                 maxtasksperchild: int | None = None, context=None) -> None:
        if processes is None:
            processes = config.settings().concurrency
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None and (
                not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes
        self._ctx = context
        self._core = _Core(processes, initializer, initargs, maxtasksperchild,
                           self._wrap_exception, self._most_pulled, self._retire_after,
                           Process if context is None else context.Process)
        self._finalizer = util.Finalize(self, _Core.shutdown, args=(self._core,),
                                        exitpriority=15)

    @property
    def _state(self) -> str:
        return self._core.state

    @_state.setter
    def _state(self, state: str) -> None:
        self._core.state = state

    @property
    def _pool(self) -> list[Process]:
        return self._core.workers

    @property
    def _cache(self):
        return self._core._cache

    def _repopulate_pool(self) -> None:
        self._core.repopulate()

    def _check_running(self) -> None:
        if self._core.state != RUN:
            raise ValueError("Pool not running")

    def apply(self, func, args=(), kwds={}):  # noqa: B006  (the stdlib's signature)
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None,  # noqa: B006
                    error_callback=None):
        self._check_running()
        result = ApplyResult(self._core, callback, error_callback)
        self._core.submit(result._job, [(result._job, 0, func, args, kwds)])
        return result

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, mapstar, chunksize).get()

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, starmapstar, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, mapstar, chunksize, callback, error_callback)

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, starmapstar, chunksize, callback, error_callback)

    def _map_async(self, func, iterable, mapper, chunksize=None, callback=None,
                   error_callback=None):
        self._check_running()
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(iterable), self._processes * 4)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        result = MapResult(self._core, chunksize, len(iterable), callback,
                           error_callback=error_callback)
        batches = _chunks(func, iterable, chunksize) if chunksize else ()
        self._core.submit(result._job, ((result._job, i, mapper, (batch,), {})
                                        for i, batch in enumerate(batches)))
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, kind, func, iterable, chunksize):
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        result = compat.imap_iterator(kind, self._core)
        job = result._job
        if chunksize == 1:
            tasks = ((job, i, func, (x,), {}) for i, x in enumerate(iterable))
            self._core.submit(job, tasks, result._set_length)
            return result
        batches = _chunks(func, iterable, chunksize)
        tasks = ((job, i, mapstar, (batch,), {}) for i, batch in enumerate(batches))
        self._core.submit(job, tasks, result._set_length)
        return (item for chunk in result for item in chunk)

    def close(self) -> None:
        core = self._core
        if core.state == RUN:
            core.state = CLOSE
            if not core._cache:
                core.stop_workers()

    def terminate(self) -> None:
        self._finalizer()

    def join(self) -> None:
        if self._core.state == RUN:
            raise ValueError("Pool is still running")
        if self._core.state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        self._core.threads[2].join()  # the watcher ends when the last worker has left
        self._finalizer()

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    def __del__(self, _warn=warnings.warn) -> None:
        core = getattr(self, "_core", None)
        if core is not None and core.state == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning,
                  source=self)

    def __repr__(self) -> str:
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"state={self._core.state} pool_size={len(self._core.workers)}>")
