"""What runs an invocation, on whichever backend.

:func:`execute` verifies and unpickles an invocation's payload and runs it; it
is the same code on every backend. Around it, a :class:`Zygote` rebuilds the
app's ``__main__`` once, then forks a fresh child for each invocation, so every
process starts from the same clean state, as with the stdlib's forkserver, and
its exit status is a real one. :func:`main` is the local backend's worker
interpreter (:class:`LocalZygote`); :func:`handler` is the AWS Lambda entry
point (:class:`LambdaZygote`).
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing.util  # noqa: F401  (children use it; import it once, here)
import os
import pickle
import queue
import select
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from . import runtime, serialize, snapshot, spawn
from .backends import aws_lambda
from .backends.base import Invocation
from .serialize import PayloadRejected
from .store.keys import KEY_TTL
from .store.resp import StoreError, StoreUnavailable, ping
from .util import die_with_driver, die_with_parent

#: A Process still running this close to its invocation's time limit is ended,
#: so that the driver learns why before Lambda ends the whole environment.
TIME_LIMIT_MARGIN = 2.0
#: Past this many bytes of fork snapshot blobs, a worker keeps only the latest's.
BLOB_CACHE_SIZE = 1 << 30


def _complain(message: str) -> None:
    sys.stderr.write(f"transparent_mp worker: {message}\n")
    sys.stderr.flush()


def execute(invocation: Invocation, payload: bytes, parent_sentinel: int | None) -> int:
    """Run one invocation's payload in this process; its exit code."""
    rt = runtime.enter_worker(invocation)
    try:
        body = rt.verify(payload)
        obj = snapshot.loads(body) if invocation.snapshot_key else pickle.loads(body)
    except PayloadRejected as exc:
        _complain(str(exc))
        return 1
    except Exception:
        _complain("could not unpickle the invocation's payload:")
        traceback.print_exc()
        return 1
    if invocation.kind == "process":
        try:
            return obj._bootstrap(parent_sentinel=parent_sentinel)
        finally:
            rt.flush()
    _complain(f"unknown invocation kind {invocation.kind!r}")
    return 1


class Zygote:
    """Fetch an invocation, rebuild its app once, fork a child that runs it.

    Subclasses say how the child's start and end are reported (:meth:`report`)
    and what the child does first (:meth:`child_setup`).
    """

    #: The children's ``parent_process()`` sentinel: readable once the parent is gone.
    lifeline: int | None = None

    def __init__(self, code_dir: Path) -> None:
        self.code_dir = code_dir
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.loaded_preps: set[str] = set()
        self.prepared_run: str | None = None
        #: Fork snapshot blobs seen, by digest: an unchanged global is fetched once.
        self.blobs: dict[str, bytes] = {}

    def report(self, kind: str, invocation: Invocation, value: object) -> None:
        raise NotImplementedError

    def fail(self, invocation: Invocation, message: str) -> None:
        """The invocation could not start: say why, and that it ended with exit code 1."""
        _complain(message)
        self.report("E", invocation, 1)

    def child_setup(self) -> None:
        """Run first in the forked child."""

    @staticmethod
    def _prep_id(invocation: Invocation) -> str:
        """Preparations differ by start method: a fork child's main is not run."""
        return invocation.prep_key + (":fork" if invocation.snapshot_key else "")

    def fetch(self, invocation: Invocation) -> tuple[bytes | None, bytes | None, object]:
        """The invocation's payload, its preparation data (None if this worker has it)
        and its fork snapshot (None for spawn); :class:`LookupError` if one is missing."""
        rt = runtime.enter_worker(invocation)
        conn = rt.conn()
        need_prep = self._prep_id(invocation) not in self.loaded_preps
        commands = [("GETDEL", invocation.payload_key)]
        if need_prep:
            commands.append(("GET", invocation.prep_key))
        if invocation.snapshot_key:
            commands.append(("GET", invocation.snapshot_key))
        results = conn.execute_many(commands)
        prep = results[1] if need_prep else None
        snap = None
        if invocation.snapshot_key and results[0] is not None:
            if results[-1] is None:
                raise LookupError(f"the fork snapshot of invocation {invocation.id} is missing "
                                  "from the store")
            manifest = pickle.loads(rt.verify(results[-1]))
            snap = (manifest, self._snapshot_blobs(rt, manifest))
        return results[0], prep, snap

    def _snapshot_blobs(self, rt: runtime.Runtime, manifest: dict) -> dict[str, bytes]:
        """The blobs of ``manifest``, fetching only those this worker has not seen."""
        wanted = {data for info in manifest["modules"] for kind, data in info["attrs"].values()
                  if kind == "b"}
        missing = sorted(wanted - self.blobs.keys())
        for at in range(0, len(missing), 64):
            batch = missing[at:at + 64]
            keys = [rt.namespace.key("snap", digest) for digest in batch]
            for digest, data in zip(batch, rt.conn().execute("MGET", *keys), strict=True):
                if data is None:
                    raise LookupError(f"part {digest} of a fork snapshot is missing from "
                                      "the store")
                self.blobs[digest] = bytes(rt.verify(data))
        if sum(map(len, self.blobs.values())) > BLOB_CACHE_SIZE:
            self.blobs = {digest: self.blobs[digest] for digest in wanted}
        return self.blobs

    def start(self, invocation: Invocation, payload: bytes, prep: bytes | None,
              snap: tuple[dict, dict] | None = None) -> int | None:
        """Fork the child that runs ``invocation``; its pid, or None if it could not start."""
        other_run = self.prepared_run not in (None, invocation.run_id)
        fork = snap is not None
        if self._prep_id(invocation) not in self.loaded_preps and not other_run:
            if prep is None:
                self.fail(invocation,
                          f"the preparation data of invocation {invocation.id} is missing")
                return None
            try:
                spawn.prepare(runtime.current().loads(prep), self.code_dir, run_main=not fork)
            except BaseException:
                # As a spawned child whose main module fails to import: exit 1.
                self.fail(invocation, "the app's main module failed in the worker:\n"
                                      + traceback.format_exc())
                sys.stderr.flush()
                raise SystemExit(1) from None
            self.loaded_preps.add(self._prep_id(invocation))
            self.prepared_run = invocation.run_id
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # children need not copy pages just to collect the zygote's objects
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.child_setup()
                die_with_parent(parent_pid=zygote)  # (a zygote killed just now: exit)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                root = self.code_dir
                if other_run:  # a warm Lambda environment that served another run's app
                    spawn.forget_app(self.code_dir)
                    root = self.code_dir.with_name(f"{self.code_dir.name}-{invocation.run_id}")
                    spawn.prepare(runtime.current().loads(prep), root, run_main=not fork)
                if fork:
                    snapshot.restore(*snap, root)
                code = execute(invocation, payload, self.lifeline)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        return pid


class LocalZygote(Zygote):
    """The local backend's worker: reports on a status pipe to the driver."""

    def __init__(self, status_fd: int, lifeline_fd: int) -> None:
        super().__init__(Path.cwd() / "code")
        self.status = os.fdopen(status_fd, "w", buffering=1)
        self.lifeline = lifeline_fd

    def report(self, kind: str, invocation: Invocation, value: object) -> None:
        try:
            self.status.write(f"{kind} {invocation.id} {value}\n")
        except BrokenPipeError:
            pass  # the nested process that started us has ended: its child runs on

    def child_setup(self) -> None:
        self.status.close()

    def run(self, invocation: Invocation) -> None:
        try:
            payload, prep, snap = self.fetch(invocation)
        except (StoreUnavailable, StoreError, OSError, LookupError) as exc:
            self.fail(invocation, f"cannot fetch invocation {invocation.id} from the store: {exc}")
            return
        except PayloadRejected as exc:
            self.fail(invocation, str(exc))
            return
        if payload is None:
            self.fail(invocation, f"the payload of invocation {invocation.id} is missing "
                                  "from the store")
            return
        pid = self.start(invocation, payload, prep, snap)
        if pid is None:
            return
        self.report("S", invocation, pid)
        _, status = os.waitpid(pid, 0)
        self.report("E", invocation, os.waitstatus_to_exitcode(status))


class LambdaZygote(Zygote):
    """The Lambda handler's worker: reports through the store, heartbeats, obeys
    signals from the driver, forwards the child's output, and ends the child
    before the invocation's time limit so that the driver learns why."""

    def __init__(self) -> None:
        # A writable directory of its own (Lambda's task root is read-only), as locally
        self.dir = Path(tempfile.mkdtemp(prefix="transparent_mp-worker-"))
        super().__init__(self.dir / "code")
        self._out: tuple[int, int] | None = None
        self._pid_lock = threading.Lock()
        self._pid: int | None = None
        self._signal_jobs: queue.SimpleQueue = queue.SimpleQueue()
        # The children's parent_process() sentinel: this environment keeps the
        # write end, so the driver counts as alive while the invocation runs.
        self.lifeline, self._lifeline_w = os.pipe()
        threading.Thread(target=self._signals, name="transparent_mp-signals", daemon=True).start()

    def report(self, kind: str, invocation: Invocation, value: object) -> None:
        rt = runtime.current()
        rt.conn().send_later(("RPUSH", aws_lambda.events_key(rt.namespace),
                              aws_lambda.event(kind, invocation.id, value)))

    def fail(self, invocation: Invocation, message: str) -> None:
        _complain(message)
        self.report("R", invocation, message.rstrip("\n") + "\n")
        self.report("E", invocation, "1 0 0 -")

    def report_failure(self, invocation: Invocation, text: str) -> None:
        """Tell the driver, if the store still answers, that the handler itself failed."""
        try:
            self.fail(invocation, f"the Lambda handler failed:\n{text}")
            runtime.current().flush()
        except Exception as exc:
            _complain(f"cannot report the failure to the driver: {exc}")

    def child_setup(self) -> None:
        out_w, err_w = self._out
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.chdir(self.dir)

    def handle(self, invocation: Invocation, context) -> dict:
        began = time.monotonic()
        deadline = began + context.get_remaining_time_in_millis() / 1000
        rt = runtime.enter_worker(invocation)
        refusal = version_refusal(invocation.versions)
        if refusal:
            self.report("X", invocation, refusal)
            rt.flush()
            return {"refused": refusal}
        try:
            payload, prep, snap = self.fetch(invocation)
        except (StoreUnavailable, StoreError, OSError) as exc:
            _complain(f"cannot fetch invocation {invocation.id} from the store: {exc}")
            return {"error": str(exc)}  # the driver learns it from the missing start
        except (LookupError, PayloadRejected) as exc:
            self.fail(invocation, f"cannot start invocation {invocation.id}: {exc}")
            rt.flush()
            return {"exitcode": 1}
        if payload is None:  # a second delivery of an invocation that has run: ignore it
            return {"duplicate": invocation.id}
        rt.deadline = deadline
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._out = (out_w, err_w)
        try:
            pid = self.start(invocation, payload, prep, snap)
        finally:
            os.close(out_w)
            os.close(err_w)
            rt.deadline = None
        if pid is None:
            os.close(out_r)
            os.close(err_r)
            rt.flush()
            return {"exitcode": 1}
        with self._pid_lock:
            self._pid = pid
        self.report("S", invocation, pid)
        sig_key = aws_lambda.signal_key(rt.namespace, invocation.id)
        self._signal_jobs.put((rt, sig_key, pid))
        try:
            code, why = self._supervise(invocation, pid, out_r, err_r, deadline)
        except BaseException:  # a lost store, say: the child must not run on unseen
            with self._pid_lock:
                if self._pid == pid:
                    os.kill(pid, signal.SIGKILL)
            raise  # Lambda records a FunctionError; the driver sees the heartbeats stop
        billed = math.ceil((time.monotonic() - began) * 1000)
        memory = int(getattr(context, "memory_limit_in_mb", 0) or 0)
        rt.conn().send_later(("HDEL", aws_lambda.beats_key(rt.namespace), invocation.id),
                             ("RPUSH", sig_key, 0), ("EXPIRE", sig_key, KEY_TTL))
        self.report("E", invocation, f"{code} {billed} {memory} {why}")
        rt.flush()  # Lambda may freeze this environment as soon as we return
        return {"exitcode": code}

    def _supervise(self, invocation: Invocation, pid: int, out_r: int, err_r: int,
                   deadline: float) -> tuple[int, str]:
        """Forward output and heartbeats until the child ends; its exit code and why."""
        rt = runtime.current()
        conn = rt.conn()
        beats = aws_lambda.beats_key(rt.namespace)
        interval = rt.settings.heartbeat
        done_r, done_w = os.pipe()
        status: list[int] = []

        def wait_child() -> None:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            with self._pid_lock:  # no signal may reach a reused pid once it is reaped
                self._pid = None
                status.append(os.waitpid(pid, 0)[1])
            os.close(done_w)

        waiter = threading.Thread(target=wait_child, daemon=True)
        waiter.start()
        streams = {out_r: ("O", bytearray()), err_r: ("R", bytearray())}
        why = "-"
        next_beat = time.monotonic()
        ended = False
        while streams or not ended:
            now = time.monotonic()
            if ended:
                fds, timeout = list(streams), 0.2
            else:
                if now >= next_beat:
                    conn.send_later(("HINCRBY", beats, invocation.id, 1))
                    next_beat = now + interval
                limit = deadline - TIME_LIMIT_MARGIN
                if why == "-" and now >= limit:
                    why = "timelimit"
                    with self._pid_lock:
                        if self._pid is not None:
                            os.kill(pid, signal.SIGKILL)
                wake = next_beat if why != "-" else min(next_beat, limit)
                fds, timeout = [*streams, done_r], max(0.0, wake - now)
            readable, _, _ = select.select(fds, [], [], timeout)
            if ended and not readable:
                break  # the child is gone; whoever still holds its output has gone quiet
            for fd in readable:
                if fd == done_r:
                    ended = True
                    continue
                data = os.read(fd, 65536)
                kind, buf = streams[fd]
                if not data:
                    del streams[fd]
                    data = b"\n" if buf else b""  # end a last unfinished line
                buf += data
                end = buf.rfind(b"\n") + 1
                if end:
                    self.report(kind, invocation, bytes(buf[:end]).decode(errors="replace"))
                    del buf[:end]
        waiter.join()
        for fd in (out_r, err_r, done_r):
            os.close(fd)
        return os.waitstatus_to_exitcode(status[0]), why

    def _signals(self) -> None:
        """Deliver the driver's signals to the running child (a thread, for ever)."""
        while True:
            rt, key, pid = self._signal_jobs.get()
            try:
                while True:
                    item = rt.conn().blpop([key], None)
                    sig = int(item[1])
                    if sig == 0:  # the invocation has ended
                        break
                    with self._pid_lock:
                        if self._pid == pid:
                            os.kill(pid, sig)
            except Exception as exc:
                _complain(f"signals from the driver are lost: {exc}")


def version_refusal(driver: dict) -> str | None:
    """Why this worker must not run the driver's payloads, or None if it may."""
    mine = serialize.versions()
    if not driver or driver == mine:
        return None
    return (f"the Lambda function runs Python {mine['python']} with cloudpickle "
            f"{mine['cloudpickle']}, but the driver runs Python {driver.get('python')} with "
            f"cloudpickle {driver.get('cloudpickle')}; payloads pickled by one need not load "
            "in the other: deploy again from the driver's environment "
            "(`python -m transparent_mp deploy`)")


def probe(spec: dict) -> dict:
    """What ``doctor`` asks a deployed function: its versions, and whether it reaches the store."""
    from . import __version__

    answer = {**serialize.versions(), "python_full": sys.version.split()[0],
              "transparent_mp": __version__}
    url = spec.get("store_url") if isinstance(spec, dict) else None
    if not url:
        answer["store"] = "no store URL given"
        return answer
    try:
        ping(url)
        answer["store"] = "ok"
    except (StoreUnavailable, StoreError, OSError) as exc:
        answer["store"] = str(exc)
    return answer


_lambda_zygote: LambdaZygote | None = None


def handler(event: dict, context) -> dict:
    """The AWS Lambda entry point: ``transparent_mp.worker.handler``."""
    global _lambda_zygote
    if "probe" in event:
        return probe(event["probe"])
    if _lambda_zygote is None:
        from . import hook

        hook.install()  # no sitecustomize here: nested processes must be remote too
        _lambda_zygote = LambdaZygote()
    invocation = Invocation(**event)
    try:
        return _lambda_zygote.handle(invocation, context)
    except Exception:
        _lambda_zygote.report_failure(invocation, traceback.format_exc())
        raise  # a FunctionError in the function's logs too


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m transparent_mp.worker")
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int, required=True)
    args = parser.parse_args(argv)
    die_with_driver()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the children
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    zygote = LocalZygote(args.status_fd, args.lifeline_fd)
    control = sys.stdin.buffer
    while True:
        line = control.readline()
        if not line:
            return
        zygote.run(Invocation.from_json(line))


if __name__ == "__main__":
    main()
