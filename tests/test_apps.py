"""Real programs, unmodified: the same result line under plain python and under the hook."""

from __future__ import annotations

import pytest
from conftest import ROOT, run


@pytest.mark.parametrize("example", ["es_cartpole.py", "ppo_cartpole.py"])
def test_example_gives_the_same_result_as_plain_python(example):
    path = str(ROOT / "examples" / example)
    plain = run("plain", [path])
    ours = run("cli", ["--stats", path])
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "invocations=" in ours.stderr and "invocations=0" not in ours.stderr
