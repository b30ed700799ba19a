"""The lambda backend end to end, through the real parts: the package ``deploy``
builds, the real boto3 client, a Lambda emulator running the real runtime
interface client (``python -m awslambdaric``) and a real redis-server on loopback."""

from __future__ import annotations

import io
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest
from conftest import ROOT, program_env, run
from lambda_emulator import LambdaEmulator
from test_fork import FORK_PROGRAMS, logged

from transparent_mp import deploy
from transparent_mp.store.server import EmbeddedServer

#: The application's dependencies as a layer (as a user names theirs): this
#: environment's site-packages, after the package on the function's path.
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
#: The end-to-end suites of the local backend that must pass on lambda too.
SUITES = ["test_process.py", "test_queues.py", "test_connection.py", "test_synchronize.py",
          "test_sharedctypes.py", "test_pool.py", "test_managers.py", "test_futures.py"]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("package") / "function.zip"
    path.write_bytes(deploy.build().data)
    return path


@pytest.fixture(scope="module")
def store() -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tcp_port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def emulator(package: Path) -> Iterator[LambdaEmulator]:
    with LambdaEmulator(package, concurrency=8, timeout=120, layers=[SITE_PACKAGES]) as emu:
        yield emu


def lambda_env(emu: LambdaEmulator, store: EmbeddedServer, **extra: str) -> dict[str, str]:
    """The environment of a driver on the lambda backend, pointed at ``emu``."""
    settings = {"BACKEND": "lambda", "REDIS_URL": store.tcp_url, "WORKERS": "8",
                "LAMBDA_ENDPOINT_URL": emu.endpoint_url, "AWS_REGION": "us-east-1",
                "HEARTBEAT": "0.2"}
    settings.update(extra)
    env = program_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.update({f"TRANSPARENT_MP_{k}": v for k, v in settings.items()})
    return env


def run_on(emu: LambdaEmulator, store: EmbeddedServer, target: list[str],
           **extra: str) -> subprocess.CompletedProcess:
    return run("cli", target, env=lambda_env(emu, store, **extra))


def usage(stderr: str) -> dict[str, str]:
    """The fields of the driver's ``lambda ...`` usage line."""
    line = next(line for line in stderr.splitlines() if "] lambda function=" in line)
    return dict(field.split("=", 1) for field in line.split()[1:] if "=" in field)


@pytest.mark.timeout(900)
def test_the_local_backends_suites_pass_on_lambda(emulator, store):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
        cwd=ROOT / "tests", env=lambda_env(emulator, store), capture_output=True, text=True,
        timeout=880)
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and "failed" not in result.stdout, tail
    assert "] lambda function=" in result.stderr  # the run's usage and cost, at exit
    assert emulator.stats.crashes == emulator.stats.timeouts == 0


def test_processes_run_as_invocations_and_their_output_comes_back(emulator, store):
    before = emulator.stats.invokes
    result = run_on(emulator, store, ["on_lambda.py", "hello", "3"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines[:3]) == ["hello from p0", "hello from p1", "hello from p2"]
    assert lines[3] == "exitcodes [0, 0, 0] distinct pids 3"
    assert emulator.stats.invokes - before == 3
    fields = usage(result.stderr)
    assert fields["requests"] == "3" and float(fields["gb_seconds"]) > 0
    assert fields["estimated_cost"].startswith("$")


def test_throttled_invokes_are_retried(emulator, store):
    emulator.throttle(4)
    result = run_on(emulator, store, ["on_lambda.py", "hello", "2"])
    assert result.returncode == 0, result.stderr
    assert "exitcodes [0, 0]" in result.stdout
    fields = usage(result.stderr)
    assert (fields["throttled"], fields["requests"]) == ("4", "2")


def test_the_concurrency_is_never_exceeded(emulator, store):
    result = run_on(emulator, store, ["on_lambda.py", "overlap", "6"], WORKERS="2")
    assert result.returncode == 0, result.stderr
    assert "exitcodes [0, 0, 0, 0, 0, 0] most at once 2" in result.stdout
    assert "wait for one of the 2 running" in result.stderr


def test_a_killed_function_is_a_killed_process(emulator, store):
    result = run_on(emulator, store, ["on_lambda.py", "crash"])
    assert result.returncode == 0, result.stderr
    assert "exitcode -9" in result.stdout
    assert "stopped sending heartbeats" in result.stderr
    assert "lost=1" in result.stderr


def test_a_pool_requeues_the_tasks_of_a_killed_function(emulator, store, tmp_path):
    marker = tmp_path / "killed-once"
    result = run_on(emulator, store, ["on_lambda.py", "pool-crash", str(marker)])
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert "results [0, 2, 4, 6]" in result.stdout


def test_the_time_limit_ends_a_process_with_a_clear_error(package, store):
    with LambdaEmulator(package, concurrency=2, timeout=4) as emu:
        result = run_on(emu, store, ["on_lambda.py", "sleep", "30"])
        assert result.returncode == 0, result.stderr
        assert "exitcode -9" in result.stdout
        assert "was still running at the function's time limit of 4 s" in result.stderr
        assert emu.stats.timeouts == 0  # ended by the handler, before Lambda's own kill


def test_pool_workers_retire_before_the_time_limit(package, store):
    with LambdaEmulator(package, concurrency=2, timeout=4) as emu:
        result = run_on(emu, store, ["on_lambda.py", "pool-retire", "12"])
        assert result.returncode == 0, result.stderr
        assert "results [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]" in result.stdout
        assert emu.stats.timeouts == 0
        assert emu.stats.invokes >= 2  # 6 s of work: the worker was replaced


def test_warm_environments_serve_another_run_with_its_own_main(package, store, tmp_path):
    for offset in (1, 100):
        (tmp_path / f"app{offset}.py").write_text(
            "import multiprocessing as mp\n"
            f"def double(x):\n    return 2 * x + {offset}\n"
            "if __name__ == '__main__':\n"
            "    with mp.Pool(1) as pool:\n"
            "        print('value', pool.apply(double, (5,)))\n")
    with LambdaEmulator(package, concurrency=1, timeout=60) as emu:
        first = run("cli", [str(tmp_path / "app1.py")], cwd=tmp_path, env=lambda_env(emu, store))
        second = run("cli", [str(tmp_path / "app100.py")], cwd=tmp_path,
                     env=lambda_env(emu, store))
        assert (first.stdout, second.stdout) == ("value 11\n", "value 110\n"), second.stderr
        assert emu.stats.cold_starts == 1


def test_a_function_with_other_versions_refuses_the_invocation(tmp_path, store):
    """The version guard: the function's cloudpickle differs from the driver's."""
    original = deploy.build().data
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "cloudpickle/__init__.py":
                data = data.replace(cloudpickle.__version__.encode(), b"0.0.1")
            dst.writestr(info, data)
    path = tmp_path / "other.zip"
    path.write_bytes(tampered.getvalue())
    with LambdaEmulator(path, concurrency=1, timeout=60) as emu:
        result = run_on(emu, store, ["on_lambda.py", "version"])
    assert result.returncode == 0, result.stderr
    assert "exitcode 1" in result.stdout
    assert (f"cloudpickle 0.0.1, but the driver runs Python "
            f"{sys.version_info[0]}.{sys.version_info[1]} with cloudpickle "
            f"{cloudpickle.__version__}") in result.stderr
    assert "second start: the Lambda function runs" in result.stdout


def test_lambda_with_the_embedded_store_is_an_error_before_anything_runs():
    result = run("cli", ["--backend", "lambda", "on_lambda.py", "hello", "1"])
    assert result.returncode == 2
    assert "needs a Redis that the functions can reach" in result.stderr
    assert result.stdout == ""


@pytest.mark.timeout(300)
def test_the_scikit_learn_example_gives_the_same_result_on_lambda(emulator, store):
    path = str(ROOT / "examples" / "sklearn_search.py")
    plain = run("plain", [path])
    ours = run("cli", [path], env=lambda_env(emulator, store))
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr[-3000:]
    assert ours.stdout == plain.stdout
    assert int(usage(ours.stderr)["requests"]) > 0



def test_doctor_checks_the_deployed_function_by_invoking_it(emulator, store):
    result = run("cli", ["doctor", "--redis-url", store.tcp_url],
                 env=lambda_env(emulator, store))
    assert result.returncode == 0, result.stdout + result.stderr
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"ok    probe python: the function runs Python {py}" in result.stdout
    assert f"ok    probe cloudpickle: {cloudpickle.__version__}" in result.stdout
    assert "ok    probe store: the function reaches the store" in result.stdout


def test_doctor_says_what_to_do_when_the_function_cannot_reach_the_store(emulator, store):
    unreachable = "redis://:secret@127.0.0.1:1"
    result = run("cli", ["doctor", "--redis-url", unreachable], env=lambda_env(emulator, store))
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("FAIL  probe store"))
    assert "--subnet and --security-group" in line
    assert "secret" not in result.stdout  # the password is never printed


def test_a_store_lost_for_good_ends_the_running_processes(package):
    server = EmbeddedServer(tcp_port=0)
    try:
        with LambdaEmulator(package, concurrency=2, timeout=60) as emu:
            argv = [sys.executable, "-m", "transparent_mp", "on_lambda.py", "sleep", "30"]
            proc = subprocess.Popen(argv, cwd=ROOT / "tests" / "apps", text=True,
                                    env=lambda_env(emu, server), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            try:
                emu_deadline = time.monotonic() + 60
                while not emu.stats.invokes and time.monotonic() < emu_deadline:
                    time.sleep(0.05)  # polling the emulator: the process has been invoked
                server.process.kill()
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    finally:
        server.stop()
    assert "exitcode -9" in out, err
    assert "ended as lost: the store has not answered" in err


@pytest.mark.parametrize("program", FORK_PROGRAMS)
def test_fork_programs_give_plain_pythons_output_on_lambda(emulator, store, program):
    plain = run("plain", [program])
    ours = run_on(emulator, store, [program])
    assert plain.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert logged(ours.stderr) == logged(plain.stderr)


def test_a_main_module_that_fails_in_the_worker_is_reported(emulator, store, tmp_path):
    (tmp_path / "fails.py").write_text(
        "import multiprocessing as mp\n"
        "if __name__ != '__main__':\n"
        "    raise RuntimeError('boom in the worker')\n"
        "def noop():\n    pass\n"
        "if __name__ == '__main__':\n"  # (spawn: a fork child does not import main)
        "    p = mp.get_context('spawn').Process(target=noop)\n"
        "    p.start()\n"
        "    p.join(60)\n"
        "    print('exitcode', p.exitcode)\n")
    result = run("cli", [str(tmp_path / "fails.py")], cwd=tmp_path,
                 env=lambda_env(emulator, store))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exitcode 1\n"
    assert "RuntimeError: boom in the worker" in result.stderr
