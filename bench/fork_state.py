"""The cost of fork semantics: Process start+join and Pool creation with 0, 10 and
100 MB of ``__main__`` state, transparent_mp against the stdlib's ``fork``.

With the ``fork`` start method, ours starts a Process from a *snapshot* of the
parent: each global of ``__main__`` and of the app's modules is pickled on its
own and named by the hash of its pickle, what the store lacks is uploaded, and
the child (on a warm worker interpreter) fetches what its worker has not seen
and rebuilds the modules. The stdlib's fork copies nothing but page tables. The
state here is ``STATE``, a global of ``__main__`` (this file) holding a numpy
array of ``os.urandom(size)`` bytes (MB = 10**6 bytes; an array, not ``bytes``,
since a mutable value must be pickled again at every start to learn whether it
changed, as most programs' state is), assigned in the measured process
before the clock starts, so that it is in the parent's memory before any fork;
"0 MB" means there is no such global. Every target is :func:`common.noop`. The
measured program takes ``multiprocessing.get_context("fork")`` through
:func:`common.fork_context`: the stdlib's in plain ``python``, ours under
``python -m transparent_mp``. For each state size, in the order given
(``--sizes-mb``), in the same driver:

1. **Process start+join** (``p.start(); p.join()``, the Process built outside the
   timed part, as in ``bench/process_latency.py``): one untimed start+join and
   one untimed Pool creation (as in 2) before the state is set (for ours, in the
   first size, that is the driver's cold start), then

   * *first*: ``STATE`` is set to fresh random bytes and one start+join is timed:
     for ours, the state is new content, so the driver pickles, hashes and
     uploads it and the child's worker fetches it. This is repeated
     ``--firsts`` times (``--large-firsts`` for 100 MB and more), each time
     with new bytes, so each is a first;
   * *following*: ``--iterations`` (``--large-iterations``) more timed
     start+joins with ``STATE`` unchanged: ours uploads nothing of it again and
     a worker interpreter that has seen it fetches nothing (it keeps the
     blobs), but the driver still pickles and hashes every global at each
     start, and each child still unpickles it.

   The median (and p90) of each. For ours, the bytes the driver sent to the
   store per start (``stats["bytes_up"]`` of its runtime: snapshot blobs,
   manifest, payload) are recorded too.
2. **Pool(2) creation to first result**: ``ctx.Pool(2)`` then
   ``pool.apply(common.noop)``, timed together, then ``terminate()`` and
   ``join()``, untimed; ``--pools`` (``--large-pools``) repetitions, median.
   The Pool takes one snapshot for its two workers. It comes after part 1 with
   the same ``STATE``, so for ours the state is already in the store (and in
   the cache of the worker interpreters that ran a child of part 1).

``STATE`` is then deleted before the next size. The table's ratio is ours /
stdlib of the figure: above 1 ours is slower.

Run it from the repository root (about half a minute on 2 cores with the defaults)::

    python bench/fork_state.py            # a table
    python bench/fork_state.py --json     # everything, samples included, as JSON

The same file is the measured program: the runner starts
``python bench/fork_state.py --measure stdlib`` and
``python -m transparent_mp bench/fork_state.py --measure ours``, one after the
other, each of which prints one JSON line of timings (prefixed with
``RESULT_MARKER``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import common
import numpy

RESULT_MARKER = "FORK_STATE_RESULT "
HERE = os.path.abspath(__file__)
SUBPROCESS_TIMEOUT_S = 400.0
MB = 10**6
WORKERS = 2
#: From this size of state (MB) on, the ``--large-*`` counts apply.
LARGE_MB = 100


# -- the measured side (runs inside the subprocesses) --


def set_state(nbytes: int) -> None:
    """Make ``STATE``, a global of ``__main__``, ``nbytes`` fresh random bytes; none if 0."""
    namespace = globals()
    namespace.pop("STATE", None)
    if nbytes:
        namespace["STATE"] = numpy.frombuffer(os.urandom(nbytes), dtype=numpy.uint8).copy()


def _bytes_up(ours: bool) -> int:
    """The bytes our driver has sent to the store so far (0 for the stdlib)."""
    if not ours:
        return 0
    from transparent_mp import runtime

    return runtime.current().stats["bytes_up"]


def _create_to_first_result(ctx: Any) -> float:
    """Seconds from ``Pool(2)`` to the return of its first ``apply`` (terminate untimed)."""
    t0 = time.perf_counter()
    pool = ctx.Pool(WORKERS)
    pool.apply(common.noop)
    elapsed = time.perf_counter() - t0
    pool.terminate()
    pool.join()
    return elapsed


def measure_size(ctx: Any, ours: bool, size_mb: int, counts: tuple[int, int, int]
                 ) -> dict[str, Any]:
    """Parts 1 and 2 with ``size_mb`` MB of ``STATE``; ``counts`` is (firsts, iterations,
    pools)."""
    firsts, iterations, pools = counts
    set_state(0)
    warmup = common.start_join(ctx.Process)
    pool_warmup = _create_to_first_result(ctx)
    first, first_up = [], []
    for _ in range(firsts):
        set_state(size_mb * MB)
        up = _bytes_up(ours)
        first.append(common.start_join(ctx.Process))
        first_up.append(_bytes_up(ours) - up)
    up = _bytes_up(ours)
    following = [common.start_join(ctx.Process) for _ in range(iterations)]
    following_up = (_bytes_up(ours) - up) / iterations
    pool = [_create_to_first_result(ctx) for _ in range(pools)]
    set_state(0)
    return {"size_mb": size_mb, "warmup_s": warmup, "pool_warmup_s": pool_warmup,
            "first_s": first, "following_s": following, "pool_s": pool,
            "first_bytes_up": first_up, "following_bytes_up_per_start": following_up}


def measure(ours: bool, args: argparse.Namespace) -> None:
    """Every size, in order, in this driver; one result line."""
    ctx = common.fork_context(ours)
    if sys.modules["__main__"].__dict__ is not globals():
        raise SystemExit("this file must run as __main__ (STATE must be a global of __main__)")
    t0 = time.perf_counter()
    sizes = [measure_size(ctx, ours, size, _counts(args, size)) for size in args.sizes_mb]
    common.emit_result(RESULT_MARKER, {"variant": "ours" if ours else "stdlib",
                                       "sizes": sizes,
                                       "measure_wall_s": time.perf_counter() - t0}, ours)


# -- the runner --


def _counts(args: argparse.Namespace, size_mb: int) -> tuple[int, int, int]:
    """(firsts, iterations, pools) for a state of ``size_mb`` MB."""
    if size_mb >= LARGE_MB:
        return args.large_firsts, args.large_iterations, args.large_pools
    return args.firsts, args.iterations, args.pools


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed."""
    return common.run_measured(cmd, RESULT_MARKER, SUBPROCESS_TIMEOUT_S)


#: Table rows: (label, samples key, statistic).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("Process start+join, first after STATE set, median", "first_s", "median_ms"),
    ("Process start+join, following, median", "following_s", "median_ms"),
    ("Process start+join, following, p90", "following_s", "p90_ms"),
    ("Pool(2) creation to first result, median", "pool_s", "median_ms"),
)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run both sides, one subprocess after the other; the whole result."""
    passed = ["--sizes-mb", ",".join(map(str, args.sizes_mb))]
    for name in ("firsts", "iterations", "pools", "large_firsts", "large_iterations",
                 "large_pools"):
        passed += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    t0 = time.perf_counter()
    runs = {variant: _run([*common.measure_command(HERE, ours=variant == "ours"),
                           "--measure", variant, *passed])
            for variant in ("stdlib", "ours")}
    wall = time.perf_counter() - t0

    stats = {variant: {str(s["size_mb"]): {key: common.stats_ms(s[key])
                                           for key in ("first_s", "following_s", "pool_s")}
                       for s in run["sizes"]}
             for variant, run in runs.items()}
    rows = []
    for label, key, stat in FIGURES:
        for size in args.sizes_mb:
            st = stats["stdlib"][str(size)][key]
            ours = stats["ours"][str(size)][key]
            rows.append({"benchmark": label, "state_mb": size, "figure": f"{key} {stat}",
                         "n": st["n"], "stdlib": st[stat], "ours": ours[stat],
                         "ratio": ours[stat] / st[stat]})
    uploads = {str(s["size_mb"]): {
        "first_mb_per_start": statistics.median(s["first_bytes_up"]) / MB,
        "following_kb_per_start": s["following_bytes_up_per_start"] / 1e3,
    } for s in runs["ours"]["sizes"]}
    return {
        "benchmark": "fork semantics: __main__ state size vs Process and Pool start",
        "ratio_meaning": "ours / stdlib of the figure (ms): > 1 means ours is slower",
        "environment": common.environment(with_git_revision=True),
        "settings": {
            "sizes_mb": args.sizes_mb, "mb": MB, "large_mb": LARGE_MB,
            "firsts": args.firsts, "iterations": args.iterations, "pools": args.pools,
            "large_firsts": args.large_firsts, "large_iterations": args.large_iterations,
            "large_pools": args.large_pools, "pool_workers": WORKERS,
            "stdlib_context": "fork",
        },
        "rows": rows,
        "ours_sent_to_store": uploads,
        "stats": stats,
        "runs": runs,
        "ours_workers_started": runs["ours"].get("workers_started"),
        "total_wall_s": wall,
    }


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def format_table(result: dict[str, Any]) -> str:
    """The result as a table of the rows, stdlib beside ours, with notes."""
    env = result["environment"]
    s = result["settings"]
    widths = (max(len(r["benchmark"]) for r in result["rows"]), 8, 4, 10, 10, 8)
    head = common.table_line(("benchmark (ms)", "state", "n", "stdlib", "ours", "ratio"), widths)
    out = [
        f"Fork semantics, __main__ state vs start: stdlib fork context vs transparent_mp; "
        f"{common.env_line(env)}",
        f"per size: 1 untimed start+join and Pool, then firsts {s['firsts']} / following "
        f"{s['iterations']} / Pool({s['pool_workers']}) creations {s['pools']} "
        f"({s['large_firsts']} / {s['large_iterations']} / {s['large_pools']} from "
        f"{s['large_mb']} MB); MB = 10**6 bytes of os.urandom in a numpy array STATE",
        "",
        head,
        "-" * len(head),
    ]
    previous = None
    for row in result["rows"]:
        if previous is not None and row["benchmark"] != previous:
            out.append("")
        previous = row["benchmark"]
        out.append(common.table_line(
            (row["benchmark"], f"{row['state_mb']} MB", str(row["n"]), _ms(row["stdlib"]),
             _ms(row["ours"]), common.ratio(row["ratio"])), widths))
    sent = ", ".join(f"{size} MB: {u['first_mb_per_start']:.1f} MB first, "
                     f"{u['following_kb_per_start']:.1f} kB following"
                     for size, u in result["ours_sent_to_store"].items())
    out += [
        "",
        "ratio = ours / stdlib (> 1: ours is slower; < 1: ours is faster)",
        f"ours sent to the store per start (median): {sent}",
        *common.footer(result["ours_workers_started"], result["total_wall_s"]),
    ]
    return "\n".join(out)


def _sizes(text: str) -> list[int]:
    """``--sizes-mb``: comma-separated non-negative whole MB."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of MB: {text!r}") from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"sizes must not be negative: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fork semantics: Process start+join and Pool creation with 0/10/100 MB "
                    "of __main__ state, transparent_mp vs stdlib fork.")
    common.add_json_flag(parser)
    parser.add_argument("--sizes-mb", type=_sizes, default=[0, 10, LARGE_MB],
                        help="sizes of STATE in MB, in the order measured "
                             f"(default: 0,10,{LARGE_MB})")
    parser.add_argument("--firsts", type=int, default=10,
                        help="first start+joins after a fresh STATE (default: 10)")
    parser.add_argument("--iterations", type=int, default=60,
                        help="following start+joins, STATE unchanged (default: 60)")
    parser.add_argument("--pools", type=int, default=10,
                        help="Pool(2) creations to first result (default: 10)")
    parser.add_argument("--large-firsts", type=int, default=5,
                        help=f"--firsts from {LARGE_MB} MB (default: 5)")
    parser.add_argument("--large-iterations", type=int, default=20,
                        help=f"--iterations from {LARGE_MB} MB (default: 20)")
    parser.add_argument("--large-pools", type=int, default=5,
                        help=f"--pools from {LARGE_MB} MB (default: 5)")
    parser.add_argument("--measure", choices=("stdlib", "ours"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common.check_counts(parser, args, positive=("firsts", "iterations", "pools", "large_firsts",
                                                "large_iterations", "large_pools"))

    if args.measure is not None:
        measure(args.measure == "ours", args)
    else:
        common.print_result(run_all(args), args.json, format_table)


if __name__ == "__main__":
    main()
