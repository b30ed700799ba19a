"""joblib (and so scikit-learn's ``n_jobs``) on remote workers.

joblib's default backend, loky, starts its own processes and never touches
``multiprocessing``. The hook therefore gives ``joblib.parallel`` a copy of its
backend table in which ``"loky"`` (the default) and ``"multiprocessing"`` are
:class:`RemoteBackend`: joblib's own Pool-based backend logic on transparent_mp's
Pool. ``prefer="threads"`` and ``require="sharedmem"`` still get joblib's
threading backend, as joblib intends (this backend shares no memory). Arrays
that every task receives (scikit-learn's X and y) travel once per worker.
"""

from __future__ import annotations

from joblib import parallel as _parallel
from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    PoolManagerMixin,
    SequentialBackend,
)

from .. import config

__all__ = ["BACKENDS", "RemoteBackend"]


class RemoteBackend(PoolManagerMixin, AutoBatchingMixin, ParallelBackendBase):
    """A joblib backend whose workers are transparent_mp Pool workers."""

    supports_retrieve_callback = True
    supports_sharedmem = False

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """Workers for ``n_jobs``; a negative count counts from the remote concurrency."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(config.settings().concurrency + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int = 1, parallel=None, **backend_kwargs) -> int:
        from ..pool import Pool

        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        pool = _warm.get("pool")
        if pool is not None and pool._state == "RUN" and pool._processes != n_jobs:
            pool.terminate()  # as loky resizes its one executor: idle workers hold capacity
        if pool is None or pool._state != "RUN" or pool._processes != n_jobs:
            pool = _warm["pool"] = Pool(n_jobs)
        self._pool = pool
        return n_jobs

    def terminate(self) -> None:
        """End of a Parallel call: the workers stay warm for the next, as loky's do."""
        self._pool = None

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A task failed: stop the rest for real, and start afresh if asked."""
        if self._pool is not None:
            if _warm.get("pool") is self._pool:
                del _warm["pool"]
            self._pool.terminate()
            self._pool = None
        if ensure_ready:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel,
                           **self.parallel._backend_kwargs)


#: The warm pool that successive Parallel calls of its size reuse (ended at exit).
_warm: dict = {}


#: joblib's backend table, with its process-based backends made remote.
BACKENDS = {**_parallel.BACKENDS, "loky": RemoteBackend, "multiprocessing": RemoteBackend}
