"""Real programs, unmodified: the same result line under plain python and under the hook."""

from __future__ import annotations

import pytest
from conftest import ROOT, run

pytestmark = pytest.mark.apps


@pytest.mark.parametrize("example", ["es_cartpole.py", "ppo_cartpole.py",
                                     "pandarallel_apply.py"])
def test_example_gives_the_same_result_as_plain_python(example):
    path = str(ROOT / "examples" / example)
    plain = run("plain", [path])
    ours = run("cli", ["--stats", path])
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "invocations=" in ours.stderr and "invocations=0" not in ours.stderr


def test_pandarallel_progress_bars_and_pipe_mode(tmp_path):
    code = ("import pandas as pd\n"
            "from pandarallel import pandarallel\n"
            "def double(x):\n"
            "    return 2 * x\n"
            "if __name__ == '__main__':\n"
            "    pandarallel.initialize(nb_workers=2, progress_bar=True)\n"
            "    s = pd.Series(range(2000))\n"
            "    print('result', s.parallel_apply(double).sum())\n")
    script = tmp_path / "progress.py"
    script.write_text(code)
    result = run("cli", [str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "use standard multiprocessing data transfer (pipe)" in result.stdout
    assert "100.00%" in result.stdout  # the bars reached the end through the manager queue
    assert result.stdout.rstrip().endswith("result 3998000")
