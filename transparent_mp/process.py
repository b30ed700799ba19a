"""``Process``: the stdlib's class, started as a remote invocation.

:class:`Process` is ``multiprocessing.process.BaseProcess`` with a
:class:`Popen` that ships the pickled object to a worker instead of forking.
Everything else (names, daemon flag, authkey, ``join``/``is_alive``/
``exitcode``, ``active_children``, daemonic children terminated at exit) is
the stdlib's own code, so it behaves as the stdlib does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from multiprocessing import context as _mp_context
from multiprocessing.process import (
    BaseProcess,
    active_children,
    current_process,
    parent_process,
)

from . import compat

__all__ = ["ForkProcess", "ForkServerProcess", "Popen", "Process", "SpawnProcess",
           "active_children", "current_process", "parent_process"]


@contextlib.contextmanager
def spawning(popen: object) -> Iterator[None]:
    """Pickle for a child, as the stdlib's spawn does: authkeys may travel."""
    _mp_context.set_spawning_popen(popen)
    try:
        yield
    finally:
        _mp_context.set_spawning_popen(None)


def default_start_method() -> str:
    """The start method of ``multiprocessing``'s default context (the hook's, if
    installed: the method plain python would use here, or what the program set)."""
    import multiprocessing

    return multiprocessing.get_start_method()


#: Thread names of the driver's own services; a pool's threads are not among
#: them (the stdlib's Pool has the same three threads, and they count).
_SERVICE_THREADS = "transparent_mp-"
_POOL_THREADS = "transparent_mp-pool-"


def _os_threads() -> int:
    """This process's threads as the kernel counts them (as ``os.fork`` does)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[17])
    except (OSError, IndexError, ValueError):
        return threading.active_count()


def warn_if_threaded() -> None:
    """Plain python's warning for a fork start in a process with other threads
    (3.12+): the program's threads and native ones count, our services do not."""
    ours = sum(t.name.startswith(_SERVICE_THREADS) and not t.name.startswith(_POOL_THREADS)
               for t in threading.enumerate())
    if _os_threads() - ours > 1:
        warnings.warn(f"This process (pid={os.getpid()}) is multi-threaded, use of fork() "
                      "may lead to deadlocks in the child.", DeprecationWarning, stacklevel=2)


class Popen:
    """Runs one Process object as an invocation; the stdlib's Popen interface.

    ``method`` decides what the child starts from, as in the stdlib: ``fork``, a
    snapshot of this process's state (see :mod:`.snapshot`); ``spawn`` and
    ``forkserver``, the app's main module rebuilt as ``__mp_main__``.
    """

    def __init__(self, process_obj: BaseProcess, method: str) -> None:
        from . import runtime, spawn

        self.method = method
        if method != "fork" and spawn.is_preparing():
            raise RuntimeError(
                "An attempt has been made to start a new process before the current process "
                "has finished its bootstrapping phase. This probably means that the main "
                "module starts processes outside an `if __name__ == '__main__':` guard; "
                "remote workers import the main module, as the stdlib's spawn does."
            )
        self.returncode: int | None = None
        rt = runtime.current()
        #: The child's name as a holder of the pipe ends pickled for it.
        self.token = rt.new_id()
        snap = None
        try:
            with spawning(self):
                if method == "fork":
                    if compat.FORK_WARNS_WITH_THREADS:
                        warn_if_threaded()
                    snap = rt.fork_snapshot()
                    payload = rt.sign(snap.dumps(process_obj, "the Process object"))
                else:
                    payload = rt.dumps(process_obj)
        except BaseException:
            rt.release_token(self.token)  # the child will never exist
            raise
        self._handle = rt.invoke("process", payload, self.token, snap)
        self.sentinel = self._handle.sentinel

    def duplicate_for_child(self, fd: int) -> int:
        raise TypeError(
            "this object is backed by an OS handle (a file descriptor, or a stdlib "
            "multiprocessing object such as a stdlib Lock or Queue) that cannot be "
            "shared with a remote process; use transparent_mp's replacement "
            "(through the import hook) or pass the data instead"
        )

    @property
    def pid(self) -> int | None:
        return self._handle.pid

    def poll(self, flag: int = 0) -> int | None:
        if self.returncode is None:
            self.returncode = self._handle.poll()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None:
            self.returncode = self._handle.wait(timeout)
        return self.returncode

    def _send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._handle.signal(sig)

    def terminate(self) -> None:
        self._send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self._send_signal(signal.SIGKILL)

    def interrupt(self) -> None:
        """SIGINT: what 3.14's ``Process.interrupt()`` sends."""
        self._send_signal(signal.SIGINT)

    def close(self) -> None:
        self._handle.close()


class Process(BaseProcess):
    """``multiprocessing.Process`` whose ``start()`` runs it on a remote worker,
    with the default context's start method."""

    _start_method: str | None = None

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> Popen:
        return Popen(process_obj, type(process_obj)._start_method or default_start_method())


class ForkProcess(Process):
    _start_method = "fork"


class SpawnProcess(Process):
    _start_method = "spawn"


class ForkServerProcess(Process):
    _start_method = "forkserver"


#: The Process class of each start method's context, as the stdlib's.
PROCESS_CLASSES: dict[str, type[Process]] = {
    "fork": ForkProcess, "spawn": SpawnProcess, "forkserver": ForkServerProcess}
