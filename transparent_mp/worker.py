"""What runs an invocation, on whichever backend.

:func:`execute` verifies and unpickles an invocation's payload and runs it; it
is the same code on every backend. :func:`main` is the local backend's worker
interpreter: a zygote that rebuilds the app's ``__main__`` once, then forks a
fresh child for each invocation, so every process starts from the same clean
state, as with the stdlib's forkserver, and its exit status is a real one.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing.util  # noqa: F401  (children use it; import it once, here)
import os
import signal
import sys
import traceback
from pathlib import Path

from . import runtime, spawn
from .backends.base import Invocation
from .serialize import PayloadRejected
from .store.resp import StoreError, StoreUnavailable
from .util import die_with_parent


def _complain(message: str) -> None:
    sys.stderr.write(f"transparent_mp worker: {message}\n")
    sys.stderr.flush()


def execute(invocation: Invocation, payload: bytes, parent_sentinel: int | None) -> int:
    """Run one invocation's payload in this process; its exit code."""
    rt = runtime.enter_worker(invocation)
    try:
        obj = rt.loads(payload)
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
    """The local worker's main loop: fetch, fork, report."""

    def __init__(self, status_fd: int, lifeline_fd: int) -> None:
        self.status = os.fdopen(status_fd, "w", buffering=1)
        self.lifeline = lifeline_fd
        self.code_dir = Path.cwd() / "code"
        self.code_dir.mkdir(exist_ok=True)
        self.loaded_preps: set[str] = set()

    def report(self, kind: str, inv_id: str, value: int) -> None:
        self.status.write(f"{kind} {inv_id} {value}\n")

    def fetch(self, invocation: Invocation) -> tuple[bytes | None, bytes | None]:
        conn = runtime.enter_worker(invocation).conn()
        need_prep = invocation.prep_key not in self.loaded_preps
        commands = [("GETDEL", invocation.payload_key)]
        if need_prep:
            commands.append(("GET", invocation.prep_key))
        results = conn.execute_many(commands)
        return results[0], (results[1] if need_prep else None)

    def run(self, invocation: Invocation) -> None:
        try:
            payload, prep = self.fetch(invocation)
        except (StoreUnavailable, StoreError, OSError) as exc:
            _complain(f"cannot fetch invocation {invocation.id} from the store: {exc}")
            self.report("E", invocation.id, 1)
            return
        if payload is None:
            _complain(f"the payload of invocation {invocation.id} is missing from the store")
            self.report("E", invocation.id, 1)
            return
        if invocation.prep_key not in self.loaded_preps:
            if prep is None:
                _complain(f"the preparation data of invocation {invocation.id} is missing")
                self.report("E", invocation.id, 1)
                return
            try:
                spawn.prepare(runtime.current().loads(prep), self.code_dir)
            except BaseException:
                # As a spawned child whose main module fails to import: exit 1.
                traceback.print_exc()
                sys.stderr.flush()
                self.report("E", invocation.id, 1)
                raise SystemExit(1) from None
            self.loaded_preps.add(invocation.prep_key)
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # children need not copy pages just to collect the zygote's objects
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.status.close()
                die_with_parent()
                signal.signal(signal.SIGINT, signal.default_int_handler)
                code = execute(invocation, payload, self.lifeline)
            finally:
                os._exit(code)
        self.report("S", invocation.id, pid)
        _, status = os.waitpid(pid, 0)
        self.report("E", invocation.id, os.waitstatus_to_exitcode(status))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m transparent_mp.worker")
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int, required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the children
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    zygote = Zygote(args.status_fd, args.lifeline_fd)
    control = sys.stdin.buffer
    while True:
        line = control.readline()
        if not line:
            return
        zygote.run(Invocation.from_json(line))


if __name__ == "__main__":
    main()
