"""Primitive latency and throughput: transparent_mp against the stdlib's ``fork`` context.

Five measurements, made in one run of this script for both sides, with the same
code: the measured program takes ``multiprocessing.get_context("fork")`` and
builds every object from it; in plain ``python`` that is the stdlib's fork
context, under ``python -m transparent_mp`` the import hook makes it the remote
one (Queue and Pipe over Redis lists, Lock and Value in the store, the worker
Process on a warm local worker). All clocks are ``time.perf_counter``; object
creation and the worker's start are outside every timed part.

1. **Queue ping-pong**: the driver does ``q1.put(i)`` then ``q2.get()``; one
   worker Process does ``q2.put(q1.get())``. Round-trip time of each of
   ``--round-trips`` iterations after ``--warmup`` untimed ones (the first of
   which also waits for the worker to be up); median and p90 in µs.
2. **Pipe round trip**: the same over one duplex ``Pipe()``: the driver
   ``send(i)`` then ``recv()``, the worker ``send(recv())``; median and p90 µs.
3. **Lock acquire+release** in the driver, uncontended: ``--batch`` pairs are
   timed together, ``--batches`` times (after one untimed batch); the result is
   the median over batches of the time per pair, in µs.
4. **Value increment**: ``with v.get_lock(): v.value += 1`` on a ``Value("i")``,
   batched like the lock; median µs per increment (the final value is checked).
5. **send_bytes throughput**: the driver ``send_bytes`` a 10 MB (10**7 bytes)
   buffer on a Pipe; the worker ``recv_bytes()`` and replies with the length it
   got (a tiny ``send``). Each of ``--transfers`` timed transfers (after
   ``--bytes-warmup`` untimed ones) is timed from ``send_bytes`` to the reply
   and gives one MB/s figure (MB = 10**6 bytes); the median is reported.

Ratios are ours / stdlib *of times*: above 1 ours is slower, below 1 ours is
faster. For the throughput row that is stdlib MB/s divided by ours MB/s, so the
meaning is the same. The aim stated in the issue is a Queue ping-pong median
under 150 µs; the table says whether ours meets it.

Run it from the repository root (about 15 s on 2 cores with the defaults)::

    python bench/primitives.py              # a table
    python bench/primitives.py --json       # everything, samples included, as JSON
    python bench/primitives.py --runs 3     # pool 3 stdlib+ours pairs of subprocesses

The same file is the measured program: the runner starts
``python bench/primitives.py --measure stdlib`` and
``python -m transparent_mp bench/primitives.py --measure ours`` (one after the
other, never at once; with ``--runs N``, N such pairs, alternating), each of
which runs all five measurements and prints one JSON line (prefixed with
``RESULT_MARKER``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import common

RESULT_MARKER = "PRIMITIVES_RESULT "
HERE = os.path.abspath(__file__)
SUBPROCESS_TIMEOUT_S = 300.0
BYTES_SIZE = 10_000_000
#: The issue's aim for ours: Queue ping-pong median under this many µs.
QUEUE_AIM_US = 150.0


# -- the worker Processes' targets (module-level, so they travel by reference) --


def queue_echo(q_in: Any, q_out: Any) -> None:
    """Put back every item taken from ``q_in``, until a None."""
    while True:
        x = q_in.get()
        if x is None:
            return
        q_out.put(x)


def pipe_echo(conn: Any) -> None:
    """Send back every object received on ``conn``, until a None."""
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


def bytes_sink(conn: Any, transfers: int) -> None:
    """Receive ``transfers`` byte messages, answering each with its length."""
    for _ in range(transfers):
        data = conn.recv_bytes()
        conn.send(len(data))


# -- the measured side (runs inside the subprocesses) --


def _join(p: Any) -> None:
    p.join(60)
    if p.exitcode != 0:
        raise RuntimeError(f"the worker Process exited with {p.exitcode}")


def _echo_round_trips(p: Any, send: Callable[[Any], Any], recv: Callable[[], Any],
                      warmup: int, round_trips: int, echo: str) -> list[float]:
    """Seconds per ``send(i)`` + ``recv()`` through the echo Process ``p``.

    ``p`` is started first; ``warmup`` untimed round trips come before the timed
    ones, and a ``send(None)`` then stops ``p``, which is joined.
    """
    p.start()
    samples: list[float] = []
    clock = time.perf_counter
    for i in range(warmup + round_trips):
        t0 = clock()
        send(i)
        x = recv()
        dt = clock() - t0
        if x != i:
            raise RuntimeError(f"{echo} returned {x!r}, expected {i!r}")
        if i >= warmup:
            samples.append(dt)
    send(None)
    _join(p)
    return samples


def bench_queue(ctx: Any, warmup: int, round_trips: int) -> list[float]:
    """Seconds per Queue round trip through one worker Process."""
    q1, q2 = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=queue_echo, args=(q1, q2))
    return _echo_round_trips(p, q1.put, q2.get, warmup, round_trips, "queue echo")


def bench_pipe(ctx: Any, warmup: int, round_trips: int) -> list[float]:
    """Seconds per Pipe round trip through one worker Process."""
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=pipe_echo, args=(theirs,))
    return _echo_round_trips(p, mine.send, mine.recv, warmup, round_trips, "pipe echo")


def bench_lock(ctx: Any, batch: int, batches: int) -> list[float]:
    """Seconds per uncontended acquire+release pair, one figure per batch."""
    lock = ctx.Lock()
    per_pair: list[float] = []
    clock = time.perf_counter
    for b in range(batches + 1):  # the first batch is a warm-up
        t0 = clock()
        for _ in range(batch):
            lock.acquire()
            lock.release()
        dt = clock() - t0
        if b:
            per_pair.append(dt / batch)
    return per_pair


def bench_value(ctx: Any, batch: int, batches: int) -> list[float]:
    """Seconds per ``v.value += 1`` under ``v.get_lock()``, one figure per batch."""
    v = ctx.Value("i", 0)
    per_op: list[float] = []
    clock = time.perf_counter
    for b in range(batches + 1):  # the first batch is a warm-up
        t0 = clock()
        for _ in range(batch):
            with v.get_lock():
                v.value += 1
        dt = clock() - t0
        if b:
            per_op.append(dt / batch)
    expected = batch * (batches + 1)
    if v.value != expected:
        raise RuntimeError(f"Value ended at {v.value}, expected {expected}")
    return per_op


def bench_send_bytes(ctx: Any, warmup: int, transfers: int) -> list[float]:
    """Seconds per ``send_bytes`` of ``BYTES_SIZE`` bytes until the worker's ack."""
    payload = os.urandom(BYTES_SIZE)
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=bytes_sink, args=(theirs, warmup + transfers))
    p.start()
    samples: list[float] = []
    clock = time.perf_counter
    for i in range(warmup + transfers):
        t0 = clock()
        mine.send_bytes(payload)
        n = mine.recv()
        dt = clock() - t0
        if n != BYTES_SIZE:
            raise RuntimeError(f"the worker received {n} bytes, expected {BYTES_SIZE}")
        if i >= warmup:
            samples.append(dt)
    _join(p)
    return samples


def measure(variant: str, args: argparse.Namespace) -> None:
    """Run the five measurements in this interpreter and print one result line."""
    ours = variant == "ours"
    ctx = common.fork_context(ours)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "variant": variant,
        "queue_s": bench_queue(ctx, args.warmup, args.round_trips),
        "pipe_s": bench_pipe(ctx, args.warmup, args.round_trips),
        "lock_pair_s": bench_lock(ctx, args.batch, args.batches),
        "value_op_s": bench_value(ctx, args.batch, args.batches),
        "send_bytes_s": bench_send_bytes(ctx, args.bytes_warmup, args.transfers),
    }
    result["measure_wall_s"] = time.perf_counter() - t0
    common.emit_result(RESULT_MARKER, result, ours)


# -- the runner --


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed."""
    return common.run_measured(cmd, RESULT_MARKER, SUBPROCESS_TIMEOUT_S)


def _latency_us(samples_s: list[float]) -> dict[str, Any]:
    """n, median, p90, min and max of ``samples_s`` (and the samples), in µs."""
    return common.latency_stats(samples_s, 1e6, "us")


def _throughput(samples_s: list[float]) -> dict[str, Any]:
    """n, median, min and max MB/s of ``BYTES_SIZE``-byte transfers taking ``samples_s``."""
    mbps = [BYTES_SIZE / s / 1e6 for s in samples_s]
    return {"n": len(mbps), "bytes": BYTES_SIZE, "median_mb_s": statistics.median(mbps),
            "min_mb_s": min(mbps), "max_mb_s": max(mbps),
            "median_s": statistics.median(samples_s), "samples_mb_s": mbps}


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one side, its runs' samples pooled."""
    return {
        "queue": _latency_us(common.pooled(runs, "queue_s")),
        "pipe": _latency_us(common.pooled(runs, "pipe_s")),
        "lock": _latency_us(common.pooled(runs, "lock_pair_s")),
        "value": _latency_us(common.pooled(runs, "value_op_s")),
        "send_bytes": _throughput(common.pooled(runs, "send_bytes_s")),
    }


#: Table rows: (label, benchmark, statistic, higher is better).
ROWS: tuple[tuple[str, str, str, bool], ...] = (
    ("Queue ping-pong median (µs)", "queue", "median_us", False),
    ("Queue ping-pong p90 (µs)", "queue", "p90_us", False),
    ("Pipe round trip median (µs)", "pipe", "median_us", False),
    ("Pipe round trip p90 (µs)", "pipe", "p90_us", False),
    ("Lock acquire+release (µs/pair)", "lock", "median_us", False),
    ("Value += 1 under lock (µs/op)", "value", "median_us", False),
    ("send_bytes 10 MB (MB/s, median)", "send_bytes", "median_mb_s", True),
)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, one subprocess at a time; the whole result."""
    stdlib_cmd = common.measure_command(HERE, ours=False)
    ours_cmd = common.measure_command(HERE, ours=True)
    passed = ["--round-trips", str(args.round_trips), "--warmup", str(args.warmup),
              "--batch", str(args.batch), "--batches", str(args.batches),
              "--transfers", str(args.transfers), "--bytes-warmup", str(args.bytes_warmup)]
    t0 = time.perf_counter()
    stdlib_runs: list[dict[str, Any]] = []
    ours_runs: list[dict[str, Any]] = []
    for _ in range(args.runs):
        stdlib_runs.append(_run([*stdlib_cmd, "--measure", "stdlib", *passed]))
        ours_runs.append(_run([*ours_cmd, "--measure", "ours", *passed]))
    wall = time.perf_counter() - t0

    stdlib = _summarise(stdlib_runs)
    ours = _summarise(ours_runs)
    rows = []
    for label, bench, stat, higher_better in ROWS:
        s, o = stdlib[bench][stat], ours[bench][stat]
        rows.append({"benchmark": label, "stdlib": s, "ours": o,
                     "ratio": s / o if higher_better else o / s})
    queue_median = ours["queue"]["median_us"]
    return {
        "benchmark": "primitive latency and throughput",
        "ratio_meaning": "ours / stdlib of times (for MB/s: stdlib MB/s / ours MB/s): "
                         "> 1 means ours is slower, < 1 means ours is faster",
        "environment": common.environment(),
        "settings": {
            "runs": args.runs, "round_trips": args.round_trips, "warmup": args.warmup,
            "batch": args.batch, "batches": args.batches, "transfers": args.transfers,
            "bytes_warmup": args.bytes_warmup, "bytes_size": BYTES_SIZE,
            "stdlib_context": "fork",
        },
        "rows": rows,
        "aim": {"queue_median_under_us": QUEUE_AIM_US, "ours_queue_median_us": queue_median,
                "met": queue_median < QUEUE_AIM_US},
        "stdlib": stdlib,
        "ours": ours,
        "ours_workers_started_per_run": [r.get("workers_started") for r in ours_runs],
        "measure_wall_s": {"stdlib": [r["measure_wall_s"] for r in stdlib_runs],
                           "ours": [r["measure_wall_s"] for r in ours_runs]},
        "total_wall_s": wall,
    }


def _num(x: float) -> str:
    """One decimal, or three significant digits below 10 (a stdlib lock pair is ~0.2 µs)."""
    return f"{x:.1f}" if x >= 10 else f"{x:.3g}"


def format_table(result: dict[str, Any]) -> str:
    """The result as a table of the rows, stdlib beside ours, with notes."""
    env = result["environment"]
    s = result["settings"]
    widths = (max(len(r["benchmark"]) for r in result["rows"]), 10, 10, 8)
    out = [
        f"Primitives: stdlib fork context vs transparent_mp; {common.env_line(env)}",
        f"{s['runs']} run(s); round trips {s['round_trips']} (after {s['warmup']} warm-up) "
        f"per run; lock/value {s['batches']} batches x {s['batch']}; "
        f"{s['transfers']} x {s['bytes_size'] // 10**6} MB transfers",
        "",
        common.table_line(("benchmark", "stdlib", "ours", "ratio"), widths),
        common.table_line(["-" * w for w in widths], widths),
    ]
    for row in result["rows"]:
        out.append(common.table_line((row["benchmark"], _num(row["stdlib"]), _num(row["ours"]),
                                      common.ratio(row["ratio"])), widths))
    aim = result["aim"]
    out += [
        "",
        "ratio = ours / stdlib of times (> 1: ours is slower; < 1: ours is faster);",
        "for MB/s it is stdlib MB/s / ours MB/s, so the same holds",
        "",
        f"issue's aim: Queue ping-pong median under {aim['queue_median_under_us']:.0f} µs; "
        f"ours {aim['ours_queue_median_us']:.1f} µs: {'met' if aim['met'] else 'NOT met'}",
        *common.footer(result["ours_workers_started_per_run"], result["total_wall_s"]),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Queue, Pipe, Lock, Value and send_bytes: transparent_mp vs stdlib fork.")
    common.add_json_flag(parser)
    parser.add_argument("--runs", type=int, default=1,
                        help="stdlib+ours subprocess pairs, samples pooled (default: 1)")
    parser.add_argument("--round-trips", type=int, default=2000,
                        help="timed Queue and Pipe round trips per run (default: 2000)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="untimed Queue and Pipe round trips first (default: 200)")
    parser.add_argument("--batch", type=int, default=1000,
                        help="Lock pairs / Value increments per timed batch (default: 1000)")
    parser.add_argument("--batches", type=int, default=20,
                        help="timed Lock and Value batches per run (default: 20)")
    parser.add_argument("--transfers", type=int, default=20,
                        help="timed 10 MB send_bytes transfers per run (default: 20)")
    parser.add_argument("--bytes-warmup", type=int, default=2,
                        help="untimed 10 MB transfers first (default: 2)")
    parser.add_argument("--measure", choices=("stdlib", "ours"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common.check_counts(parser, args,
                        positive=("runs", "round_trips", "batch", "batches", "transfers"),
                        non_negative=("warmup", "bytes_warmup"))

    if args.measure is not None:
        measure(args.measure, args)
    else:
        common.print_result(run_all(args), args.json, format_table)


if __name__ == "__main__":
    main()
