"""``concurrent.futures.ProcessPoolExecutor`` on the Pool's machinery.

Each ``submit`` is one Pool task; its Future stays pending (and can be
cancelled) until the result arrives, and is completed by the Pool's result
thread. ``map`` chunks its inputs as the stdlib's executor does. Where the
stdlib breaks the whole executor (``BrokenProcessPool``) when a worker dies,
this one re-runs the dead worker's tasks on a new worker, as its Pool does.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from . import compat, config
from .pool import ApplyResult, Pool
from .process import SpawnProcess

__all__ = ["ProcessPoolExecutor"]


def _chunks(iterables: tuple[Iterable, ...], size: int) -> Iterator[tuple]:
    """Tuples of up to ``size`` argument tuples, as the stdlib's executor chunks ``map``."""
    args = zip(*iterables, strict=False)  # the shortest iterable ends it, as the stdlib
    while chunk := tuple(itertools.islice(args, size)):
        yield chunk


def _run_chunk(fn, chunk: tuple) -> list:
    """In a worker: ``fn`` applied to each argument tuple of one chunk."""
    return [fn(*args) for args in chunk]


def _flatten(results: Iterator[list]) -> Iterator:
    """The items of each chunk's result list in order, each let go once yielded."""
    for chunk in results:
        chunk.reverse()
        while chunk:
            yield chunk.pop()


class _RemoteFuture(Future):
    """A Future that can be cancelled only while no worker has taken its task."""

    _withdraw = staticmethod(lambda: False)

    def cancel(self) -> bool:
        with self._condition:
            if self._state == "PENDING" and not self._withdraw():
                self._state = "RUNNING"  # a worker has it: too late, as the stdlib's
                return False
        return super().cancel()


class _SpawnContext:
    """``get_context("spawn")``, ours even where the hook is not installed."""

    Process = SpawnProcess

    @staticmethod
    def get_start_method(allow_none: bool = False) -> str:
        return "spawn"


class _ExecutorPool(Pool):
    # One call at a time per worker: what waits in the queue can still be cancelled.
    _most_pulled = 1


class ProcessPoolExecutor(Executor):
    """``concurrent.futures.ProcessPoolExecutor`` whose workers are remote invocations."""

    def __init__(self, max_workers: int | None = None, mp_context=None, initializer=None,
                 initargs=(), *, max_tasks_per_child: int | None = None) -> None:
        if max_workers is None:
            max_workers = config.settings().concurrency
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context is None:  # as the stdlib: a worker that is replaced is spawned
                mp_context = _SpawnContext
            elif mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError("max_tasks_per_child is incompatible with the 'fork' "
                                 "multiprocessing start method; supply a different "
                                 "mp_context.")
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._pool = _ExecutorPool(max_workers, initializer, initargs, max_tasks_per_child,
                                   context=mp_context)
        self._pending: set[Future] = set()
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future = _RemoteFuture()
            self._pending.add(future)
        core = self._pool._core
        result = ApplyResult(core, partial(self._settle, future, True),
                             partial(self._settle, future, False))
        future._withdraw = partial(core.withdraw, result._job)
        core.submit(result._job, [(result._job, 0, fn, args, kwargs)], withdrawable=True)
        return future

    def _settle(self, future: Future, ok: bool, value: object) -> None:
        with self._lock:
            self._pending.discard(future)
        if future.done():  # cancelled, or failed by _force_shutdown
            return
        try:
            if future._state == "PENDING":
                future.set_running_or_notify_cancel()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        except InvalidStateError:
            pass  # failed by _force_shutdown meanwhile

    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1,
            buffersize: int | None = None):
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        options = {"timeout": timeout}
        if buffersize is not None:
            if not compat.EXECUTOR_MAP_BUFFERSIZE:  # as this version's stdlib
                raise TypeError("map() got an unexpected keyword argument 'buffersize'")
            options["buffersize"] = buffersize
        return _flatten(super().map(partial(_run_chunk, fn), _chunks(iterables, chunksize),
                                    **options))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pending = list(self._pending) if cancel_futures else []
        for future in pending:
            future.cancel()
        if self._pool._state == "RUN":
            self._pool.close()
        if wait:
            self._pool.join()

    def _force_shutdown(self, kill: bool) -> None:
        """Terminate (or kill) every live worker, fail what is still pending with
        ``BrokenProcessPool`` and shut down (3.14's terminate/kill_workers)."""
        workers = list(self._pool._core.workers)
        with self._lock:
            self._shutdown = True
            pending = list(self._pending)
        for worker in workers:
            if worker.exitcode is None and kill:
                worker.kill()
            elif worker.exitcode is None:
                worker.terminate()
        for future in pending:
            if future.cancel():
                continue
            with self._lock:
                self._pending.discard(future)
            try:
                future.set_exception(BrokenProcessPool(
                    "A process in the process pool was terminated abruptly while the "
                    "future was running or pending."))
            except InvalidStateError:
                pass  # its result arrived first
        self._pool.terminate()

    if compat.EXECUTOR_TERMINATE_WORKERS:
        def terminate_workers(self) -> None:
            """End every worker at once with SIGTERM, then shut down (3.14)."""
            self._force_shutdown(kill=False)

        def kill_workers(self) -> None:
            """End every worker at once with SIGKILL, then shut down (3.14)."""
            self._force_shutdown(kill=True)
