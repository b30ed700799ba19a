"""Run every benchmark in ``bench/``, one after another, and print their tables.

From the repository root::

    python -m bench                      # process_latency, primitives, pool, apps,
                                         # fork_state, lambda_invoke
    python -m bench pool primitives      # only these, in this order

Each benchmark script runs as its own subprocess (``python bench/<name>.py``,
with the interpreter running this), its output streamed as it comes; the
benchmarks never run at once, so they do not disturb each other's timings.
The exit status is 0 if every benchmark succeeded, else 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
#: The benchmarks, in the order they run.
BENCHMARKS: tuple[str, ...] = ("process_latency", "primitives", "pool", "apps",
                                "fork_state", "lambda_invoke")


def run(name: str) -> int:
    """Run ``bench/<name>.py`` with its defaults, streaming its output; its exit status."""
    script = BENCH_DIR / f"{name}.py"
    banner = f"== {name} ({script.relative_to(BENCH_DIR.parent)}) "
    print(banner + "=" * max(0, 78 - len(banner)), flush=True)
    t0 = time.perf_counter()
    code = subprocess.call([sys.executable, str(script)], cwd=BENCH_DIR.parent)
    status = "ok" if code == 0 else f"FAILED with exit status {code}"
    print(f"-- {name}: {status} in {time.perf_counter() - t0:.1f} s", flush=True)
    print(flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="Run the benchmarks in bench/ one by one.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(BENCHMARKS)}")
    failed = [name for name in args.names or BENCHMARKS if run(name) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
