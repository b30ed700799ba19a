"""Small helpers shared by every layer: the package logger and child processes
that die with their parent."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future

logger = logging.getLogger("transparent_mp")

_PR_SET_PDEATHSIG = 1


def configure_logging(level: str) -> None:
    """Send the package's log records to stderr at ``level``."""
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[transparent_mp %(levelname)s] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


#: Signals sent to a process from outside (Ctrl-C, ``terminate()``, timers). The
#: package's own threads block them, so the kernel hands them to the program's
#: main thread, which a blocking call of ours then leaves as in plain python.
_ASYNC_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                            signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM})


def block_async_signals() -> None:
    """Block :data:`_ASYNC_SIGNALS` in the calling thread (a thread pool's initializer)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)


def start_service_thread(thread: threading.Thread) -> None:
    """Start one of the package's own threads with :data:`_ASYNC_SIGNALS` blocked
    (a new thread inherits the mask of the thread that starts it)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _child_preexec(sig: int, parent_pid: int) -> None:
    """In a forked child before exec: no signal blocked (whichever thread forked
    it), and death with its parent."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    die_with_parent(sig, parent_pid)


def die_with_parent(sig: int = signal.SIGKILL, parent_pid: int | None = None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux).

    With ``parent_pid`` (the parent's pid, taken before the fork), exit at once if
    that parent has already gone: it died before the request took effect.
    """
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


#: The pid of the run's driver, in the environment of every local worker.
DRIVER_PID_ENV = "TRANSPARENT_MP_DRIVER_PID"


def die_with_driver() -> None:
    """In a local worker: end when the run's driver ends.

    A worker of the driver dies with its parent (the parent-death signal). A worker
    that a nested process started (with no such signal) must outlive that process,
    as a stdlib grandchild outlives its parent: it watches the driver instead.
    """
    driver = int(os.environ.get(DRIVER_PID_ENV) or 0)
    if not driver or driver == os.getppid():
        die_with_parent()
        return
    threading.Thread(target=_exit_when_ended, args=(driver,), daemon=True,
                     name="transparent_mp-driver-watch").start()


def _exit_when_ended(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except OSError:  # no pidfd here (Linux < 5.3): die with the parent instead
        die_with_parent(parent_pid=os.getppid())
        return
    select.select([fd], [], [])
    os._exit(1)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class _Spawner(threading.Thread):
    """The one thread that starts child processes which must not outlive us.

    Linux delivers the parent-death signal when the *thread* that forked the
    child exits, so children are forked from this thread, which lives as long
    as the interpreter does.
    """

    def __init__(self) -> None:
        super().__init__(name="transparent_mp-spawner", daemon=True)
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.owner_pid = os.getpid()

    def run(self) -> None:
        while True:
            args, kwargs, future = self.requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(subprocess.Popen(args, **kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def popen_bound_to_parent(args: list[str], sig: int = signal.SIGKILL,
                          **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` whose child gets ``sig`` when this process dies (0: no
    signal; the child still exits at once if this process died while starting it)."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner.owner_pid != os.getpid() or not _spawner.is_alive():
            _spawner = _Spawner()
            start_service_thread(_spawner)
        spawner = _spawner
    pid = os.getpid()
    kwargs["preexec_fn"] = functools.partial(_child_preexec, sig, pid)
    future: Future = Future()
    spawner.requests.put((args, kwargs, future))
    return future.result()


def sitecustomize_dir() -> str:
    """The folder whose ``sitecustomize.py`` installs the hook at interpreter start."""
    from pathlib import Path

    beside = Path(__file__).resolve().parent.parent / "sitecustomize_template"
    if (beside / "sitecustomize.py").is_file():
        return str(beside)
    import importlib.util

    spec = importlib.util.find_spec("sitecustomize_template")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the sitecustomize_template folder is not installed")
    return str(list(spec.submodule_search_locations)[0])


def package_parent_dir() -> str:
    """The folder that holds the ``transparent_mp`` package."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)
