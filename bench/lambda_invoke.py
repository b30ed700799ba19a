"""The lambda backend through the tests' Lambda emulator: Invoke throughput and
Process start+join latency, against the stdlib's ``fork`` and ``spawn``.

The set-up is that of ``tests/test_lambda.py``: the function zip that
``transparent_mp.deploy`` builds, a real redis-server on loopback
(``EmbeddedServer(tcp_port=0)``) as the store, and ``LambdaEmulator`` from
``tests/lambda_emulator.py``, which answers the real boto3 client's Invoke and
runs the function under the real ``awslambdaric`` in execution environments
(local processes) that it starts and reuses as Lambda does. Everything runs on
this machine: the environments share its CPUs with the driver, the store and the
emulator, which real Lambda's would not. The emulator is the tests' own, with
two additions made here by subclassing (:class:`TimedEmulator`): it notes when
each invocation was accepted, handed to the runtime and answered, and it can
hold its queue (see 1a). Every measured program is a subprocess, one at a time:
``python bench/lambda_invoke.py --measure stdlib-fork|stdlib-spawn`` (no hook)
and ``python -m transparent_mp bench/lambda_invoke.py --measure ours-...`` with
``TRANSPARENT_MP_BACKEND=lambda`` and the emulator's endpoint; each prints one
JSON line (prefixed with ``RESULT_MARKER``). Every target is :func:`common.noop`.

1. **Throughput**

   a. *Invoke send rate*: a driver with ``WORKERS`` = ``--processes`` (so its
      concurrency cap never holds a start back) starts ``--processes`` no-op
      Processes in a loop. ``start()`` returns once the payload is in the store
      and the invocation is queued to the backend's senders (a pool of 16
      threads making boto3 ``invoke(InvocationType="Event")`` calls); the rate
      is invocations / the time from the first ``start()`` to the emulator's
      acceptance of the last (its 202), read on the one ``CLOCK_MONOTONIC``
      both processes share. Meanwhile the emulator holds these invocations in
      its queue, so that no environment takes CPU from the driver (on Lambda
      they would run elsewhere); they run, and are joined untimed, once all are
      accepted. Before it, an untimed batch of ``2 x 16`` start+joins brings up
      the sender threads and their HTTP connections.
   b. *End to end*: a driver with ``WORKERS`` = ``--concurrency`` (default 8,
      the emulator's concurrency too) starts ``--processes`` no-op Processes,
      then joins them all; processes/s of the median of ``--repeats`` batches,
      after an untimed batch of ``2 x --concurrency`` that starts the
      environments (warm from then on). The stdlib does the same with
      ``--processes`` fork / ``--spawn-processes`` spawn Processes (built
      before the clock starts, as ours are), ``--repeats`` / 1 batches.

2. **Latency of one start+join** (``p.start(); p.join()``, the Process built
   outside the timed part), as ``bench/process_latency.py`` measures it for the
   local backend: *warm* is ``--iterations`` sequential ones in the driver of
   1b, after its batches; *cold* is the first one of a fresh driver against a
   fresh emulator (``--cold-runs`` of them), so it includes the environment's
   start (``awslambdaric``, the import of transparent_mp, the rebuild of this
   file as ``__main__``). Its driver's runtime (store connection, boto3 client,
   ``GetFunctionConfiguration``) is brought up before the clock starts and
   timed on its own. The stdlib: one untimed start+join, then
   ``--iterations`` timed ones, per context. The warm start+joins are also
   split into their phases, from the driver's and the emulator's timestamps.

Ratios are ours / stdlib of the figure shown: for processes/s below 1 means ours
is slower; for latencies above 1 means ours is slower.

Run it from the repository root (about a minute on 2 cores, half of it stdlib spawn)::

    python bench/lambda_invoke.py            # the tables
    python bench/lambda_invoke.py --json     # everything, samples included, as JSON
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

RESULT_MARKER = "LAMBDA_INVOKE_RESULT "
HERE = os.path.abspath(__file__)
ROOT = Path(HERE).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 300.0
#: The function's time limit in the emulator (seconds).
FUNCTION_TIMEOUT_S = 60.0
#: The lambda backend's sender threads (``aws_lambda.MAX_SENDERS``).
SENDERS = 16


# -- the measured side (runs inside the subprocesses) --


def _batch(process_class: Any, n: int) -> float:
    """Seconds to start ``n`` no-op Processes, then join them all."""
    procs = [process_class(target=common.noop) for _ in range(n)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    common.check_exitcodes(procs)
    return elapsed


def measure_stdlib(method: str, processes: int, repeats: int, iterations: int) -> None:
    """Batches of ``processes`` start-all-join-all, then sequential start+joins."""
    common.check_hook(ours=False)
    ctx = multiprocessing.get_context(method)
    if ctx.Process.__module__ != "multiprocessing.context":
        raise SystemExit(f"not the stdlib's Process: {ctx.Process!r}")
    warmup = common.start_join(ctx.Process)
    batches = [_batch(ctx.Process, processes) for _ in range(repeats)]
    samples = [common.start_join(ctx.Process) for _ in range(iterations)]
    common.emit_result(RESULT_MARKER, {"variant": f"stdlib-{method}", "warmup_s": warmup,
                                       "processes": processes, "batches_s": batches,
                                       "samples_s": samples})


def _ours_driver() -> float:
    """Check that this is ours on the lambda backend; bring its runtime up, in seconds."""
    from transparent_mp import process as tmp_process
    from transparent_mp import runtime

    if multiprocessing.Process is not tmp_process.Process:
        common.refuse_wrong_side(ours=True)
    t0 = time.perf_counter()
    backend = runtime.current().backend
    elapsed = time.perf_counter() - t0
    if backend.name != "lambda":
        raise SystemExit(f"the backend is {backend.name!r}, not 'lambda'")
    return elapsed


def _handle(p: Any) -> Any:
    """The lambda backend's handle of a started Process (its send and start times)."""
    return p._popen._handle


def _traced_start_join() -> dict[str, Any]:
    """One start+join, with the driver's monotonic timestamps of its steps."""
    p = multiprocessing.Process(target=common.noop)
    t0 = time.monotonic()
    p.start()
    started = time.monotonic()
    p.join()
    end = time.monotonic()
    common.check_exitcodes([p])
    h = _handle(p)
    return {"t0": t0, "start_returned": started, "sent": h.sent_at,
            "started_seen": h.started_at, "end": end, "request_id": h.request_id}


def measure_ours_warm(processes: int, repeats: int, iterations: int, warmup: int) -> None:
    """A warm-up batch, ``repeats`` timed batches, then ``iterations`` traced start+joins."""
    runtime_start = _ours_driver()
    warmup_s = _batch(multiprocessing.Process, warmup)
    batches = [_batch(multiprocessing.Process, processes) for _ in range(repeats)]
    traced = [_traced_start_join() for _ in range(iterations)]
    common.emit_result(RESULT_MARKER, {
        "variant": "ours-warm", "runtime_start_s": runtime_start, "warmup_batch_s": warmup_s,
        "processes": processes, "batches_s": batches, "traced": traced})


def measure_ours_send(processes: int, warmup: int) -> None:
    """A warm-up batch, then ``processes`` starts (timed by the runner), joined untimed."""
    _ours_driver()
    _batch(multiprocessing.Process, warmup)
    procs = [multiprocessing.Process(target=common.noop) for _ in range(processes)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    loop_end = time.monotonic()
    for p in procs:
        p.join()
    common.check_exitcodes(procs)
    handles = [_handle(p) for p in procs]
    common.emit_result(RESULT_MARKER, {
        "variant": "ours-send", "t0": t0, "start_loop_end": loop_end,
        "sent": [h.sent_at for h in handles], "request_ids": [h.request_id for h in handles]})


def measure_ours_cold() -> None:
    """The driver's runtime brought up (timed), then its first start+join, traced."""
    runtime_start = _ours_driver()
    t0 = time.perf_counter()
    traced = _traced_start_join()
    cold = time.perf_counter() - t0
    common.emit_result(RESULT_MARKER, {"variant": "ours-cold", "runtime_start_s": runtime_start,
                                       "cold_s": cold, "traced": traced})


# -- the runner --


def _emulator_class() -> Any:
    """:class:`TimedEmulator`, built on the tests' ``LambdaEmulator`` (imported from tests/)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from lambda_emulator import LambdaEmulator

    class TimedEmulator(LambdaEmulator):
        """The tests' emulator, noting when each invocation was accepted (the Invoke
        request read, before its 202), handed to the runtime and answered, and able
        to hold its queue for a window of invocations."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.accepted: dict[str, float] = {}
            self.finished: dict[str, dict[str, Any]] = {}
            self._held = (0, -1)  # Invoke counts during which nothing is dispatched

        def hold(self, after: int, count: int) -> None:
            """Dispatch nothing from the ``after + 1``-th accepted invocation on until
            the ``after + count``-th is accepted (then all go, in order)."""
            with self._cond:
                self._held = (after + 1, after + count - 1)

        def _submit(self, kind: str, payload: bytes, arn: str, client_context: str) -> Any:
            now = time.monotonic()
            inv = super()._submit(kind, payload, arn, client_context)
            if inv is not None:
                with self._cond:
                    self.accepted[inv.request_id] = now
            return inv

        def _dispatch(self) -> None:
            first, last = self._held
            if first <= self.stats.invokes <= last:
                return
            super()._dispatch()

        def _finish(self, inv: Any, outcome: str, body: bytes) -> None:
            self.finished[inv.request_id] = {
                "assigned": inv.assigned_at, "delivered": inv.delivered_at,
                "answered": time.monotonic(), "outcome": outcome,
                "init_s": inv.env.init_s if inv.cold else None}
            super()._finish(inv, outcome, body)

        def timings(self, request_id: str) -> dict[str, Any] | None:
            """What the emulator noted of one invocation (None if it never finished)."""
            with self._cond:
                done = self.finished.get(request_id)
                if done is None:
                    return None
                return {"accepted": self.accepted.get(request_id), **done}

    return TimedEmulator


def _driver_env(emu: Any, store_url: str, workers: int) -> dict[str, str]:
    """A lambda-backend driver's environment, pointed at ``emu`` and the store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSPARENT_MP_")}
    env.pop("PYTHONPATH", None)
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_EC2_METADATA_DISABLED": "true"})
    settings = {"BACKEND": "lambda", "REDIS_URL": store_url, "WORKERS": str(workers),
                "LAMBDA_ENDPOINT_URL": emu.endpoint_url, "AWS_REGION": "us-east-1"}
    env.update({f"TRANSPARENT_MP_{k}": v for k, v in settings.items()})
    return env


def _run_stdlib(args: list[str]) -> dict[str, Any]:
    """Run one stdlib measuring subprocess and return the result it printed."""
    cmd = [*common.measure_command(HERE, ours=False), *args]
    return common.run_measured(cmd, RESULT_MARKER, SUBPROCESS_TIMEOUT_S)


def _run_ours(emu: Any, store_url: str, workers: int, args: list[str]) -> dict[str, Any]:
    """Run one lambda-backend driver against ``emu`` and return the result it printed."""
    cmd = [*common.measure_command(HERE, ours=True), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
                          env=_driver_env(emu, store_url, workers), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit status {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}\n"
            f"--- function log (tail) ---\n{emu.logs()[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARKER):])


#: The phases of a traced start+join, in order: (name, from, to), the stamps
#: being the driver's (t0 ... end) and the emulator's (accepted, delivered).
PHASES = (
    ("driver start(): pickle, payload SET, queued to a sender", "t0", "start_returned"),
    ("boto3 invoke until the emulator has the request", "start_returned", "accepted"),
    ("emulator queue + awslambdaric's /next answered", "accepted", "delivered"),
    ("handler: payload GETDEL, fork, 'S' seen by the driver", "delivered", "started_seen"),
    ("child runs and exits, 'E' seen, join() returns", "started_seen", "end"),
)
#: Steps beside the chain: (name, from, to).
ASIDES = (
    ("202 back at the driver, from the emulator's acceptance", "accepted", "sent"),
    ("runtime handed the event -> handler's answer posted", "delivered", "answered"),
    ("join() returned -> handler's answer posted (< 0: before)", "end", "answered"),
)


def _merge(traced: dict[str, Any], emu: Any) -> dict[str, Any] | None:
    """A traced start+join with the emulator's stamps of the same invocation."""
    seen = emu.timings(traced["request_id"]) if traced.get("request_id") else None
    if seen is None or None in (traced.get("sent"), traced.get("started_seen"),
                                seen["accepted"], seen["delivered"]):
        return None
    return {**traced, **seen}


def _breakdown(stamps: list[dict[str, Any]]) -> dict[str, Any]:
    """Median ms of each phase and aside over ``stamps``."""
    def median_ms(a: str, b: str) -> float:
        return statistics.median((s[b] - s[a]) * 1000.0 for s in stamps)

    return {"n": len(stamps),
            "phases_ms": {name: median_ms(a, b) for name, a, b in PHASES},
            "asides_ms": {name: median_ms(a, b) for name, a, b in ASIDES},
            "total_ms": median_ms("t0", "end")}


def _rate(processes: int, batches_s: list[float]) -> dict[str, Any]:
    """Processes/s of the median batch, with the batch times."""
    median = statistics.median(batches_s)
    return {"processes": processes, "batches_s": batches_s, "median_batch_s": median,
            "per_s": processes / median}


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("boto3", "awslambdaric"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, one subprocess at a time; the whole result."""
    import sysconfig
    import tempfile

    from transparent_mp import deploy
    from transparent_mp.store.server import EmbeddedServer

    emulator_class = _emulator_class()
    layers = [Path(sysconfig.get_paths()["purelib"])]  # the app's dependencies, as a layer
    n, conc = args.processes, args.concurrency
    t_begin = time.perf_counter()
    fork = _run_stdlib(["--measure", "stdlib-fork", "--processes", str(n),
                        "--repeats", str(args.repeats), "--iterations", str(args.iterations)])
    spawn = _run_stdlib(["--measure", "stdlib-spawn", "--processes", str(args.spawn_processes),
                         "--repeats", "1", "--iterations", str(args.iterations)])
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as tmp:
        package = Path(tmp) / "function.zip"
        package.write_bytes(deploy.build().data)
        server = EmbeddedServer(tcp_port=0)
        try:
            store_url = server.tcp_url
            with emulator_class(package, concurrency=conc, timeout=FUNCTION_TIMEOUT_S,
                                layers=layers) as emu:
                warm = _run_ours(emu, store_url, conc, [
                    "--measure", "ours-warm", "--processes", str(n),
                    "--repeats", str(args.repeats), "--iterations", str(args.iterations),
                    "--warmup", str(2 * conc)])
                warm_stamps = [m for t in warm["traced"] if (m := _merge(t, emu)) is not None]
                send_warmup = 2 * SENDERS
                emu.hold(after=emu.stats.invokes + send_warmup, count=n)
                send = _run_ours(emu, store_url, n, [
                    "--measure", "ours-send", "--processes", str(n),
                    "--warmup", str(send_warmup)])
                accepted = [emu.accepted.get(rid) for rid in send["request_ids"]]
                delivered = [(emu.timings(rid) or {}).get("delivered")
                             for rid in send["request_ids"]]
                warm_emulator = {"environments_started": emu.stats.cold_starts,
                                 "max_concurrent": emu.stats.max_concurrent,
                                 "invokes": emu.stats.invokes,
                                 "outcomes_not_success": emu.stats.completed
                                 - emu.stats.successes}
            colds: list[dict[str, Any]] = []
            for _ in range(args.cold_runs):
                with emulator_class(package, concurrency=1, timeout=FUNCTION_TIMEOUT_S,
                                    layers=layers) as emu:
                    cold = _run_ours(emu, store_url, conc, ["--measure", "ours-cold"])
                    cold["stamps"] = _merge(cold["traced"], emu)
                    colds.append(cold)
        finally:
            server.stop()
    wall = time.perf_counter() - t_begin

    if None in accepted or None in delivered or None in send["sent"]:
        raise RuntimeError("the emulator or the driver lost track of some invocations")
    t0 = send["t0"]
    send_rate = {
        "processes": n,
        "accepted_per_s": n / (max(accepted) - t0),
        "acked_at_driver_per_s": n / (max(send["sent"]) - t0),
        "start_loop_per_s": n / (send["start_loop_end"] - t0),
        "last_accepted_after_s": max(accepted) - t0,
        # >= 0 if the emulator's queue held them all until the last was accepted
        "first_run_after_last_accepted_s": min(delivered) - max(accepted),
    }
    throughput = {
        "stdlib_fork": _rate(n, fork["batches_s"]),
        "stdlib_spawn": _rate(args.spawn_processes, spawn["batches_s"]),
        "ours": _rate(n, warm["batches_s"]),
    }
    latency = {
        "stdlib_fork": common.stats_ms(fork["samples_s"]),
        "stdlib_spawn": common.stats_ms(spawn["samples_s"]),
        "ours_warm": common.stats_ms([s["end"] - s["t0"] for s in warm["traced"]]),
        "ours_cold": common.stats_ms([c["cold_s"] for c in colds]),
    }
    ratios: dict[str, dict[str, float]] = {}
    for base in ("stdlib_fork", "stdlib_spawn"):
        ratios[f"throughput ours/{base}"] = {
            "per_s": throughput["ours"]["per_s"] / throughput[base]["per_s"]}
        for ours in ("ours_warm", "ours_cold"):
            ratios[f"{ours}/{base}"] = {stat: latency[ours][stat] / latency[base][stat]
                                        for stat in ("median_ms", "p90_ms")}
    cold_stamps = [c["stamps"] for c in colds if c["stamps"] is not None]
    inits = [s["init_s"] for s in cold_stamps if s.get("init_s") is not None]
    return {
        "benchmark": "lambda backend through the Lambda emulator: invoke throughput and "
                     "start+join latency",
        "ratio_meaning": "ours / stdlib of the figure shown: processes/s < 1 means ours is "
                         "slower; latency > 1 means ours is slower",
        "environment": {**common.environment(with_git_revision=True), **_versions()},
        "settings": {"processes": n, "spawn_processes": args.spawn_processes,
                     "repeats": args.repeats, "iterations": args.iterations,
                     "concurrency": conc, "cold_runs": args.cold_runs,
                     "send_warmup": 2 * SENDERS, "warm_warmup": 2 * conc},
        "send_rate": send_rate,
        "throughput": throughput,
        "latency": latency,
        "ratios": ratios,
        "warm_breakdown": _breakdown(warm_stamps) if warm_stamps else None,
        "cold_breakdown": _breakdown(cold_stamps) if cold_stamps else None,
        "cold_environment_init": common.stats_ms(inits) if inits else None,
        "cold_driver_runtime_start": common.stats_ms([c["runtime_start_s"] for c in colds]),
        "warm_emulator": warm_emulator,
        "stdlib_warmup_ms": {"fork": fork["warmup_s"] * 1000.0,
                             "spawn": spawn["warmup_s"] * 1000.0},
        "total_wall_s": wall,
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as tables of throughput, latency, ratios and phases, with notes."""
    env = result["environment"]
    s = result["settings"]
    tp, lat, sr = result["throughput"], result["latency"], result["send_rate"]
    out = [
        "lambda backend via the Lambda emulator, no-op targets; " + common.env_line(env),
        f"boto3 {env.get('boto3')}, awslambdaric {env.get('awslambdaric')}; emulator "
        f"concurrency {s['concurrency']} (= WORKERS) unless said otherwise",
        "",
        f"1a. Invoke send rate: {sr['processes']} starts, WORKERS={sr['processes']}, "
        "the emulator's queue held until all are accepted",
        f"    (the last accepted {sr['last_accepted_after_s']:.3f} s after the first start(); "
        f"the first ran {sr['first_run_after_last_accepted_s'] * 1000:.1f} ms after that)",
    ]
    widths = (44, 12)
    out.append(common.table_line(("", "invokes/s"), widths))
    for label, key in (("start() loop returned", "start_loop_per_s"),
                       ("accepted by the emulator (202 sent)", "accepted_per_s"),
                       ("202 received by the driver", "acked_at_driver_per_s")):
        out.append(common.table_line((label, f"{sr[key]:.1f}"), widths))
    labels = {"stdlib_fork": "stdlib fork", "stdlib_spawn": "stdlib spawn",
              "ours": f"ours, {s['concurrency']} warm environments"}
    widths = (36, 6, 9, 13, 12, 13)
    out += [
        "",
        "1b. start all, then join all (median batch)",
        common.table_line(("variant", "n", "batches", "median s", "processes/s",
                           "ours / row"), widths),
    ]
    for key, label in labels.items():
        v = tp[key]
        rel = ("" if key == "ours"
               else common.ratio(result["ratios"][f"throughput ours/{key}"]["per_s"]))
        out.append(common.table_line((label, str(v["processes"]), str(len(v["batches_s"])),
                                      f"{v['median_batch_s']:.3f}", f"{v['per_s']:.1f}", rel),
                                     widths))
    labels = {"stdlib_fork": "stdlib fork", "stdlib_spawn": "stdlib spawn",
              "ours_warm": "ours warm (sequential, 1 driver)",
              "ours_cold": f"ours cold (first in {s['cold_runs']} fresh emulators)"}
    widths = (max(len(v) for v in labels.values()), 5, 10, 10, 10)
    out += ["", "2. one start+join",
            common.table_line(("variant", "n", "median ms", "p90 ms", "min ms"), widths)]
    for key, label in labels.items():
        v = lat[key]
        out.append(common.table_line(
            (label, str(v["n"]), *(f"{v[k]:.2f}" for k in ("median_ms", "p90_ms", "min_ms"))),
            widths))
    ratio_widths = (10, 14, 11, 15, 12)
    out += ["", "ratio = ours / stdlib (< 1: ours is faster; > 1: ours is slower)",
            common.table_line(("", "vs fork median", "vs fork p90", "vs spawn median",
                               "vs spawn p90"), ratio_widths)]
    for ours in ("ours_warm", "ours_cold"):
        f = result["ratios"][f"{ours}/stdlib_fork"]
        sp = result["ratios"][f"{ours}/stdlib_spawn"]
        out.append(common.table_line(
            (ours.replace("_", " "), *(common.ratio(r[k]) for r in (f, sp)
                                       for k in ("median_ms", "p90_ms"))), ratio_widths))
    for title, key in (("where a warm start+join's time goes", "warm_breakdown"),
                       ("where the cold start+join's time goes", "cold_breakdown")):
        b = result[key]
        if b is None:
            continue
        widths = (64, 10)
        out += ["", f"{title} (median ms of {b['n']}; driver and emulator clocks are one)"]
        out += [common.table_line((name, f"{ms:.2f}"), widths)
                for name, ms in b["phases_ms"].items()]
        out.append(common.table_line(("start+join (its own median; phases' sum: "
                                      f"{sum(b['phases_ms'].values()):.2f})",
                                      f"{b['total_ms']:.2f}"), widths))
        out += [common.table_line(("  aside: " + name, f"{ms:.2f}"), widths)
                for name, ms in b["asides_ms"].items()]
    init, rs = result["cold_environment_init"], result["cold_driver_runtime_start"]
    if init is not None:
        out.append(f"of cold, the environment's init (runtime start to its first /next): "
                   f"median {init['median_ms']:.1f} ms")
    out.append(f"not in cold: the driver's runtime start (store, boto3 client, "
               f"GetFunctionConfiguration), median {rs['median_ms']:.1f} ms")
    we = result["warm_emulator"]
    out += ["", f"warm emulator: {we['environments_started']} environments started, at most "
                f"{we['max_concurrent']} busy at once, {we['invokes']} invokes, "
                f"{we['outcomes_not_success']} not successful; "
                f"total wall time {result['total_wall_s']:.1f} s"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="The lambda backend through the tests' Lambda emulator: invoke throughput "
                    "and start+join latency vs stdlib fork and spawn.")
    common.add_json_flag(parser)
    parser.add_argument("--processes", type=int, default=200,
                        help="processes per batch, ours and stdlib fork (default: 200)")
    parser.add_argument("--spawn-processes", type=int, default=200,
                        help="processes in the one stdlib spawn batch (default: 200)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed batches, ours and stdlib fork (default: 3)")
    parser.add_argument("--iterations", type=int, default=30,
                        help="sequential timed start+joins per variant (default: 30)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="the emulator's concurrency and the driver's WORKERS in 1b and 2 "
                             "(default: 8)")
    parser.add_argument("--cold-runs", type=int, default=3,
                        help="fresh emulators, one cold start+join each (default: 3)")
    parser.add_argument("--measure", choices=("stdlib-fork", "stdlib-spawn", "ours-warm",
                                              "ours-send", "ours-cold"), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure == "ours-warm":
        measure_ours_warm(args.processes, args.repeats, args.iterations, args.warmup)
    elif args.measure == "ours-send":
        measure_ours_send(args.processes, args.warmup)
    elif args.measure == "ours-cold":
        measure_ours_cold()
    elif args.measure is not None:
        measure_stdlib(args.measure.removeprefix("stdlib-"), args.processes, args.repeats,
                       args.iterations)
    else:
        common.check_counts(parser, args, positive=("processes", "spawn_processes", "repeats",
                                                    "iterations", "concurrency", "cold_runs"))
        common.print_result(run_all(args), args.json, format_table)


if __name__ == "__main__":
    main()
