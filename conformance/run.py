"""Run CPython's multiprocessing test suite, unedited, under transparent_mp's hook.

    python conformance/run.py [--flavour processes|manager] [--start-method spawn|fork]
                              [--classes A,B] [--json FILE] [--plain]

Each test class runs in its own interpreter whose ``PYTHONPATH`` starts with
the sitecustomize folder, so ``multiprocessing`` is the patched one before the
suite imports it. Nothing in the suite is edited, skipped or monkey-patched.
A test that makes no progress for ``--test-timeout`` seconds is recorded as a
hang, its interpreter is killed, and the class goes on with its next test in a
fresh interpreter. Prints pass/fail/error/skip per class and a total.
``--plain`` runs the same classes the same way without the hook: the stdlib's own
figures on this interpreter and machine, to compare with.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import unittest
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STATUSES = ("pass", "fail", "error", "skip", "hang")


class _LineResult(unittest.TextTestResult):
    """Reports each test's outcome on stdout as one line the parent reads."""

    def _emit(self, test: unittest.TestCase, status: str, detail: str = "") -> None:
        line = json.dumps({"test": test.id().rsplit(".", 1)[-1], "status": status,
                           "detail": detail[-2000:]})
        sys.__stdout__.write("@@RESULT " + line + "\n")
        sys.__stdout__.flush()

    def startTest(self, test):
        sys.__stdout__.write("@@START " + test.id().rsplit(".", 1)[-1] + "\n")
        sys.__stdout__.flush()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._emit(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._emit(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit(test, "pass", "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._emit(test, "fail", "unexpected success")


def child_main(module_name: str, class_name: str, tests: list[str]) -> None:
    """Inside the hooked interpreter: run ``tests`` of one class, report each."""
    import importlib

    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    suite = unittest.TestSuite(cls(name) for name in tests)
    module.setUpModule()
    try:
        runner = unittest.TextTestRunner(stream=open(os.devnull, "w"),
                                         resultclass=_LineResult)
        runner.run(suite)
    finally:
        module.tearDownModule()


def class_tests(module_name: str, env: dict[str, str]) -> dict[str, list[str]]:
    """Test names per class, read in a hooked interpreter like the runs themselves."""
    code = ("import json, importlib, unittest\n"
            f"m = importlib.import_module({module_name!r})\n"
            "out = {n: unittest.TestLoader().getTestCaseNames(c) for n, c in vars(m).items()\n"
            "       if isinstance(c, type) and issubclass(c, unittest.TestCase)}\n"
            "print(json.dumps(out))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=HERE)
    return json.loads(out.stdout)


def _env(plain: bool) -> dict[str, str]:
    """The suite's environment: under the hook, or (``plain``) the stdlib alone."""
    from transparent_mp.util import sitecustomize_dir

    env = dict(os.environ)
    path = [str(HERE), str(HERE.parent)] if plain else [sitecustomize_dir(), str(HERE),
                                                         str(HERE.parent)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _lines(proc: subprocess.Popen, test_timeout: float) -> Iterator[str]:
    """The child's lines as they come (read unbuffered: a line left in a reader's
    buffer would not wake the selector); kills the child after ``test_timeout``
    seconds without a line."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    last = time.monotonic()
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode(errors="replace")
        if not sel.select(timeout=1.0):
            if time.monotonic() - last > test_timeout:
                proc.kill()
                return
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            return
        pending += chunk
        last = time.monotonic()


def _as_from_a_terminal() -> None:
    """In the class's interpreter before exec: SIGINT and SIGQUIT delivered, even when
    the runner was started in the background (which ignores them), as the suite's
    KeyboardInterrupt tests need."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def run_class(module_name: str, class_name: str, tests: list[str],
              test_timeout: float, env: dict[str, str]) -> dict[str, dict]:
    """Run one class, restarting after a hang; outcome per test."""
    results: dict[str, dict] = {}
    remaining = list(tests)
    while remaining:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", module_name,
               class_name, *remaining]
        proc = subprocess.Popen(cmd, env=env, cwd=HERE, preexec_fn=_as_from_a_terminal,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        current = None
        for line in _lines(proc, test_timeout):
            if line.startswith("@@START "):
                current = line.split()[1]
            elif line.startswith("@@RESULT "):
                record = json.loads(line[len("@@RESULT "):])
                results[record["test"]] = record
                current = None
        proc.wait()
        proc.stdout.close()
        if current is not None and current not in results:
            status = "hang" if proc.returncode == -9 else "error"
            results[current] = {"test": current, "status": status,
                                "detail": f"interpreter ended (exit {proc.returncode})"}
        remaining = [t for t in remaining if t not in results]
        if current is None and remaining:  # died between tests: count the rest as errors
            for t in remaining:
                results[t] = {"test": t, "status": "error",
                              "detail": f"not run: interpreter ended (exit {proc.returncode})"}
            remaining = []
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavour", default="processes", choices=["processes", "manager"])
    parser.add_argument("--start-method", default="spawn", choices=["spawn", "fork"],
                        help="the suite's start method, as test_multiprocessing_<method>")
    parser.add_argument("--classes", help="comma-separated class names (without prefix)")
    parser.add_argument("--test-timeout", type=float, default=60.0)
    parser.add_argument("--json", help="write every test's outcome to this file")
    parser.add_argument("--plain", action="store_true",
                        help="without the hook: the stdlib's own figures, to compare with")
    args = parser.parse_args()
    env = _env(args.plain)
    module_name = f"suite_{args.flavour}" + ("_fork" if args.start_method == "fork" else "")
    prefix = "With" + args.flavour.capitalize()
    classes = class_tests(module_name, env)
    if args.classes:
        wanted = {prefix + c if not c.startswith("With") else c
                  for c in args.classes.split(",")}
        classes = {k: v for k, v in classes.items() if k in wanted}
    totals: Counter = Counter()
    report: dict[str, dict] = {}
    started = time.monotonic()
    print(f"{'class':<44}" + "".join(f"{s:>7}" for s in STATUSES) + "   seconds")
    for class_name in sorted(classes):
        t0 = time.monotonic()
        results = run_class(module_name, class_name, classes[class_name], args.test_timeout,
                            env)
        counts = Counter(r["status"] for r in results.values())
        totals.update(counts)
        report[class_name] = results
        print(f"{class_name:<44}" + "".join(f"{counts[s]:>7}" for s in STATUSES)
              + f"   {time.monotonic() - t0:7.1f}", flush=True)
    ran = sum(totals.values())
    print(f"{'TOTAL':<44}" + "".join(f"{totals[s]:>7}" for s in STATUSES)
          + f"   {time.monotonic() - started:7.1f}")
    print(f"passed {totals['pass']} of {ran} ({100 * totals['pass'] / max(ran, 1):.1f} %)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
