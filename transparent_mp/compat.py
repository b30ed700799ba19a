"""The stdlib's private names this package relies on, and what differs by version.

Every access to a private module-level name of ``multiprocessing``,
``concurrent.futures``, ``runpy``, ``functools`` or ``logging`` goes through
here, so that one module says what each supported Python provides;
``tests/test_compat.py`` fails on the version that moves one. Private
*attributes* of stdlib objects that subclasses of ours build on are listed in
:data:`OBJECT_ATTRIBUTES` and checked there too. Where a private helper changed
between versions (``concurrent.futures.process._get_chunks``, gone in 3.13),
the package has its own code instead (see :mod:`.futures`).

Tested here: CPython 3.10 to 3.13. Written for, not tested: 3.14 (default start
method ``forkserver`` on Linux, ``ProcessPoolExecutor.terminate_workers`` and
``kill_workers``, ``Executor.map(buffersize=)``, ``Process.interrupt``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import runpy
import sys
from collections.abc import Callable
from multiprocessing import context as _mp_context
from multiprocessing import util as _mp_util
from types import ModuleType

__all__ = ["EXECUTOR_MAP_BUFFERSIZE", "EXECUTOR_TERMINATE_WORKERS", "FORK_WARNS_WITH_THREADS",
           "OBJECT_ATTRIBUTES", "default_context", "exit_function", "formatter_spec",
           "imap_iterator", "logger_settings", "lru_cache_wrapper", "run_module_as_main"]

#: ``multiprocessing``'s module-level context. Its start method is the one plain
#: python uses here: ``fork`` on Linux up to 3.13, ``forkserver`` from 3.14,
#: ``spawn`` on macOS and Windows.
default_context = _mp_context._default_context

#: ``multiprocessing.util``'s exit handler (finalizers, joining children).
exit_function: Callable[[], None] = _mp_util._exit_function

#: Names of ``multiprocessing.pool``, read when first used: importing that module
#: here would patch it (the hook) while this module is half-imported.
#:
#: - ``PoolCache``: the stdlib Pool's result cache (a dict that reports when it empties).
#: - ``helper_reraises_exception``: what the stdlib Pool runs to re-raise an error of
#:   the task generator; its errors are not wrapped with a remote traceback.
#: - ``IMAP_BUFFERSIZE``: ``Pool.imap`` takes ``buffersize`` (3.16, CPython's main branch:
#:   ``IMapIterator(pool, buffersize)``); older versions build it from the pool alone.
_POOL_NAMES: dict[str, Callable[[ModuleType], object]] = {
    "PoolCache": lambda pool: pool._PoolCache,
    "helper_reraises_exception": lambda pool: pool._helper_reraises_exception,
    "IMAP_BUFFERSIZE": lambda pool: "buffersize" in inspect.signature(pool.Pool.imap).parameters,
}


def __getattr__(name: str) -> object:
    if name not in _POOL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import multiprocessing.pool

    value = globals()[name] = _POOL_NAMES[name](multiprocessing.pool)
    return value

#: 3.14: ``Executor.map(..., buffersize=)``.
EXECUTOR_MAP_BUFFERSIZE = sys.version_info >= (3, 14)

#: 3.14: ``ProcessPoolExecutor.terminate_workers()`` and ``kill_workers()``.
EXECUTOR_TERMINATE_WORKERS = sys.version_info >= (3, 14)

#: 3.12+: ``os.fork()`` in a process with more than one thread gives a
#: ``DeprecationWarning`` (so a fork start does, in plain python).
FORK_WARNS_WITH_THREADS = sys.version_info >= (3, 12)

#: ``runpy``'s ``python -m`` entry, which the CLI runs the app's module with.
run_module_as_main = runpy._run_module_as_main

#: The type of an ``functools.lru_cache`` wrapper.
lru_cache_wrapper: type = functools._lru_cache_wrapper

#: Private attributes of stdlib objects that this package reads or sets, by the
#: class that has them (checked on instances by the tests).
OBJECT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    # futures._RemoteFuture refuses a cancel under the future's own condition
    "concurrent.futures.Future": ("_state", "_condition"),
    # the worker runs a Process object as the stdlib's children do;
    # the Pool names a worker's in-flight list after its Popen
    "multiprocessing.process.BaseProcess": ("_bootstrap", "_popen"),
    # the Pool's result objects are the stdlib's (they hold their job and cache)
    "multiprocessing.pool.ApplyResult": ("_job", "_set", "_cache"),
    "multiprocessing.pool.IMapIterator": ("_job", "_set", "_set_length"),
}


def imap_iterator(kind: type, pool: object) -> object:
    """A new ``IMapIterator`` (or unordered) of ``pool``, with no buffer limit."""
    buffersize = globals().get("IMAP_BUFFERSIZE")
    if buffersize is None:
        buffersize = __getattr__("IMAP_BUFFERSIZE")  # read once, then a global
    return kind(pool, None) if buffersize else kind(pool)


def logger_settings() -> dict:
    """The level of multiprocessing's logger and whether it logs to stderr, as
    spawn passes them to a child; empty if the program never made that logger."""
    if _mp_util._logger is None:
        return {}
    return {"level": _mp_util._logger.getEffectiveLevel(),
            "to_stderr": _mp_util._log_to_stderr}


def formatter_spec(fmt: logging.Formatter) -> tuple[str | None, str]:
    """The format string of ``fmt`` and the name of its style class."""
    return fmt._fmt, type(fmt._style).__name__
