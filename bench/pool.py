"""``multiprocessing.Pool`` throughput, latency, scaling and memory: transparent_mp vs stdlib.

Seven measurements, made in one run of this script for both sides with the same
code: the measured program takes ``multiprocessing.get_context("fork").Pool``;
in plain ``python`` that is the stdlib's fork Pool, under
``python -m transparent_mp`` the import hook makes it ours (workers pulling
chunks of tasks from the embedded Redis). Every Pool has 2 workers unless said
otherwise. All clocks are ``time.perf_counter``.

1. **map 10k, default chunksize**: ``pool.map(identity, range(10_000))``, where
   :func:`identity` is a module-level function of this file (so it travels by
   reference, as an app's own function would). One untimed map, then
   ``--repeats`` timed ones; tasks/s of the median time.
2. **map 10k, chunksize=1**: the same with ``chunksize=1`` (one task per
   message, so the per-task overhead shows); tasks/s of the median.
3. **apply latency**: ``pool.apply(identity, (i,))``, ``--apply-calls`` timed
   calls after ``--apply-warmup`` untimed ones; median (and p90) in ms.
4. **map 40 x 10 MB arrays**: ``pool.map(array_sum, arrays)`` over 40 distinct
   ``np.ones(10 * 2**20 // 8)`` float64 arrays (default chunksize, nothing
   compressed); each worker answers with a float. One untimed map, then
   ``--array-repeats`` timed ones; the input size (40 x 10 MiB = 419.4 MB, MB =
   10**6 bytes as in ``bench/primitives.py``) divided by the median time.
5. **CPU speed-up, 1 -> 2 workers**: 8 tasks of :func:`spin`, a pure-python
   loop calibrated once by the runner to take about ``--cpu-task-seconds`` in
   one process (the same iteration count is passed to both sides), mapped with
   ``chunksize=1`` on a ``Pool(1)`` and on a ``Pool(2)``, alternately,
   ``--cpu-repeats`` times each (every timed map gets a fresh pool, warmed by
   one untimed ``apply``). The speed-up is median time with Pool(1) / median
   time with Pool(2). On 2 cores the driver and (for ours) Redis compete with
   the 2 workers, so 2.0 is out of reach; on a shared VM the speed of a core can
   also drift by 2x within seconds, which makes this row the noisiest.
6. **Pool(2) creation to first result**: ``Pool(2)`` then
   ``pool.apply(identity, (1,))``, timed together; then ``close()`` +
   ``join()``, untimed. *Cold* is the first Pool of a fresh driver: for ours it
   includes the runtime's start (the embedded Redis server; also timed on its
   own) and the start of the worker interpreters, which rebuild ``__main__``
   from this file. *Warm* is each of ``--warm-pools`` further Pools in the same
   driver (ours: the worker interpreters are idle and reused). The main
   measuring driver of each side gives one cold sample; ``--creation-runs``
   more fresh drivers per side give one cold sample (and warm ones) each.
7. **memory of the process tree**: right after the timed 10k maps, the default
   chunksize map is run again (untimed) for at least ``--memory-seconds`` while
   a thread of the driver sums ``VmRSS`` (``/proc/<pid>/status``) over the
   driver and all its descendants (found through every process's ppid in
   ``/proc/<pid>/stat``): for ours that is the driver, the redis-server, the
   worker interpreters and the pool workers they forked. The peak sum is
   reported, in MiB (2**20 bytes, as ``VmRSS`` counts KiB). An RSS sum counts
   pages that forked processes share once per process, so the peak of the PSS
   sum (``/proc/<pid>/smaps_rollup``) is given too, along with the breakdown
   of the peak RSS sample by kind of process. This is measured before any
   numpy array exists, in a driver that has not imported numpy.

The table's ratio is ours / stdlib *of the figure shown*: for a row marked
"higher is better" (tasks/s, MB/s, speed-up) a ratio below 1 means ours is
worse; for the others (ms, MiB) a ratio above 1 means ours is worse. The last
columns give the aim stated in the issue for ours and whether it is met.

If ``ray`` or ``lithops`` is importable, the same measurements are made with
``ray.util.multiprocessing.Pool`` / ``lithops.multiprocessing.Pool`` in plain
python and shown in extra columns; if not (the usual case) they are skipped,
and a failure of theirs is reported rather than fatal.

Run it from the repository root (about 1.5 minutes on 2 cores with the defaults)::

    python bench/pool.py               # a table
    python bench/pool.py --json        # everything, samples included, as JSON

The same file is the measured program: the runner starts
``python bench/pool.py --measure stdlib`` and
``python -m transparent_mp bench/pool.py --measure ours`` (one after the other,
never at once), each of which prints one JSON line of timings (prefixed with
``RESULT_MARKER``); with ``--part creation`` only the creation is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import common

RESULT_MARKER = "POOL_RESULT "
HERE = os.path.abspath(__file__)
SUBPROCESS_TIMEOUT_S = 600.0
WORKERS = 2
MAP_TASKS = 10_000
ARRAY_COUNT = 40
ARRAY_BYTES = 10 * 2**20
CPU_TASKS = 8
MB = 10**6
MIB = 2**20
#: Variants other than stdlib and ours, measured only if their package imports.
OTHERS: dict[str, str] = {"ray": "ray.util.multiprocessing", "lithops": "lithops.multiprocessing"}

#: A Pool factory: processes -> pool.
PoolFactory = Callable[[int], Any]


# -- the tasks (module-level, so they travel by reference) --


def identity(x: Any) -> Any:
    """The tiny task: return the argument."""
    return x


def array_sum(a: Any) -> float:
    """The big-argument task: a small answer computed from the whole array."""
    return float(a.sum())


def spin(n: int) -> int:
    """The CPU-bound task: a pure-python loop of ``n`` iterations."""
    total = 0
    for i in range(n):
        total += i ^ 1
    return total


def spin_result(n: int) -> int:
    """What ``spin(n)`` returns, in closed form (``i ^ 1`` swaps 2k and 2k+1)."""
    if n % 2 == 0:
        return n * (n - 1) // 2
    return (n - 1) * (n - 2) // 2 + n


# -- memory of the process tree --


def _ppid_of(stat: bytes) -> int:
    """The parent pid in the text of a ``/proc/<pid>/stat`` (after the command's name)."""
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def _stat(pid: int | str) -> bytes | None:
    """The text of ``/proc/<pid>/stat``; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read()
    except OSError:
        return None


def _ppid(pid: int) -> int:
    """The parent of ``pid``; -1 if it is gone."""
    stat = _stat(pid)
    return -1 if stat is None else _ppid_of(stat)


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the ppid of each process in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat is None:
            continue  # gone meanwhile
        children.setdefault(_ppid_of(stat), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _read_kb(path: str, field: bytes) -> int:
    """The value in kB of ``field`` (e.g. ``b"VmRSS:"``) in a /proc file; 0 if absent."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _kind(pid: int, root: int) -> str:
    """What a process of the tree is, for the breakdown."""
    if pid == root:
        return "driver"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return "gone"
    if b"redis-server" in cmdline:
        return "redis-server"
    if b"transparent_mp.worker" in cmdline:
        # the zygote and the children it forks share its command line
        return "worker interpreter" if _ppid(pid) == root else "worker child (pool worker)"
    return "child (pool worker)"


class TreeMemorySampler:
    """A thread that sums VmRSS (and Pss) over a process tree until stopped."""

    def __init__(self, root: int, interval: float = 0.005) -> None:
        self.root = root
        self.interval = interval
        self.samples = 0
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_breakdown: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def sample(self) -> None:
        """Take one sample of the tree and keep the peaks."""
        rows = []
        for pid in _descendants(self.root):
            rss = _read_kb(f"/proc/{pid}/status", b"VmRSS:")
            pss = _read_kb(f"/proc/{pid}/smaps_rollup", b"Pss:")
            rows.append((pid, rss, pss))
        rss_total = sum(r[1] for r in rows)
        self.peak_pss_kb = max(self.peak_pss_kb, sum(r[2] for r in rows))
        self.samples += 1
        if rss_total > self.peak_rss_kb:
            self.peak_rss_kb = rss_total
            breakdown: dict[str, dict[str, int]] = {}
            for pid, rss, _ in rows:
                entry = breakdown.setdefault(_kind(pid, self.root),
                                             {"processes": 0, "rss_kb": 0})
                entry["processes"] += 1
                entry["rss_kb"] += rss
            self.peak_breakdown = breakdown

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- the measured side (runs inside the subprocesses) --


def _pool_factory(variant: str) -> PoolFactory:
    """The Pool class of ``variant`` (the fork context's for stdlib and ours)."""
    if variant in ("stdlib", "ours"):
        return common.fork_context(variant == "ours").Pool
    module = importlib.import_module(OTHERS[variant])
    return lambda processes: module.Pool(processes=processes)


def _close(pool: Any) -> None:
    pool.close()
    pool.join()


def _create_to_first_result(factory: PoolFactory) -> float:
    """Seconds from ``Pool(2)`` to its first ``apply`` result (close+join untimed)."""
    t0 = time.perf_counter()
    pool = factory(WORKERS)
    x = pool.apply(identity, (1,))
    elapsed = time.perf_counter() - t0
    if x != 1:
        raise RuntimeError(f"apply(identity, (1,)) returned {x!r}")
    _close(pool)
    return elapsed


def bench_creation(variant: str, factory: PoolFactory, warm_pools: int) -> dict[str, Any]:
    """The cold first Pool of this driver, then ``warm_pools`` more."""
    timing = (common.timing_runtime_start() if variant == "ours"
              else contextlib.nullcontext([]))
    with timing as runtime_start:
        cold = _create_to_first_result(factory)
    warm = [_create_to_first_result(factory) for _ in range(warm_pools)]
    return {"cold_s": cold, "warm_s": warm,
            "cold_runtime_start_s": runtime_start[0] if runtime_start else None}


def bench_map(pool: Any, chunksize: int | None, repeats: int) -> list[float]:
    """Seconds per ``map`` of ``MAP_TASKS`` tiny tasks, after one untimed map."""
    data = list(range(MAP_TASKS))
    samples = []
    for r in range(1 + repeats):
        t0 = time.perf_counter()
        out = pool.map(identity, data, chunksize)
        dt = time.perf_counter() - t0
        if out != data:
            raise RuntimeError("map(identity) returned something else than its input")
        if r:
            samples.append(dt)
    return samples


def bench_memory(pool: Any, min_seconds: float) -> dict[str, Any]:
    """Peak RSS (and PSS) of the process tree while 10k maps run for ``min_seconds``."""
    data = list(range(MAP_TASKS))
    maps = 0
    with TreeMemorySampler(os.getpid()) as sampler:
        t0 = time.perf_counter()
        while maps < 3 or sampler.samples < 5 or time.perf_counter() - t0 < min_seconds:
            if pool.map(identity, data) != data:
                raise RuntimeError("map(identity) returned something else than its input")
            maps += 1
    return {"maps": maps, "samples": sampler.samples,
            "peak_rss_kb": sampler.peak_rss_kb, "peak_pss_kb": sampler.peak_pss_kb,
            "peak_breakdown": sampler.peak_breakdown}


def bench_apply(pool: Any, warmup: int, calls: int) -> list[float]:
    """Seconds per ``apply(identity, (i,))``."""
    samples = []
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        x = pool.apply(identity, (i,))
        dt = time.perf_counter() - t0
        if x != i:
            raise RuntimeError(f"apply(identity, ({i},)) returned {x!r}")
        if i >= warmup:
            samples.append(dt)
    return samples


def bench_arrays(pool: Any, repeats: int) -> list[float]:
    """Seconds per ``map(array_sum, arrays)`` over ``ARRAY_COUNT`` distinct arrays."""
    import numpy as np

    n = ARRAY_BYTES // 8
    arrays = [np.ones(n) for _ in range(ARRAY_COUNT)]
    samples = []
    for r in range(1 + repeats):
        t0 = time.perf_counter()
        out = pool.map(array_sum, arrays)
        dt = time.perf_counter() - t0
        if out != [float(n)] * ARRAY_COUNT:
            raise RuntimeError(f"map(array_sum) returned {out[:3]!r}...")
        if r:
            samples.append(dt)
    return samples


def bench_cpu(factory: PoolFactory, spin_iterations: int, repeats: int) -> dict[str, Any]:
    """Seconds per map of ``CPU_TASKS`` spins on Pool(1) and on Pool(2), alternating.

    Each timed map gets a pool of its own (created, warmed by one ``apply``,
    closed and joined outside the timed part), and the two sizes alternate, so
    that a drift of the machine's speed during the run (large on shared VMs)
    falls on both alike.
    """
    tasks = [spin_iterations] * CPU_TASKS
    expected = [spin_result(spin_iterations)] * CPU_TASKS
    out: dict[str, Any] = {"spin_iterations": spin_iterations, "pool1_s": [], "pool2_s": []}
    for _ in range(repeats):
        for processes in (1, 2):
            pool = factory(processes)
            pool.apply(identity, (0,))  # the workers are up
            t0 = time.perf_counter()
            got = pool.map(spin, tasks, chunksize=1)
            out[f"pool{processes}_s"].append(time.perf_counter() - t0)
            _close(pool)
            if got != expected:
                raise RuntimeError("map(spin) returned wrong results")
    return out


def measure(variant: str, args: argparse.Namespace) -> None:
    """Run the measurements of ``args.part`` in this interpreter; print one result line."""
    factory = _pool_factory(variant)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"variant": variant, "part": args.part}
    result["creation"] = bench_creation(variant, factory, args.warm_pools)
    if args.part == "all":
        pool = factory(WORKERS)
        result["map_default_s"] = bench_map(pool, None, args.repeats)
        result["memory"] = bench_memory(pool, args.memory_seconds)
        result["map_chunksize1_s"] = bench_map(pool, 1, args.repeats)
        result["apply_s"] = bench_apply(pool, args.apply_warmup, args.apply_calls)
        result["arrays_s"] = bench_arrays(pool, args.array_repeats)
        _close(pool)
        result["cpu"] = bench_cpu(factory, args.spin_iterations, args.cpu_repeats)
    result["measure_wall_s"] = time.perf_counter() - t0
    common.emit_result(RESULT_MARKER, result, variant == "ours")


# -- the runner --


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed."""
    return common.run_measured(cmd, RESULT_MARKER, SUBPROCESS_TIMEOUT_S)


def calibrate_spin(seconds: float) -> int:
    """Iterations of :func:`spin` that take about ``seconds`` in this interpreter.

    The median of 3 timings of ~0.1 s each, since the speed of a shared VM's
    CPU can drift by 2x within seconds.
    """
    n = 200_000
    while True:
        t0 = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t0
        if dt >= 0.05:
            break
        n *= 4
    n = max(1, round(n * 0.1 / dt))
    per_iteration = []
    for _ in range(3):
        t0 = time.perf_counter()
        spin(n)
        per_iteration.append((time.perf_counter() - t0) / n)
    return max(1, round(seconds / statistics.median(per_iteration)))


def _summarise(main_runs: list[dict[str, Any]],
               creation_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one variant, its runs' samples pooled."""
    creations = [r["creation"] for r in main_runs + creation_runs]
    cold_ms = [c["cold_s"] * 1e3 for c in creations]
    warm_ms = [s * 1e3 for c in creations for s in c["warm_s"]]
    runtime_ms = [c["cold_runtime_start_s"] * 1e3 for c in creations
                  if c.get("cold_runtime_start_s") is not None]
    map_default = common.pooled(main_runs, "map_default_s")
    map_cs1 = common.pooled(main_runs, "map_chunksize1_s")
    apply_ms = [s * 1e3 for s in common.pooled(main_runs, "apply_s")]
    arrays = common.pooled(main_runs, "arrays_s")
    cpu_runs = [r["cpu"] for r in main_runs]
    pool1, pool2 = common.pooled(cpu_runs, "pool1_s"), common.pooled(cpu_runs, "pool2_s")
    memory = max((r["memory"] for r in main_runs), key=lambda m: m["peak_rss_kb"])
    array_mb = ARRAY_COUNT * ARRAY_BYTES / MB
    return {
        "map_default_tasks_s": MAP_TASKS / statistics.median(map_default),
        "map_default_s": map_default,
        "map_chunksize1_tasks_s": MAP_TASKS / statistics.median(map_cs1),
        "map_chunksize1_s": map_cs1,
        "apply_median_ms": statistics.median(apply_ms),
        "apply_p90_ms": common.p90(apply_ms),
        "apply_n": len(apply_ms),
        "arrays_mb_s": array_mb / statistics.median(arrays),
        "arrays_input_mb": array_mb,
        "arrays_s": arrays,
        "cpu_speedup": statistics.median(pool1) / statistics.median(pool2),
        "cpu_pool1_s": pool1,
        "cpu_pool2_s": pool2,
        "creation_cold_ms": statistics.median(cold_ms),
        "creation_cold_samples_ms": cold_ms,
        "creation_cold_runtime_start_ms": statistics.median(runtime_ms) if runtime_ms else None,
        "creation_warm_ms": statistics.median(warm_ms),
        "creation_warm_samples_ms": warm_ms,
        "memory_peak_rss_mib": memory["peak_rss_kb"] * 1024 / MIB,
        "memory_peak_pss_mib": memory["peak_pss_kb"] * 1024 / MIB,
        "memory": memory,
        "workers_started": [r.get("workers_started") for r in main_runs + creation_runs],
    }


#: Table rows: (label, figure, higher is better, aim for ours, unit format).
ROWS: tuple[tuple[str, str, bool, float, str], ...] = (
    ("map 10k tiny tasks, default chunksize (tasks/s)", "map_default_tasks_s", True,
     1_000_000, "int"),
    ("map 10k tiny tasks, chunksize=1 (tasks/s)", "map_chunksize1_tasks_s", True, 10_000, "int"),
    ("apply latency, median (ms)", "apply_median_ms", False, 0.5, "ms"),
    ("map 40 x 10 MiB arrays (MB/s)", "arrays_mb_s", True, 500, "int"),
    ("CPU speed-up, Pool(1) -> Pool(2) (x)", "cpu_speedup", True, 1.85, "x"),
    ("Pool(2) creation to first result, cold (ms)", "creation_cold_ms", False, 200, "ms"),
    ("Pool(2) creation to first result, warm (ms)", "creation_warm_ms", False, 20, "ms"),
    ("peak RSS of the process tree, 10k map (MiB)", "memory_peak_rss_mib", False, 150, "mib"),
)


def _measure_variant(variant: str, args: argparse.Namespace,
                     spin_iterations: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The main runs and the creation-only runs of one variant, one subprocess at a time."""
    prefix = common.measure_command(HERE, ours=variant == "ours")
    passed = ["--measure", variant, "--repeats", str(args.repeats),
              "--apply-calls", str(args.apply_calls), "--apply-warmup", str(args.apply_warmup),
              "--array-repeats", str(args.array_repeats), "--cpu-repeats", str(args.cpu_repeats),
              "--spin-iterations", str(spin_iterations), "--warm-pools", str(args.warm_pools),
              "--memory-seconds", str(args.memory_seconds)]
    main_runs = [_run([*prefix, *passed, "--part", "all"]) for _ in range(args.runs)]
    creation_runs = [_run([*prefix, *passed, "--part", "creation"])
                     for _ in range(args.creation_runs)]
    return main_runs, creation_runs


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, one subprocess at a time; the whole result."""
    t0 = time.perf_counter()
    spin_iterations = args.spin_iterations or calibrate_spin(args.cpu_task_seconds)
    figures: dict[str, dict[str, Any]] = {}
    others: dict[str, str] = {}
    for variant in ("stdlib", "ours"):
        figures[variant] = _summarise(*_measure_variant(variant, args, spin_iterations))
    for variant, module in OTHERS.items():
        if importlib.util.find_spec(variant) is None:
            others[variant] = f"skipped: {variant} is not installed"
            continue
        try:
            figures[variant] = _summarise(*_measure_variant(variant, args, spin_iterations))
            others[variant] = f"measured with {module}.Pool"
        except Exception as exc:  # theirs failing must not lose ours
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            others[variant] = f"failed: {first}"
    wall = time.perf_counter() - t0

    rows = []
    for label, key, higher_better, aim, unit in ROWS:
        s, o = figures["stdlib"][key], figures["ours"][key]
        rows.append({
            "benchmark": label, "figure": key, "unit": unit, "higher_is_better": higher_better,
            "stdlib": s, "ours": o, "ratio": o / s,
            "aim": aim, "met": o >= aim if higher_better else o <= aim,
            **{v: figures[v][key] for v in figures if v not in ("stdlib", "ours")},
        })
    return {
        "benchmark": "multiprocessing.Pool",
        "ratio_meaning": "ours / stdlib of the figure shown: for tasks/s, MB/s and speed-up "
                         "< 1 means ours is worse; for ms and MiB > 1 means ours is worse",
        "environment": common.environment(with_git_revision=True),
        "settings": {
            "workers": WORKERS, "map_tasks": MAP_TASKS, "repeats": args.repeats,
            "apply_calls": args.apply_calls, "apply_warmup": args.apply_warmup,
            "array_count": ARRAY_COUNT, "array_bytes": ARRAY_BYTES,
            "array_repeats": args.array_repeats, "cpu_tasks": CPU_TASKS,
            "cpu_task_seconds": args.cpu_task_seconds, "spin_iterations": spin_iterations,
            "cpu_repeats": args.cpu_repeats, "runs": args.runs,
            "creation_runs": args.creation_runs, "warm_pools": args.warm_pools,
            "memory_seconds": args.memory_seconds, "stdlib_context": "fork",
        },
        "rows": rows,
        "others": others,
        "figures": figures,
        "total_wall_s": wall,
    }


def _fmt(value: float, unit: str) -> str:
    """A figure of the table in its unit's format ("int", "x", "mib" or "ms")."""
    if unit == "int":
        return f"{value:,.0f}"
    if unit == "x":
        return common.ratio(value)
    if unit == "mib":
        return f"{value:.1f}"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def format_table(result: dict[str, Any]) -> str:
    """The result as a table of the rows (stdlib, ours, the others if any), with notes."""
    env = result["environment"]
    s = result["settings"]
    extra = [v for v in result["figures"] if v not in ("stdlib", "ours")]
    widths = (max(len(r["benchmark"]) for r in result["rows"]), 10, 10, 6, 13, 7,
              *(10 for _ in extra))
    head = common.table_line(("benchmark", "stdlib", "ours", "ratio", "aim for ours", "met",
                              *extra), widths)
    out = [
        f"multiprocessing.Pool: stdlib fork context vs transparent_mp, {s['workers']} workers; "
        f"{common.env_line(env)}",
        f"{s['runs']} run(s); maps: {s['repeats']} timed after 1 warm-up; apply: "
        f"{s['apply_calls']} after {s['apply_warmup']}; arrays: {s['array_repeats']} timed "
        f"after 1; CPU: {s['cpu_tasks']} tasks of ~{s['cpu_task_seconds']} s, "
        f"{s['cpu_repeats']} timed per pool; creation: {s['runs'] + s['creation_runs']} cold, "
        f"{s['warm_pools']} warm per driver",
        "",
        head,
        "-" * len(head),
    ]
    for row in result["rows"]:
        sign = ">=" if row["higher_is_better"] else "<="
        aim = f"{sign} {_fmt(row['aim'], row['unit'])}"
        out.append(common.table_line(
            (row["benchmark"], *(_fmt(row[v], row["unit"]) for v in ("stdlib", "ours")),
             common.ratio(row["ratio"]), aim, "met" if row["met"] else "NOT met",
             *(_fmt(row[v], row["unit"]) for v in extra)),
            widths))
    st, ours = result["figures"]["stdlib"], result["figures"]["ours"]
    out += [
        "",
        "ratio = ours / stdlib of the figure shown: for tasks/s, MB/s and the speed-up < 1 means",
        "ours is worse; for ms and MiB > 1 means ours is worse. MB = 10**6 bytes, MiB = 2**20.",
        "",
        f"apply p90: stdlib {st['apply_p90_ms']:.3f} ms, ours {ours['apply_p90_ms']:.3f} ms",
        f"CPU map of {s['cpu_tasks']} x {s['spin_iterations']:,} iterations, median s "
        f"Pool(1) / Pool(2): stdlib {statistics.median(st['cpu_pool1_s']):.2f} / "
        f"{statistics.median(st['cpu_pool2_s']):.2f}, ours "
        f"{statistics.median(ours['cpu_pool1_s']):.2f} / "
        f"{statistics.median(ours['cpu_pool2_s']):.2f}",
    ]
    rs = ours["creation_cold_runtime_start_ms"]
    if rs is not None:
        out.append(f"of ours cold creation, the runtime start (embedded Redis) took median "
                   f"{rs:.1f} ms")
    for name, fig in (("stdlib", st), ("ours", ours)):
        parts = ", ".join(f"{kind} {v['processes']}: {v['rss_kb'] / 1024:.1f}"
                          for kind, v in sorted(fig["memory"]["peak_breakdown"].items()))
        out.append(f"peak RSS MiB by process, {name}: {parts}; PSS sum at its peak "
                   f"{fig['memory_peak_pss_mib']:.1f} MiB ({fig['memory']['samples']} samples)")
    for variant, note in result["others"].items():
        out.append(f"{variant}: {note}")
    out += common.footer(ours["workers_started"], result["total_wall_s"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="multiprocessing.Pool map/apply/arrays/scaling/creation/memory: "
                    "transparent_mp vs stdlib fork.")
    common.add_json_flag(parser)
    parser.add_argument("--runs", type=int, default=1,
                        help="main measuring subprocesses per side, samples pooled (default: 1)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed 10k maps of each kind, after 1 warm-up (default: 5)")
    parser.add_argument("--apply-calls", type=int, default=500,
                        help="timed apply calls (default: 500)")
    parser.add_argument("--apply-warmup", type=int, default=50,
                        help="untimed apply calls first (default: 50)")
    parser.add_argument("--array-repeats", type=int, default=3,
                        help="timed 40 x 10 MiB maps, after 1 warm-up (default: 3)")
    parser.add_argument("--cpu-task-seconds", type=float, default=0.4,
                        help="target duration of one CPU task (default: 0.4)")
    parser.add_argument("--cpu-repeats", type=int, default=3,
                        help="timed CPU maps per pool size, alternating sizes (default: 3)")
    parser.add_argument("--spin-iterations", type=int, default=0,
                        help="iterations per CPU task; 0: calibrate to --cpu-task-seconds")
    parser.add_argument("--creation-runs", type=int, default=2,
                        help="extra fresh drivers per side measuring only the Pool creation "
                             "(default: 2, so 3 cold samples with --runs 1)")
    parser.add_argument("--warm-pools", type=int, default=5,
                        help="warm Pool creations per driver, after the cold one (default: 5)")
    parser.add_argument("--memory-seconds", type=float, default=1.0,
                        help="least time the 10k map is repeated while memory is sampled "
                             "(default: 1.0)")
    parser.add_argument("--measure", choices=("stdlib", "ours", *OTHERS), help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=("all", "creation"), default="all",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common.check_counts(parser, args,
                        positive=("runs", "repeats", "apply_calls", "array_repeats",
                                  "cpu_repeats", "warm_pools"),
                        non_negative=("apply_warmup", "creation_runs", "spin_iterations"))
    if args.cpu_task_seconds <= 0:
        parser.error("--cpu-task-seconds must be positive")

    if args.measure is not None:
        if args.spin_iterations == 0:
            args.spin_iterations = calibrate_spin(args.cpu_task_seconds)
        measure(args.measure, args)
    else:
        common.print_result(run_all(args), args.json, format_table)


if __name__ == "__main__":
    main()
