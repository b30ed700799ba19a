"""The local backend: warm, isolated worker interpreters on this machine.

Each worker is a fresh ``python -m transparent_mp.worker`` in its own temporary
directory. It reads invocations (JSON lines) on stdin, reports ``S <id> <pid>``
(started) and ``E <id> <exitcode>`` (ended) on a status pipe, and its stdout and
stderr are forwarded to the driver's, line by line. One thread of the driver
watches every worker's pipes. A worker that ends an invocation is reused by the
next one (warm start); the pool grows on demand and idle workers retire.

Invocations are never queued: a Process that waits for another Process would
deadlock behind it. Up to ``concurrency`` workers stay warm; beyond that a
worker is started for the invocation and retires as soon as it is idle.
"""

from __future__ import annotations

import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import config
from ..util import (
    DRIVER_PID_ENV,
    logger,
    package_parent_dir,
    popen_bound_to_parent,
    sitecustomize_dir,
    start_service_thread,
)
from .base import Backend, Invocation, InvocationHandle

#: Seconds a worker beyond the configured concurrency stays warm once idle.
_OVERFLOW_GRACE = 5.0
#: How many times an invocation is handed to a new worker when the one it was
#: given died before starting it.
_MAX_DISPATCH = 3


class _LocalHandle(InvocationHandle):
    def __init__(self, invocation: Invocation) -> None:
        super().__init__(invocation.id)
        self.invocation = invocation
        self.dispatches = 0
        self._signal_lock = threading.Lock()
        self._pending_signal: int | None = None

    def signal(self, sig: int) -> None:
        """Signal the process now, or as soon as it has started (without waiting)."""
        with self._signal_lock:
            if not self._started.is_set():
                self._pending_signal = sig
                return
        self._kill(sig)

    def set_started(self, pid: int) -> None:
        with self._signal_lock:
            super().set_started(pid)
            sig, self._pending_signal = self._pending_signal, None
        if sig is not None:
            self._kill(sig)

    def _kill(self, sig: int) -> None:
        if self.poll() is not None or self._pid is None:
            return
        try:
            os.kill(self._pid, sig)
        except ProcessLookupError:
            pass


class _Worker:
    """One worker interpreter and the driver's ends of its pipes."""

    def __init__(self, env: dict[str, str], death_signal: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="transparent_mp-worker-"))
        status_r, status_w = os.pipe()
        lifeline_r, self.lifeline_w = os.pipe()
        try:
            self.proc = popen_bound_to_parent(
                [sys.executable, "-m", "transparent_mp.worker",
                 "--status-fd", str(status_w), "--lifeline-fd", str(lifeline_r)], death_signal,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.dir, env=env, pass_fds=(status_w, lifeline_r),
            )
        finally:
            os.close(status_w)
            os.close(lifeline_r)
        self.status = status_r
        self.buffers: dict[int, bytearray] = {
            status_r: bytearray(), self.proc.stdout.fileno(): bytearray(),
            self.proc.stderr.fileno(): bytearray(),
        }
        for fd in self.buffers:
            os.set_blocking(fd, False)
        self.current: _LocalHandle | None = None
        self.idle_since = time.monotonic()
        self.retiring = False

    def send(self, invocation: Invocation) -> None:
        self.proc.stdin.write(invocation.to_json().encode() + b"\n")
        self.proc.stdin.flush()

    def retire(self) -> None:
        self.retiring = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class LocalBackend(Backend):
    """Warm worker interpreters on this machine."""

    name = "local"

    def __init__(self, settings: config.Settings, driver_pid: int) -> None:
        super().__init__(settings.concurrency)
        self.idle_timeout = settings.idle_timeout
        self.workers_started = 0
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._by_fd: dict[int, _Worker] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        self._env = self._worker_env(driver_pid)
        #: A nested process's workers outlive it, as stdlib grandchildren outlive their
        #: parent, and watch the driver instead (util.die_with_driver).
        self._death_signal = signal.SIGKILL if driver_pid == os.getpid() else 0
        self._thread = threading.Thread(target=self._watch, name="transparent_mp-local",
                                        daemon=True)
        start_service_thread(self._thread)

    @staticmethod
    def _worker_env(driver_pid: int) -> dict[str, str]:
        env = dict(os.environ)
        paths = [sitecustomize_dir()]
        parent = package_parent_dir()
        if "site-packages" not in parent and "dist-packages" not in parent:
            paths.append(parent)  # a source checkout: let workers import us too
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.pop("PYTHONSTARTUP", None)
        env[DRIVER_PID_ENV] = str(driver_pid)
        return env

    # -- dispatch (any thread) --
    def invoke(self, invocation: Invocation) -> InvocationHandle:
        handle = _LocalHandle(invocation)
        self._dispatch(handle)
        self.invocations += 1
        return handle

    def _dispatch(self, handle: _LocalHandle) -> None:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the local backend has been shut down")
                worker = self._idle.pop() if self._idle else self._start_worker()
                worker.current = handle
            handle.dispatches += 1
            try:
                worker.send(handle.invocation)
                return
            except (BrokenPipeError, ValueError, OSError):
                with self._lock:
                    worker.current = None  # died while idle; its watcher reaps it
                if handle.dispatches >= _MAX_DISPATCH:
                    raise RuntimeError("local workers keep dying before they start") from None

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._env, self._death_signal)
        self.workers_started += 1
        self._workers.append(worker)
        for fd in worker.buffers:
            self._by_fd[fd] = worker
            self._selector.register(fd, selectors.EVENT_READ)
        self._wake()
        logger.debug("started local worker pid %d", worker.proc.pid)
        return worker

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- the watcher thread --
    def _watch(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._workers:
                    return
            for key, _ in self._selector.select(timeout=self._select_timeout()):
                if key.fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                worker = self._by_fd.get(key.fd)
                if worker is not None:
                    self._read(worker, key.fd)
            self._retire_idle()

    def _select_timeout(self) -> float:
        with self._lock:
            if not self._idle:
                return 5.0
            oldest = min(w.idle_since for w in self._idle)
            overflow = len(self._idle) > self.concurrency
        limit = min(_OVERFLOW_GRACE, self.idle_timeout) if overflow else self.idle_timeout
        return max(0.05, oldest + limit - time.monotonic())

    def _read(self, worker: _Worker, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            data = b""
        if not data:
            if fd == worker.status:
                self._reap(worker)
            else:
                self._selector.unregister(fd)
                self._flush(worker, fd, final=True)
            return
        worker.buffers[fd] += data
        if fd == worker.status:
            self._handle_status(worker)
        else:
            self._flush(worker, fd)

    def _drain(self, worker: _Worker) -> None:
        """Forward every byte the worker has written so far."""
        for fd in (worker.proc.stdout.fileno(), worker.proc.stderr.fileno()):
            while True:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                worker.buffers[fd] += data
            self._flush(worker, fd)

    def _flush(self, worker: _Worker, fd: int, final: bool = False) -> None:
        buf = worker.buffers[fd]
        end = len(buf) if final else buf.rfind(b"\n") + 1
        if end <= 0:
            return
        text = bytes(buf[:end]).decode(errors="replace")
        del buf[:end]
        stream = sys.stdout if fd == worker.proc.stdout.fileno() else sys.stderr
        if stream is not None:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass

    def _handle_status(self, worker: _Worker) -> None:
        buf = worker.buffers[worker.status]
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            kind, inv_id, value = line.decode().split()
            handle = worker.current
            if handle is None or handle.id != inv_id:
                continue
            if kind == "S":
                handle.set_started(int(value))
            elif kind == "E":
                self._drain(worker)
                with self._lock:
                    worker.current = None
                    worker.idle_since = time.monotonic()
                    if not worker.retiring:
                        self._idle.append(worker)
                handle.set_exit(int(value))

    def _reap(self, worker: _Worker) -> None:
        """The worker's status pipe closed: it has exited or died."""
        self._drain(worker)
        returncode = worker.proc.wait()
        with self._lock:
            handle, worker.current = worker.current, None
            if worker in self._idle:
                self._idle.remove(worker)
            self._workers.remove(worker)
        for fd in list(worker.buffers):
            if fd in self._selector.get_map():
                self._selector.unregister(fd)
            self._flush(worker, fd, final=True)
            self._by_fd.pop(fd, None)
        os.close(worker.status)
        os.close(worker.lifeline_w)
        for stream in (worker.proc.stdin, worker.proc.stdout, worker.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(worker.dir, ignore_errors=True)
        if handle is None:
            return
        if not handle._started.is_set() and handle.dispatches < _MAX_DISPATCH and not self._closed:
            logger.info("worker %d died before starting %s; starting it again",
                        worker.proc.pid, handle.id)
            start_service_thread(threading.Thread(target=self._redispatch, args=(handle,),
                                                  daemon=True, name="transparent_mp-redispatch"))
            return
        handle.set_exit(returncode if returncode < 0 else (returncode or -signal.SIGKILL))

    def _redispatch(self, handle: _LocalHandle) -> None:
        try:
            self._dispatch(handle)
        except RuntimeError:
            handle.set_exit(1)

    def _retire_idle(self) -> None:
        """Idle workers beyond the concurrency retire after a short grace (the next
        burst may need them again); the others after the idle timeout."""
        now = time.monotonic()
        with self._lock:
            for worker in sorted(self._idle, key=lambda w: w.idle_since):
                overflow = len(self._idle) > self.concurrency
                limit = min(_OVERFLOW_GRACE, self.idle_timeout) if overflow else self.idle_timeout
                if now - worker.idle_since >= limit:
                    self._idle.remove(worker)
                    worker.retire()

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            self._idle.clear()
        for worker in workers:
            worker.retire()
        deadline = time.monotonic() + 2.0
        for worker in workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
        self._wake()
        self._thread.join(5.0)
        os.close(self._wake_r)
        os.close(self._wake_w)
