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

import itertools
import os
import pickle
import queue
import threading
from multiprocessing import pool as _mp_pool
from multiprocessing import util

from . import config, runtime
from .connection import wait
from .process import Process
from .serialize import dumps_unsigned
from .store import KEY_TTL, scripts

__all__ = ["AsyncResult", "MaybeEncodingError", "Pool", "ThreadPool"]

ApplyResult = AsyncResult = _mp_pool.ApplyResult
MapResult = _mp_pool.MapResult
IMapIterator = _mp_pool.IMapIterator
IMapUnorderedIterator = _mp_pool.IMapUnorderedIterator
MaybeEncodingError = _mp_pool.MaybeEncodingError
ThreadPool = _mp_pool.ThreadPool
mapstar, starmapstar = _mp_pool.mapstar, _mp_pool.starmapstar

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
#: Most chunks a worker takes from the queue at once.
_MOST_PULLED = 64
#: Seconds a worker waits for work before it checks that its pool still runs.
_IDLE_CHECK = 5.0
_STOP = None

_worker_counter = itertools.count(1)


def _pool_worker(key: str, size: int, initializer, initargs, maxtasks: int | None,
                 wrap_exception: bool) -> None:
    """The loop of one worker: pull chunks, run them, publish each result."""
    rt = runtime.current()
    tasks, results = key + ":tasks", key + ":results"
    inflight = f"{key}:inflight:{rt.token}"
    if initializer is not None:
        initializer(*initargs)
    done = 0
    while maxtasks is None or done < maxtasks:
        conn = rt.conn()
        room = _MOST_PULLED if maxtasks is None else min(_MOST_PULLED, maxtasks - done)
        items = conn.run(scripts.PULL, [tasks, inflight], [KEY_TTL, size, room])
        if not items:
            item = conn.execute_blocking(_IDLE_CHECK, "BLMOVE", tasks, inflight, "LEFT", "RIGHT",
                                         _IDLE_CHECK)
            if item is None:
                if not conn.execute("EXISTS", key + ":running"):
                    return  # the pool is gone
                continue
            items = [item]
        for item in items:
            job, i, func, args, kwds = pickle.loads(rt.verify(item))
            if job is _STOP:
                conn.send_later(conn.script(scripts.COMPLETE, [results, inflight],
                                            [KEY_TTL, b"", item]))
                return
            try:
                result = (True, func(*args, **kwds))
            except Exception as exc:
                if wrap_exception and func is not _mp_pool._helper_reraises_exception:
                    exc = _mp_pool.ExceptionWithTraceback(exc, exc.__traceback__)
                result = (False, exc)
            try:
                body = dumps_unsigned((job, i, result))
            except Exception as exc:
                wrapped = MaybeEncodingError(exc, result[1])
                body = dumps_unsigned((job, i, (False, wrapped)))
            conn.send_later(conn.script(scripts.COMPLETE, [results, inflight],
                                        [KEY_TTL, (rt.tag(body), body), item]))
            done += 1


class _Notifier:
    """The ``notifier`` the stdlib's result cache calls when it empties."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def put(self, _obj: object) -> None:
        self.pool._cache_emptied()


class Pool:
    """``multiprocessing.Pool`` whose workers are remote invocations."""

    _wrap_exception = True

    def __init__(self, processes: int | None = None, initializer=None, initargs=(),
                 maxtasksperchild: int | None = None, context=None) -> None:
        self._state = RUN
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
        self._initializer, self._initargs = initializer, initargs
        self._maxtasksperchild = maxtasksperchild
        rt = runtime.current()
        self._key = rt.namespace.key("pool", rt.new_invocation_id())
        self._tasks, self._results = self._key + ":tasks", self._key + ":results"
        rt.conn().execute("SET", self._key + ":running", 1, "EX", KEY_TTL)
        self._cache = _mp_pool._PoolCache(notifier=_Notifier(self))
        self._delivered: dict[int, set[int]] = {}
        self._lock = threading.Condition()
        self._outstanding = 0  # chunks in the store, not answered yet
        self._max_outstanding = max(64, 16 * processes)
        self._taskqueue: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: list[Process] = []
        self._inflight_keys: list[str] = []  # of every worker ever started
        self._wake_r, self._wake_w = os.pipe()
        for _ in range(processes):
            self._start_worker()
        self._threads = [
            threading.Thread(target=self._feed_tasks, name="transparent_mp-pool-tasks",
                             daemon=True),
            threading.Thread(target=self._receive_results, name="transparent_mp-pool-results",
                             daemon=True),
            threading.Thread(target=self._watch_workers, name="transparent_mp-pool-workers",
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._finalizer = util.Finalize(self, Pool._shutdown, args=(
            self._key, self._pool, self._inflight_keys, self._taskqueue, self._wake_w),
            exitpriority=15)

    # -- workers --
    def _start_worker(self) -> None:
        worker = Process(target=_pool_worker, name=f"PoolWorker-{next(_worker_counter)}",
                         args=(self._key, self._processes, self._initializer, self._initargs,
                               self._maxtasksperchild, self._wrap_exception), daemon=True)
        worker.start()
        self._pool.append(worker)
        self._inflight_keys.append(self._inflight(worker))

    def _inflight(self, worker: Process) -> str:
        return f"{self._key}:inflight:{worker._popen.token}"

    def _watch_workers(self) -> None:
        """Replace workers that ended, putting what they had in flight back in the queue."""
        conn = None
        while self._state != TERMINATE and (self._state == RUN or self._pool):
            sentinels = [w.sentinel for w in self._pool]
            ready = wait([*sentinels, self._wake_r], None)
            if self._wake_r in ready:
                os.read(self._wake_r, 1)
            conn = conn or runtime.current().conn()
            for worker in [w for w in self._pool if w.sentinel in ready]:
                worker.join()
                self._pool.remove(worker)
                conn.run(scripts.REQUEUE, [self._inflight(worker), self._tasks], [KEY_TTL])
                if self._state != TERMINATE and (self._state == RUN or self._cache):
                    self._start_worker()

    # -- tasks --
    def _feed_tasks(self) -> None:
        """Put the chunks of each job into the store, never too far ahead of the workers."""
        rt = runtime.current()
        while True:
            job, tasks, set_length = self._taskqueue.get()
            if tasks is None:
                return
            count = 0
            try:
                for task in tasks:
                    if self._state == TERMINATE:
                        return
                    self._put(rt, task)
                    count += 1
            except Exception as exc:  # the iterable itself failed: the job fails there
                entry = self._cache.get(job)
                if entry is not None:
                    entry._set(count, (False, exc))
                count += 1
            if set_length is not None:
                set_length(count)

    def _put(self, rt: runtime.Runtime, task: tuple) -> None:
        try:
            body = dumps_unsigned(task)
        except Exception as exc:  # as the stdlib: the job gets the pickling error
            entry = self._cache.get(task[0])
            if entry is not None:
                entry._set(task[1], (False, exc))
            return
        with self._lock:
            self._lock.wait_for(lambda: self._outstanding < self._max_outstanding
                                or self._state == TERMINATE)
            self._outstanding += 1
        rt.conn().send_later(("RPUSH", self._tasks, (rt.tag(body), body)),
                             ("EXPIRE", self._tasks, KEY_TTL))

    def _submit(self, job: int, tasks, set_length=None) -> None:
        """Queue ``tasks`` (an iterable of (job, i, func, args, kwds)) for the feeder."""
        self._taskqueue.put((job, tasks, set_length))

    # -- results --
    def _receive_results(self) -> None:
        rt = runtime.current()
        conn = rt.conn()
        while True:
            popped = conn.blpop([self._results], None)
            items = [popped[1], *(conn.execute("LPOP", self._results, 512) or [])]
            for item in items:
                if item == b"":
                    continue  # a worker acknowledged its stop
                if item == b"-":
                    return
                job, i, result = pickle.loads(rt.verify(item))
                with self._lock:
                    self._outstanding -= 1
                    self._lock.notify_all()
                delivered = self._delivered.setdefault(job, set())
                if i in delivered:
                    continue
                delivered.add(i)
                entry = self._cache.get(job)
                if entry is not None:
                    entry._set(i, result)
                if job not in self._cache:
                    self._delivered.pop(job, None)

    def _cache_emptied(self) -> None:
        if self._state == CLOSE:
            self._stop_workers()

    # -- the stdlib API --
    def _check_running(self) -> None:
        if self._state != RUN:
            raise ValueError("Pool not running")

    def apply(self, func, args=(), kwds={}):  # noqa: B006  (the stdlib's signature)
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None,  # noqa: B006
                    error_callback=None):
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        self._submit(result._job, [(result._job, 0, func, args, kwds)])
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
            chunksize, extra = divmod(len(iterable), len(self._pool) * 4 or 1)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        batches = _mp_pool.Pool._get_tasks(func, iterable, chunksize)
        result = MapResult(self, chunksize, len(iterable), callback,
                           error_callback=error_callback)
        self._submit(result._job,
                     ((result._job, i, mapper, (batch,), {}) for i, batch in enumerate(batches)))
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, kind, func, iterable, chunksize):
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        result = kind(self)
        if chunksize == 1:
            tasks = ((result._job, i, func, (x,), {}) for i, x in enumerate(iterable))
            self._submit(result._job, tasks, result._set_length)
            return result
        batches = _mp_pool.Pool._get_tasks(func, iterable, chunksize)
        tasks = ((result._job, i, mapstar, (batch,), {}) for i, batch in enumerate(batches))
        self._submit(result._job, tasks, result._set_length)
        return (item for chunk in result for item in chunk)

    def close(self) -> None:
        if self._state == RUN:
            self._state = CLOSE
            if not self._cache:
                self._stop_workers()

    def _stop_workers(self) -> None:
        self._taskqueue.put((None, None, None))
        self._submit_stops()

    def _submit_stops(self) -> None:
        rt = runtime.current()
        body = dumps_unsigned((_STOP, 0, None, (), {}))
        item = (rt.tag(body), body)
        rt.conn().execute_many([("RPUSH", self._tasks, *([item] * len(self._pool))),
                                ("EXPIRE", self._tasks, KEY_TTL),
                                ("DEL", self._key + ":running")])

    def terminate(self) -> None:
        self._state = TERMINATE
        with self._lock:
            self._lock.notify_all()
        self._finalizer()

    def join(self) -> None:
        if self._state == RUN:
            raise ValueError("Pool is still running")
        if self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        for worker in list(self._pool):
            worker.join()
        self._finalizer()  # the workers are done: stop the threads, free the keys
        for thread in self._threads:
            thread.join()

    @staticmethod
    def _shutdown(key: str, workers: list[Process], inflight_keys: list[str], taskqueue,
                  wake_w: int) -> None:
        """Stop workers and threads and delete the pool's keys (terminate, join, or the
        pool object is gone)."""
        taskqueue.put((None, None, None))
        for worker in list(workers):
            if worker.exitcode is None:
                worker.terminate()
        for worker in list(workers):
            worker.join()
        try:
            conn = runtime.current().conn()
            conn.execute_many([("DEL", key + ":running", key + ":tasks", *inflight_keys),
                               ("RPUSH", key + ":results", b"-")])
            os.write(wake_w, b"x")
        except (OSError, ValueError):
            pass

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    def __repr__(self) -> str:
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"state={self._state} pool_size={len(self._pool)}>")
