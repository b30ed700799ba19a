"""Process start+join latency: transparent_mp against the stdlib's ``fork`` and ``spawn``.

What is measured, in one run of this script, is the wall time (``time.perf_counter``)
of ``p.start(); p.join()`` for a ``Process`` whose target is :func:`common.noop`, a
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
import multiprocessing
import os
import time
from typing import Any

import common

RESULT_MARKER = "PROCESS_LATENCY_RESULT "
HERE = os.path.abspath(__file__)
SUBPROCESS_TIMEOUT_S = 180.0


# -- the measured side (runs inside the subprocesses) --


def measure_stdlib(method: str, iterations: int) -> None:
    """Time ``iterations`` start+joins (after one warm-up) with a stdlib context."""
    common.check_hook(ours=False)
    ctx = multiprocessing.get_context(method)
    if ctx.Process.__module__ != "multiprocessing.context":
        raise SystemExit(f"not the stdlib's Process: {ctx.Process!r}")
    warmup = common.start_join(ctx.Process)
    samples = [common.start_join(ctx.Process) for _ in range(iterations)]
    common.emit_result(RESULT_MARKER, {"variant": f"stdlib-{method}", "warmup_s": warmup,
                                       "samples_s": samples})


def measure_ours(warm_iterations: int) -> None:
    """Time the first start+join of this driver (cold), then ``warm_iterations`` more."""
    from transparent_mp import process as tmp_process

    if multiprocessing.Process is not tmp_process.Process:
        common.refuse_wrong_side(ours=True)
    # Time the runtime's creation (embedded Redis start and ping) inside the cold
    # start+join, to tell it apart from the worker's start; the call is unchanged.
    with common.timing_runtime_start() as runtime_start:
        cold = common.start_join(multiprocessing.Process)
    warm = [common.start_join(multiprocessing.Process) for _ in range(warm_iterations)]
    common.emit_result(RESULT_MARKER, {
        "variant": "ours",
        "cold_s": cold,
        "cold_runtime_start_s": runtime_start[0] if runtime_start else None,
        "samples_s": warm,
    }, ours=True)


# -- the runner --


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed."""
    return common.run_measured(cmd, RESULT_MARKER, SUBPROCESS_TIMEOUT_S)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, one subprocess at a time; the whole result."""
    stdlib_cmd = common.measure_command(HERE, ours=False)
    ours_cmd = common.measure_command(HERE, ours=True)
    t0 = time.perf_counter()
    fork = _run([*stdlib_cmd, "--measure", "stdlib-fork",
                 "--iterations", str(args.fork_iterations)])
    spawn = _run([*stdlib_cmd, "--measure", "stdlib-spawn",
                  "--iterations", str(args.spawn_iterations)])
    ours_runs = [
        _run([*ours_cmd, "--measure", "ours", "--iterations", str(args.warm_iterations)])
        for _ in range(args.runs)
    ]
    wall = time.perf_counter() - t0

    variants = {
        "stdlib_fork": common.stats_ms(fork["samples_s"]),
        "stdlib_spawn": common.stats_ms(spawn["samples_s"]),
        "ours_warm": common.stats_ms([s for r in ours_runs for s in r["samples_s"]]),
        "ours_cold": common.stats_ms([r["cold_s"] for r in ours_runs]),
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
        "environment": common.environment(),
        "settings": {
            "fork_iterations": args.fork_iterations,
            "spawn_iterations": args.spawn_iterations,
            "ours_runs": args.runs,
            "warm_iterations_per_run": args.warm_iterations,
        },
        "variants": variants,
        "ratios": ratios,
        "ours_workers_started_per_run": [r.get("workers_started") for r in ours_runs],
        "ours_cold_runtime_start": common.stats_ms(runtime_starts) if runtime_starts else None,
        "stdlib_warmup_ms": {"fork": fork["warmup_s"] * 1000.0,
                             "spawn": spawn["warmup_s"] * 1000.0},
        "total_wall_s": wall,
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as a table of latencies and one of ratios, with notes."""
    env = result["environment"]
    s = result["settings"]
    labels = {
        "stdlib_fork": "stdlib fork",
        "stdlib_spawn": "stdlib spawn",
        "ours_warm": f"ours warm ({s['ours_runs']} drivers x {s['warm_iterations_per_run']})",
        "ours_cold": f"ours cold (first in {s['ours_runs']} fresh drivers)",
    }
    widths = (max(len(v) for v in labels.values()), 5, 10, 10, 10)
    out = [
        f"Process start+join latency, no-op target; {common.env_line(env)}",
        "",
        common.table_line(("variant", "n", "median ms", "p90 ms", "min ms"), widths),
    ]
    for key, label in labels.items():
        v = result["variants"][key]
        out.append(common.table_line(
            (label, str(v["n"]), *(f"{v[stat]:.2f}" for stat in ("median_ms", "p90_ms", "min_ms"))),
            widths))
    ratio_widths = (10, 14, 11, 15, 12)
    out += [
        "",
        "ratio = ours / stdlib (< 1: ours is faster; > 1: ours is slower)",
        common.table_line(("", "vs fork median", "vs fork p90", "vs spawn median",
                           "vs spawn p90"), ratio_widths),
    ]
    for ours in ("ours_warm", "ours_cold"):
        f = result["ratios"][f"{ours}/stdlib_fork"]
        sp = result["ratios"][f"{ours}/stdlib_spawn"]
        out.append(common.table_line(
            (ours.replace("_", " "), *(common.ratio(r[stat]) for r in (f, sp)
                                       for stat in ("median_ms", "p90_ms"))),
            ratio_widths))
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
    out += common.footer(result["ours_workers_started_per_run"], result["total_wall_s"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Process start+join latency: transparent_mp vs stdlib fork and spawn.")
    common.add_json_flag(parser)
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
        common.check_counts(parser, args, positive=("runs",))
        common.print_result(run_all(args), args.json, format_table)


if __name__ == "__main__":
    main()
