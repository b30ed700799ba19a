"""What the benchmark scripts in ``bench/`` share.

Each benchmark script is both the runner and the measured program: the runner
starts ``python bench/<name>.py --measure stdlib...`` and
``python -m transparent_mp bench/<name>.py --measure ours``, one subprocess at a
time, and each of those prints one JSON line of timings, prefixed with the
script's own marker. This module holds the pieces of that protocol and of the
tables the runners print:

* the measured side: :func:`emit_result` (the marked JSON line), the checks that
  the right implementation is measured (:func:`check_hook`,
  :func:`fork_context`), :func:`timing_runtime_start` (the embedded Redis start
  inside a cold start) and :func:`workers_started`;
* the runner: :func:`measure_command`, :func:`run_measured` (run one measuring
  subprocess and collect its line), :func:`pooled`, :func:`p90`,
  :func:`latency_stats`, :func:`environment` and :func:`git_revision`;
* the output: :func:`env_line`, :func:`table_line`, :func:`ratio`,
  :func:`footer`, :func:`add_json_flag`, :func:`check_counts` and
  :func:`print_result`.

The scripts are run as ``python bench/<name>.py``, so ``bench/`` is first on
``sys.path`` and they ``import common``; under ``python -m transparent_mp`` this
file travels to the workers with the script (it is one of the app's modules).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

# -- the measured side (runs inside the subprocesses) --


def emit_result(marker: str, result: dict[str, Any], ours: bool = False) -> None:
    """Print ``result`` as the one JSON line, prefixed with ``marker``, the runner reads.

    For ``ours``, :func:`workers_started` is added to it last, as ``workers_started``.
    """
    if ours:
        result = {**result, "workers_started": workers_started()}
    sys.stdout.write(marker + json.dumps(result) + "\n")
    sys.stdout.flush()


def hook_installed() -> bool:
    """Whether transparent_mp's import hook is installed in this interpreter."""
    hook = sys.modules.get("transparent_mp.hook")
    return hook is not None and hook.is_installed()


def refuse_wrong_side(ours: bool) -> NoReturn:
    """Exit with how to run the ``ours`` (or the stdlib) measurement instead."""
    if ours:
        raise SystemExit("run the 'ours' measurement as: python -m transparent_mp "
                         f"{sys.argv[0]} --measure ours")
    raise SystemExit("stdlib measurement must run in plain python, without the hook")


def check_hook(ours: bool) -> None:
    """Refuse to measure ours without the hook, or the stdlib with it."""
    if hook_installed() != ours:
        refuse_wrong_side(ours)


def fork_context(ours: bool) -> Any:
    """``multiprocessing.get_context("fork")``, after refusing the wrong implementation."""
    check_hook(ours)
    ctx = multiprocessing.get_context("fork")
    module = type(ctx).__module__
    expected = "transparent_mp.context" if ours else "multiprocessing.context"
    if module != expected:
        raise SystemExit(f"get_context('fork') gave {ctx!r} (from {module}), not {expected}")
    return ctx


@contextlib.contextmanager
def timing_runtime_start() -> Iterator[list[float]]:
    """Time the transparent_mp runtime's creation (embedded Redis start and ping).

    Within the block, ``transparent_mp.runtime._start_driver`` is wrapped (the
    call itself is unchanged) so that the seconds it takes are appended to the
    list the block gets; this tells the runtime's start apart from the worker's
    in a cold start. Exits if the runtime is already up (no cold start then).
    """
    from transparent_mp import runtime

    if runtime._current is not None:
        raise SystemExit("the transparent_mp runtime is already up: this is not a cold start")
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
        yield runtime_start
    finally:
        runtime._start_driver = start_driver


def workers_started() -> int | None:
    """How many worker interpreters this transparent_mp driver started, if its backend says."""
    from transparent_mp import runtime

    backend = runtime.current().backend
    return getattr(backend, "workers_started", None)


# -- the runner --


def measure_command(script: str, ours: bool) -> list[str]:
    """The command that runs ``script``: under ``python -m transparent_mp`` if ``ours``."""
    if ours:
        return [sys.executable, "-m", "transparent_mp", script]
    return [sys.executable, script]


def run_measured(cmd: list[str], marker: str, timeout: float) -> dict[str, Any]:
    """Run one measuring subprocess and return the result it printed after ``marker``."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(marker)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit status {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return json.loads(lines[-1][len(marker):])


def pooled(runs: list[dict[str, Any]], key: str) -> list[float]:
    """The samples under ``key`` of every run, in one list."""
    return [s for r in runs for s in r[key]]


def p90(values: list[float]) -> float:
    """The 90th percentile (inclusive method); the value itself if there is only one."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def latency_stats(samples_s: list[float], scale: float, unit: str) -> dict[str, Any]:
    """n, median, p90, min, max and the samples, in seconds times ``scale``.

    The keys are suffixed with ``unit`` (``median_ms``, ``p90_us``, ...).
    """
    values = [s * scale for s in samples_s]
    return {"n": len(values), f"median_{unit}": statistics.median(values),
            f"p90_{unit}": p90(values), f"min_{unit}": min(values),
            f"max_{unit}": max(values), f"samples_{unit}": values}


def stats_ms(samples_s: list[float]) -> dict[str, Any]:
    """n, median, p90, min and max of ``samples_s`` (and the samples), in ms."""
    return latency_stats(samples_s, 1000.0, "ms")


def noop() -> None:
    """The target of every measured Process."""


def check_exitcodes(procs: list[Any]) -> None:
    """Raise if a measured process did not exit with 0."""
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(f"{len(bad)} measured process(es) exited with {bad[:5]}")


def start_join(process_class: Any) -> float:
    """Seconds for one ``start()`` + ``join()`` of a no-op Process."""
    p = process_class(target=noop)
    t0 = time.perf_counter()
    p.start()
    p.join()
    elapsed = time.perf_counter() - t0
    check_exitcodes([p])
    return elapsed


def git_revision() -> str | None:
    """The checkout's commit, "+dirty" if tracked files differ from it; None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head.strip() + ("+dirty" if dirty.strip() else "")


def environment(with_git_revision: bool = False) -> dict[str, Any]:
    """The interpreter, platform and CPU count (and the checkout's commit, if asked)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    if with_git_revision:
        env["git_revision"] = git_revision()
    return env


# -- the output --


def env_line(env: dict[str, Any]) -> str:
    """The environment for a table's first line (the commit too, if known)."""
    return (f"python {env['python']}, {env['cpu_count']} CPUs, {env['platform']}"
            + (f", transparent_mp at {env['git_revision']}" if env.get("git_revision") else ""))


def table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One line of a table: the first cell left-aligned, the others right-aligned."""
    return "  ".join([f"{cells[0]:<{widths[0]}}",
                      *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))])


def ratio(value: float) -> str:
    """A ratio as shown in the tables: two decimals and an ``x``."""
    return f"{value:.2f}x"


def footer(workers: Any, total_wall_s: float) -> list[str]:
    """The tables' last lines: workers started per ours driver and the total wall time."""
    return [
        "",
        f"workers started per ours driver: {workers}; total wall time {total_wall_s:.1f} s",
    ]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` option: print the whole result as JSON instead of the table."""
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")


def check_counts(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 positive: Sequence[str] = (), non_negative: Sequence[str] = ()) -> None:
    """Exit through ``parser`` if an option in ``positive`` is below 1 or one in
    ``non_negative`` below 0 (the options named as attributes of ``args``)."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in non_negative:
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")


def print_result(result: dict[str, Any], as_json: bool,
                 format_table: Callable[[dict[str, Any]], str]) -> None:
    """Print ``result`` as indented JSON, or as its table."""
    print(json.dumps(result, indent=2) if as_json else format_table(result))
