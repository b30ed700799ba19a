"""Wall time of each application in ``examples/`` under plain python and under the hook.

    python bench/apps.py [--repeats N] [--json]

Each example runs, one at a time, as ``python examples/<app>.py`` (the stdlib:
loky for scikit-learn, forkserver for stable-baselines3, fork for the others)
and as ``python -m transparent_mp examples/<app>.py``; the result lines must be
identical. The table gives the median wall time of each and the ratio
ours/plain (the issue's aim: no app slower than 1.5x), whole programs,
interpreter start included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import add_json_flag, env_line, environment, print_result, ratio, table_line

ROOT = Path(__file__).resolve().parent.parent
APPS = ("sklearn_search", "pandarallel_apply", "ppo_cartpole", "es_cartpole")
AIM = 1.5


def timed_run(argv: list[str]) -> tuple[float, str]:
    """Seconds the command took and its last line of output (the result line)."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def measure(app: str, repeats: int) -> dict:
    script = str(ROOT / "examples" / f"{app}.py")
    plain, ours = [], []
    for _ in range(repeats):  # alternate, so drift in the host's speed hits both
        seconds, plain_line = timed_run([sys.executable, script])
        plain.append(seconds)
        seconds, ours_line = timed_run([sys.executable, "-m", "transparent_mp", script])
        ours.append(seconds)
        if ours_line != plain_line:
            raise SystemExit(f"{app}: results differ:\n  plain: {plain_line}\n  ours:  {ours_line}")
    return {"plain_s": statistics.median(plain), "ours_s": statistics.median(ours),
            "plain_samples": plain, "ours_samples": ours, "result": plain_line}


def format_table(result: dict) -> str:
    widths = (20, 10, 10, 8, 6)
    lines = [env_line(result["environment"]), "",
             table_line(("app", "plain s", "ours s", "ratio", "aim"), widths)]
    for app, r in result["apps"].items():
        ok = "met" if r["ours_s"] / r["plain_s"] <= AIM else "NOT met"
        lines.append(table_line((app, f"{r['plain_s']:.2f}", f"{r['ours_s']:.2f}",
                                 ratio(r["ours_s"] / r["plain_s"]), ok), widths))
    lines += ["", f"ratio = ours / plain python wall time; aim: <= {AIM}x. Result lines "
              "were identical in every run."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--apps", default=",".join(APPS))
    add_json_flag(parser)
    args = parser.parse_args()
    result = {"environment": environment(with_git_revision=True),
              "apps": {app: measure(app, args.repeats) for app in args.apps.split(",")}}
    print_result(result, args.json, format_table)


if __name__ == "__main__":
    main()
