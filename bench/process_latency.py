"""Process start+join latency: transparent_mp against the stdlib's ``fork`` and ``spawn``.

What is measured, in one run of this script, is the wall time (``time.perf_counter``)
of ``p.start(); p.join()`` for a ``Process`` whose target is :func:`noop`, a
module-level function of this file, so that ``__main__`` is pickled by reference
(the stdlib's ``spawn`` re-imports this file in each child; transparent_mp's
workers rebuild it once). The ``Process`` object is built outside the timed part.

* **stdlib fork** / **stdlib spawn**: ``multiprocessing.get_context("fork")`` /
  ``("spawn")`` in a plain ``python`` subprocess (no hook). One untimed warm-up
  start+join, then ``--fork-iterations`` / ``--spawn-iterations`` timed ones.
* **ours cold**: the *first* start+join of a fresh ``python -m transparent_mp``
  driver. Everything the first process of a program pays is in it: the embedded
  Redis server is started (the runtime is created lazily, on first use), a
  worker interpreter is started and imports transparent_mp, rebuilds ``__main__``
  from this file, then forks the child. One sample per driver, ``--runs``
  drivers. The driver's own interpreter start-up is *not* included (nor is the
  stdlib's, for fork and spawn). The runtime's creation is also timed on its own
  (by wrapping ``transparent_mp.runtime._start_driver``) to show how much of the
  cold start is the embedded Redis and how much the worker.
* **ours warm**: the start+joins after the first in the same driver
  (``--warm-iterations`` per driver, pooled over the ``--runs`` drivers): the
  worker is already up and idle, so each one is a payload put in Redis, a line
  to the worker, a fork of the zygote and the exit status back.

Ratios are ours / stdlib, of the medians and of the p90s: below 1 ours is faster,
above 1 ours is slower. All subprocesses run one after another, never at once.

Run it from the repository root (takes well under a minute on 2 cores)::

    python bench/process_latency.py            # a table
    python bench/process_latency.py --json     # everything, samples included, as JSON

The same file is the measured program: the runner starts
``python bench/process_latency.py --measure stdlib-fork|stdlib-spawn`` and
``python -m transparent_mp bench/process_latency.py --measure ours``, each of
which prints one JSON line of timings (prefixed with ``RESULT_MARKER``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

RESULT_MARKER = "PROCESS_LATENCY_RESULT "
HERE = os.path.abspath(__file__)
SUBPROCESS_TIMEOUT_S = 180.0


def noop() -> None:
    """The target of every measured Process."""


# -- the measured side (runs inside the subprocesses) --


def _start_join(process_class: Any) -> float:
    """Seconds for one ``start()`` + ``join()`` of a no-op Process."""
    p = process_class(target=noop)
    t0 = time.perf_counter()
    p.start()
    p.join()
    elapsed = time.perf_counter() - t0
    if p.exitcode != 0:
        raise RuntimeError(f"the measured process exited with {p.exitcode}")
    return elapsed


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def measure_stdlib(method: str, iterations: int) -> None:
    """Time ``iterations`` start+joins (after one warm-up) with a stdlib context."""
    hook = sys.modules.get("transparent_mp.hook")
    if hook is not None and hook.is_installed():
        raise SystemExit("stdlib measurement must run in plain python, without the hook")
    ctx = multiprocessing.get_context(method)
    if ctx.Process.__module__ != "multiprocessing.context":
        raise SystemExit(f"not the stdlib's Process: {ctx.Process!r}")
    warmup = _start_join(ctx.Process)
    samples = [_start_join(ctx.Process) for _ in range(iterations)]
    _emit({"variant": f"stdlib-{method}", "warmup_s": warmup, "samples_s": samples})


def measure_ours(warm_iterations: int) -> None:
    """Time the first start+join of this driver (cold), then ``warm_iterations`` more."""
    from transparent_mp import process as tmp_process

    if multiprocessing.Process is not tmp_process.Process:
        raise SystemExit("run the 'ours' measurement as: python -m transparent_mp "
                         f"{sys.argv[0]} --measure ours")
    from transparent_mp import runtime

    if runtime._current is not None:
        raise SystemExit("the transparent_mp runtime is already up: this is not a cold start")
    # Time the runtime's creation (embedded Redis start and ping) inside the cold
    # start+join, to tell it apart from the worker's start; the call is unchanged.
    runtime_start: list[float] = []
    start_driver = runtime._start_driver

    def timed_start_driver() -> Any:
        t0 = time.perf_counter()
        try:
            return start_driver()
        finally:
            runtime_start.append(time.perf_counter() - t0)

    runtime._start_driver = timed_start_driver
    try:
        cold = _start_join(multiprocessing.Process)
    finally:
        runtime._start_driver = start_driver
    warm = [_start_join(multiprocessing.Process) for _ in range(warm_iterations)]
    backend = runtime.current().backend
    _emit({
        "variant": "ours",
        "cold_s": cold,
        "cold_runtime_start_s": runtime_start[0] if runtime_start else None,
        "samples_s": warm,
        "workers_started": getattr(backend, "workers_started", None),
    })


# -- the runner --


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit status {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return json.loads(lines[-1][len(RESULT_MARKER):])


def _stats_ms(samples_s: list[float]) -> dict[str, Any]:
    ms = [s * 1000.0 for s in samples_s]
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) >= 2 else ms[0]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": p90,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "samples_ms": ms,
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, one subprocess at a time; the whole result."""
    py = sys.executable
    t0 = time.perf_counter()
    fork = _run([py, HERE, "--measure", "stdlib-fork",
                 "--iterations", str(args.fork_iterations)])
    spawn = _run([py, HERE, "--measure", "stdlib-spawn",
                  "--iterations", str(args.spawn_iterations)])
    ours_runs = [
        _run([py, "-m", "transparent_mp", HERE, "--measure", "ours",
              "--iterations", str(args.warm_iterations)])
        for _ in range(args.runs)
    ]
    wall = time.perf_counter() - t0

    variants = {
        "stdlib_fork": _stats_ms(fork["samples_s"]),
        "stdlib_spawn": _stats_ms(spawn["samples_s"]),
        "ours_warm": _stats_ms([s for r in ours_runs for s in r["samples_s"]]),
        "ours_cold": _stats_ms([r["cold_s"] for r in ours_runs]),
    }
    runtime_starts = [r["cold_runtime_start_s"] for r in ours_runs
                      if r.get("cold_runtime_start_s") is not None]
    ratios: dict[str, dict[str, float]] = {}
    for ours in ("ours_warm", "ours_cold"):
        for base in ("stdlib_fork", "stdlib_spawn"):
            ratios[f"{ours}/{base}"] = {
                stat: variants[ours][stat] / variants[base][stat]
                for stat in ("median_ms", "p90_ms")
            }
    return {
        "benchmark": "process start+join latency",
        "ratio_meaning": "ours / stdlib: < 1 means ours is faster, > 1 means ours is slower",
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "settings": {
            "fork_iterations": args.fork_iterations,
            "spawn_iterations": args.spawn_iterations,
            "ours_runs": args.runs,
            "warm_iterations_per_run": args.warm_iterations,
        },
        "variants": variants,
        "ratios": ratios,
        "ours_workers_started_per_run": [r.get("workers_started") for r in ours_runs],
        "ours_cold_runtime_start": _stats_ms(runtime_starts) if runtime_starts else None,
        "stdlib_warmup_ms": {"fork": fork["warmup_s"] * 1000.0,
                             "spawn": spawn["warmup_s"] * 1000.0},
        "total_wall_s": wall,
    }


def format_table(result: dict[str, Any]) -> str:
    env = result["environment"]
    s = result["settings"]
    labels = {
        "stdlib_fork": "stdlib fork",
        "stdlib_spawn": "stdlib spawn",
        "ours_warm": f"ours warm ({s['ours_runs']} drivers x {s['warm_iterations_per_run']})",
        "ours_cold": f"ours cold (first in {s['ours_runs']} fresh drivers)",
    }
    width = max(len(v) for v in labels.values())
    out = [
        f"Process start+join latency, no-op target; python {env['python']}, "
        f"{env['cpu_count']} CPUs, {env['platform']}",
        "",
        f"{'variant':<{width}}  {'n':>5}  {'median ms':>10}  {'p90 ms':>10}  {'min ms':>10}",
    ]
    for key, label in labels.items():
        v = result["variants"][key]
        out.append(f"{label:<{width}}  {v['n']:>5}  {v['median_ms']:>10.2f}  "
                   f"{v['p90_ms']:>10.2f}  {v['min_ms']:>10.2f}")
    out += [
        "",
        "ratio = ours / stdlib (< 1: ours is faster; > 1: ours is slower)",
        f"{'':<10}  {'vs fork median':>14}  {'vs fork p90':>11}  "
        f"{'vs spawn median':>15}  {'vs spawn p90':>12}",
    ]
    for ours in ("ours_warm", "ours_cold"):
        f = result["ratios"][f"{ours}/stdlib_fork"]
        sp = result["ratios"][f"{ours}/stdlib_spawn"]
        out.append(f"{ours.replace('_', ' '):<10}  {f['median_ms']:>13.2f}x  "
                   f"{f['p90_ms']:>10.2f}x  {sp['median_ms']:>14.2f}x  {sp['p90_ms']:>11.2f}x")
    rs = result["ours_cold_runtime_start"]
    if rs is not None:
        cold = result["variants"]["ours_cold"]["median_ms"]
        out += [
            "",
            f"of ours cold, the runtime start (embedded Redis) took median {rs['median_ms']:.2f} ms"
            f" (p90 {rs['p90_ms']:.2f});",
            f"the rest, ~{cold - rs['median_ms']:.0f} ms, is the worker interpreter's start,"
            " its rebuild of __main__ and the first invocation itself",
        ]
    out += [
        "",
        f"workers started per ours driver: {result['ours_workers_started_per_run']}; "
        f"total wall time {result['total_wall_s']:.1f} s",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Process start+join latency: transparent_mp vs stdlib fork and spawn.")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--runs", type=int, default=5,
                        help="fresh transparent_mp drivers, one cold sample each (default: 5)")
    parser.add_argument("--warm-iterations", type=int, default=40,
                        help="warm start+joins per driver, after the first (default: 40, "
                             "so 200 pooled with --runs 5)")
    parser.add_argument("--fork-iterations", type=int, default=200,
                        help="timed stdlib fork start+joins (default: 200)")
    parser.add_argument("--spawn-iterations", type=int, default=50,
                        help="timed stdlib spawn start+joins (default: 50)")
    parser.add_argument("--measure", choices=("stdlib-fork", "stdlib-spawn", "ours"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure == "ours":
        measure_ours(args.iterations)
    elif args.measure is not None:
        measure_stdlib(args.measure.removeprefix("stdlib-"), args.iterations)
    else:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        result = run_all(args)
        print(json.dumps(result, indent=2) if args.json else format_table(result))


if __name__ == "__main__":
    main()
