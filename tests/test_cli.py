"""The command line and the sitecustomize hook run a program as plain python does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APPS, ROOT, command, run

EXAMPLE = str(ROOT / "examples" / "processes.py")


@pytest.fixture(scope="module")
def plain_example() -> subprocess.CompletedProcess:
    return run("plain", [EXAMPLE])


@pytest.mark.parametrize("mode", ["cli", "site"])
def test_example_gives_the_same_output_as_plain_python(plain_example, mode):
    shimmed = run(mode, [EXAMPLE])
    assert shimmed.returncode == plain_example.returncode == 0, shimmed.stderr
    # the three jobs run at once, so their lines may come in any order
    assert sorted(shimmed.stdout.splitlines()) == sorted(plain_example.stdout.splitlines())
    assert "RuntimeError: this child fails on purpose" in shimmed.stderr
    assert "/transparent_mp-worker-" in shimmed.stderr  # the traceback came from a worker


@pytest.mark.parametrize("mode", ["plain", "cli", "site"])
def test_script_sees_argv_main_path_and_exit_status(mode):
    result = run(mode, ["report_main.py", "--flag", "value", "5"])
    assert result.returncode == 5, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == ["report_main.py", "--flag", "value", "5"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(APPS)
    assert seen["file"] == str(APPS / "report_main.py")


def test_module_mode_matches_plain_python():
    plain = run("plain", ["-m", "report_main", "x", "3"])
    ours = run("cli", ["-m", "report_main", "x", "3"])
    assert ours.returncode == plain.returncode == 3, ours.stderr
    assert json.loads(ours.stdout) == json.loads(plain.stdout)


def test_code_mode_matches_plain_python():
    code = "import sys; print(sys.argv, __name__, repr(sys.path[0])); sys.exit(4)"
    plain = run("plain", ["-c", code, "a", "b"])
    ours = run("cli", ["-c", code, "a", "b"])
    assert ours.returncode == plain.returncode == 4, ours.stderr
    assert ours.stdout == plain.stdout


def test_uncaught_exception_exits_1_like_python():
    ours = run("cli", ["-c", "raise KeyError('nope')"])
    assert ours.returncode == 1
    assert "KeyError: 'nope'" in ours.stderr


def test_missing_script_is_exit_2():
    ours = run("cli", ["no_such_script.py"])
    assert ours.returncode == 2
    assert "can't open file 'no_such_script.py'" in ours.stderr


def test_help_explains_the_options():
    out = run("cli", ["--help"]).stdout
    for option in ("--backend", "--workers", "--redis-url", "-v", "-m module", "-c code",
                   "--sitecustomize-dir", "TRANSPARENT_MP_WORKERS"):
        assert option in out


def test_sitecustomize_dir_is_printed():
    folder = Path(run("cli", ["--sitecustomize-dir"]).stdout.strip())
    assert (folder / "sitecustomize.py").is_file()


def test_workers_flag_sets_cpu_count_and_wins_over_the_environment():
    code = "import multiprocessing; print(multiprocessing.cpu_count())"
    assert run("cli", ["--workers", "7", "-c", code]).stdout.strip() == "7"
    env = {"TRANSPARENT_MP_WORKERS": "5"}
    assert run("cli", ["-c", code], env=env).stdout.strip() == "5"
    assert run("cli", ["--workers", "3", "-c", code], env=env).stdout.strip() == "3"


def test_bad_option_value_is_a_usage_error():
    result = run("cli", ["--workers", "-2", "-c", "pass"])
    assert result.returncode == 2
    assert "workers must be >= 0" in result.stderr


def test_child_output_arrives_while_the_child_runs(tmp_path):
    go = tmp_path / "go"
    argv, env = command("cli", ["child_output.py", str(go)])
    with subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline() == "first line from the child\n"
            go.touch()  # only now may the child go on
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert out.splitlines() == ["second line from the child", "child exit code 0"]
    assert "a line on stderr" in err


def test_stdout_and_stderr_of_plain_python_match(tmp_path):
    go = tmp_path / "go"
    go.touch()
    plain = run("plain", ["child_output.py", str(go)])
    ours = run("cli", ["child_output.py", str(go)])
    assert ours.stdout == plain.stdout
    assert ours.stderr == plain.stderr


def test_runs_from_another_directory_with_a_relative_script(tmp_path):
    result = subprocess.run([sys.executable, "-m", "transparent_mp", "report_main.py"],
                            cwd=APPS, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr


def test_app_modules_travel_as_source():
    result = run("cli", ["uses_helper.py"], env={"APP_DIR": str(APPS)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "hello from helper_mod loaded from the worker's copy: True", "exit code 0"]
