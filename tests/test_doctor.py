"""``python -m transparent_mp doctor``: the control-plane checks against moto, the
store checks against a real redis-server, the probe's reading of an answer."""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_deploy import FUNCTION, REGION, Aws, clean_aws_env, moto_aws

from transparent_mp import __version__, cli, doctor
from transparent_mp.store.server import EmbeddedServer

CLOUDPICKLE = importlib.metadata.version("cloudpickle")
GOOD_ANSWER = {"python": platform.python_version(), "cloudpickle": CLOUDPICKLE,
               "transparent_mp": __version__, "store": "ok"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    yield from moto_aws(monkeypatch, tmp_path)


@pytest.fixture
def tcp_redis() -> Iterator[EmbeddedServer]:
    """A real redis-server with a password on a loopback port."""
    server = EmbeddedServer(tcp_port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """doctor.probe answers GOOD_ANSWER (moto cannot invoke without Docker); its calls."""
    calls = []

    def fake_probe(client: object, name: str, url: str) -> dict:
        calls.append((name, url))
        return dict(GOOD_ANSWER)

    monkeypatch.setattr(doctor, "probe", fake_probe)
    return calls


def lines(out: str) -> dict[str, str]:
    """Each check's line, by its name."""
    found = {}
    for line in out.splitlines():
        status, rest = line.split(None, 1)
        name, detail = rest.split(": ", 1)
        found[name] = f"{status} {detail}"
    return found


def doctor_main(*args: str) -> int:
    return doctor.main(["--function", FUNCTION, "--region", REGION, *args])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_missing_function_fails_with_advice(aws, tcp_redis, probed, capsys):
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    checks = lines(capsys.readouterr().out)
    assert checks["credentials"].startswith("ok account 123456789012")
    assert checks["function"].startswith(f"FAIL {FUNCTION} does not exist in {REGION}")
    assert "python -m transparent_mp deploy --role" in checks["function"]
    assert checks["store reach"].startswith("ok")
    assert probed == []


def test_a_deployed_function_passes(aws, tcp_redis, probed, capsys):
    assert aws.deploy("--role", aws.role, "--memory", "2048") == 0
    capsys.readouterr()
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 0
    checks = lines(capsys.readouterr().out)
    assert checks["function"].startswith("ok arn:aws:lambda:")
    assert "2048 MB, timeout 900 s" in checks["function"]
    assert checks["handler"] == "ok transparent_mp.worker.handler"
    assert checks["runtime"] == f"ok python3.{sys.version_info.minor}"
    assert checks["retries"].startswith("ok")
    assert checks["store password"].startswith("ok")
    assert checks["store TLS"].startswith("warn plain redis://")  # a warning does not fail
    assert checks["store reach"].startswith("ok")
    assert checks["probe python"].startswith("ok") and checks["probe store"].startswith("ok")
    assert checks["concurrency"].startswith("warn not checked")  # moto lacks the call
    assert probed == [(FUNCTION, tcp_redis.tcp_url)]


def test_retries_left_on_fail(aws, tcp_redis, probed, capsys):
    assert aws.deploy("--role", aws.role) == 0
    aws.client.delete_function_event_invoke_config(FunctionName=FUNCTION)  # Lambda's default: 2
    capsys.readouterr()
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    retries = lines(capsys.readouterr().out)["retries"]
    assert retries.startswith("FAIL MaximumRetryAttempts is 2: Lambda would retry")
    assert "run python -m transparent_mp deploy again" in retries

    aws.client.put_function_event_invoke_config(FunctionName=FUNCTION, MaximumRetryAttempts=1)
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    assert lines(capsys.readouterr().out)["retries"].startswith(
        "FAIL MaximumRetryAttempts is 1")


def test_wrong_handler_and_runtime_fail(aws, tcp_redis, probed, capsys):
    assert aws.deploy("--role", aws.role) == 0
    aws.client.update_function_configuration(
        FunctionName=FUNCTION, Handler="app.handler", Runtime="python3.9")
    capsys.readouterr()
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    checks = lines(capsys.readouterr().out)
    assert checks["handler"].startswith("FAIL app.handler, not transparent_mp.worker.handler")
    assert checks["runtime"].startswith("FAIL the function runs python3.9")


def test_a_probe_answer_that_differs_fails_naming_both_sides(aws, tcp_redis, monkeypatch,
                                                              capsys):
    assert aws.deploy("--role", aws.role) == 0
    answer = {"python": "3.9.18", "cloudpickle": "2.2.1", "transparent_mp": __version__,
              "store": "Error 110 connecting to 10.0.0.5:6379. Connection timed out."}
    monkeypatch.setattr(doctor, "probe", lambda *args: answer)
    capsys.readouterr()
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    checks = lines(capsys.readouterr().out)
    assert checks["probe python"].startswith(
        f"FAIL the function runs Python 3.9.18, this driver {platform.python_version()}")
    assert checks["probe cloudpickle"].startswith(
        f"FAIL the function has cloudpickle 2.2.1, this driver {CLOUDPICKLE}")
    assert "Connection timed out" in checks["probe store"]
    assert "--subnet and --security-group" in checks["probe store"]


def test_a_failing_probe_fails_the_check(aws, tcp_redis, monkeypatch, capsys):
    assert aws.deploy("--role", aws.role) == 0

    def failing(*args: object) -> dict:
        raise doctor.ProbeFailed("the function failed (Unhandled): ImportError: no hiredis")

    monkeypatch.setattr(doctor, "probe", failing)
    capsys.readouterr()
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    probe_line = lines(capsys.readouterr().out)["probe"]
    assert probe_line.startswith("FAIL the function failed (Unhandled): ImportError: no hiredis")
    assert f"/aws/lambda/{FUNCTION}" in probe_line


class StubLambda:
    """What probe() and check_concurrency() use of a Lambda client."""

    def __init__(self, payload: bytes, function_error: str | None = None,
                 unreserved: int = 1000) -> None:
        self.payload, self.function_error, self.unreserved = payload, function_error, unreserved
        self.invoked: list[dict] = []

    def invoke(self, **kwargs: object) -> dict:
        self.invoked.append(kwargs)
        response = {"StatusCode": 200, "Payload": io.BytesIO(self.payload)}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response

    def get_account_settings(self) -> dict:
        return {"AccountLimit": {"UnreservedConcurrentExecutions": self.unreserved}}


def test_probe_sends_the_probe_event_and_returns_the_answer():
    client = StubLambda(json.dumps(GOOD_ANSWER).encode())
    assert doctor.probe(client, FUNCTION, "rediss://:pw@h:6379") == GOOD_ANSWER
    [call] = client.invoked
    assert call["FunctionName"] == FUNCTION
    assert call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"probe": {"store_url": "rediss://:pw@h:6379"}}


def test_probe_raises_on_a_function_error_or_a_stranger_answer():
    error = {"errorType": "ModuleNotFoundError", "errorMessage": "No module named 'hiredis'"}
    with pytest.raises(doctor.ProbeFailed, match="Unhandled.*ModuleNotFoundError: No module"):
        doctor.probe(StubLambda(json.dumps(error).encode(), "Unhandled"), FUNCTION, "")
    with pytest.raises(doctor.ProbeFailed, match="not the probe's JSON object"):
        doctor.probe(StubLambda(b'"hello"'), FUNCTION, "")


@pytest.mark.parametrize("url_of, check, expected", [
    (lambda s: "", "store", "FAIL no Redis URL"),
    (lambda s: s.url, "store", "FAIL unix:///"),
    (lambda s: s.tcp_url.replace(s.password, "wrong"), "store reach",
     "FAIL this machine cannot use the store"),
    (lambda s: s.tcp_url.split(":", 1)[0] + "://" + s.tcp_url.split("@", 1)[1],
     "store password", "FAIL the URL has none"),
    (lambda s: f"rediss://:pw@127.0.0.1:{free_port()}", "store TLS", "ok rediss://"),
    (lambda s: f"rediss://:pw@127.0.0.1:{free_port()}", "store reach",
     "FAIL this machine cannot use the store"),
])
def test_store_checks(tcp_redis, capsys, url_of, check, expected):
    report = doctor.Report()
    doctor.check_store(report, url_of(tcp_redis))
    out = capsys.readouterr().out
    assert lines(out)[check].startswith(expected), out
    assert report.failed
    assert tcp_redis.password not in out  # the password is never printed


def test_no_url_advises_a_rediss_url(capsys):
    doctor.check_store(doctor.Report(), "")
    assert "rediss://:PASSWORD@HOST:6379" in capsys.readouterr().out


def test_concurrency_above_the_account_limit_warns(capsys):
    report = doctor.Report()
    doctor.check_concurrency(report, StubLambda(b"", unreserved=5), {}, workers=8)
    doctor.check_concurrency(report, StubLambda(b""), {"Concurrency": {
        "ReservedConcurrentExecutions": 3}}, workers=0)  # 0: the lambda default, 10
    doctor.check_concurrency(report, StubLambda(b"", unreserved=50), {}, workers=20)
    warned, reserved, fine = capsys.readouterr().out.splitlines()
    assert warned.startswith("warn  concurrency: workers is 8 but the account's unreserved one "
                             "is 5")
    assert reserved.startswith("warn  concurrency: workers is 10 but the function's reserved")
    assert fine.startswith("ok    concurrency:")
    assert not report.failed


def test_no_credentials_fail_and_the_store_is_still_checked(monkeypatch, tmp_path, tcp_redis,
                                                            capsys):
    clean_aws_env(monkeypatch, tmp_path)
    assert doctor_main("--redis-url", tcp_redis.tcp_url) == 1
    captured = capsys.readouterr()
    checks = lines(captured.out)
    assert checks["credentials"].startswith("FAIL boto3 finds no AWS credentials")
    assert "function" not in checks
    assert checks["store reach"].startswith("ok")
    assert "Traceback" not in captured.err


def test_without_boto3_it_says_which_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "boto3", None)
    assert doctor_main("--redis-url", "") == 1
    assert "pip install 'transparent-mp[aws]'" in lines(capsys.readouterr().out)["credentials"]


def test_the_cli_dispatches_doctor(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["doctor", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m transparent_mp doctor")
