"""The tests' Lambda emulator, driven by the real boto3 client against a function
that runs under the real runtime interface client (awslambdaric)."""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from conftest import pid_alive
from lambda_emulator import LambdaEmulator

NAME = "transparent-mp"

HANDLER_SOURCE = '''
import importlib.util, os, signal, sys, time
from pathlib import Path

def handler(event, context):
    op = event.get("op", "echo")
    if op == "echo":
        return event
    if op == "fail":
        raise ValueError("boom: " + str(event.get("why")))
    if op == "sleep":
        time.sleep(event["seconds"])
        return {"slept": event["seconds"]}
    if op == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if op == "touch":
        Path(event["path"]).write_text(context.aws_request_id)
        return None
    if op == "info":
        print("info from", os.getpid())
        return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis(),
                "request_id": context.aws_request_id, "path": sys.path,
                "environ": dict(os.environ), "cwd": os.getcwd(),
                "boto3": importlib.util.find_spec("boto3") is not None,
                "no_site": sys.flags.no_site,
                "client_context": context.client_context and context.client_context.custom,
                "layer_module": importlib.util.find_spec("layer_module") is not None}
    raise KeyError(op)
'''


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("function") / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("echo_handler.py", HANDLER_SOURCE)
    return path


@pytest.fixture
def emulator(package: Path) -> Iterator[Callable[..., LambdaEmulator]]:
    """Start emulators of the test's function; every one is stopped afterwards,
    leaving no environment process running."""
    started: list[LambdaEmulator] = []

    def start(**kwargs: Any) -> LambdaEmulator:
        kwargs.setdefault("handler", "echo_handler.handler")
        kwargs.setdefault("timeout", 10)
        emu = LambdaEmulator(package, **kwargs).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
    for emu in started:
        assert not [r.pid for r in emu.records if pid_alive(r.pid)]
        assert not emu.task_root.exists()


def client(emu: LambdaEmulator) -> Any:
    return boto3.client("lambda", endpoint_url=emu.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"total_max_attempts": 1}))


def invoke(lam: Any, event: dict, kind: str = "RequestResponse",
           name: str = NAME) -> tuple[dict, Any]:
    """The Invoke response and its decoded payload (None when there is none)."""
    response = lam.invoke(FunctionName=name, InvocationType=kind, Payload=json.dumps(event))
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def poll(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


def test_request_response_returns_the_payload(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator()
    lam = client(emu)
    event = {"op": "echo", "text": "hé", "big": "x" * 1_000_000}
    response, payload = invoke(lam, event)
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload == event
    # an ARN (with a qualifier) names the function too; no payload is {}
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}:$LATEST"
    response = lam.invoke(FunctionName=arn)
    assert json.loads(response["Payload"].read()) == {}
    assert [r.outcome for r in emu.records] == ["success", "success"]
    assert emu.records[1].request_id == response["ResponseMetadata"]["RequestId"]
    assert emu.stats.invokes == 2 and emu.stats.completed == 2 and emu.stats.cold_starts == 1


def test_handler_error_is_a_function_error(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator()
    lam = client(emu)
    response, payload = invoke(lam, {"op": "fail", "why": "testing"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "boom: testing"
    assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert "ValueError: boom: testing" in emu.logs()
    # a handled error keeps the environment warm
    first = emu.records[0].pid
    _, info = invoke(lam, {"op": "info"})
    assert info["pid"] == first
    assert [r.outcome for r in emu.records] == ["error", "success"]
    assert emu.stats.errors == 1 and emu.stats.cold_starts == 1


def test_event_is_accepted_at_once_and_runs(emulator: Callable[..., LambdaEmulator],
                                            tmp_path: Path) -> None:
    emu = emulator()
    lam = client(emu)
    marker = tmp_path / "ran"
    response, payload = invoke(lam, {"op": "touch", "path": str(marker)}, kind="Event")
    assert response["StatusCode"] == 202 and payload is None
    request_id = response["ResponseMetadata"]["RequestId"]
    assert poll(marker.exists)
    assert marker.read_text() == request_id
    assert emu.wait_idle(10)
    (record,) = emu.records
    assert (record.request_id, record.invocation_type, record.outcome) == (
        request_id, "Event", "success")


def test_dry_run_and_unknown_function(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator()
    lam = client(emu)
    assert lam.invoke(FunctionName=NAME, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_configuration(FunctionName="no-such-function")
    assert emu.stats.invokes == 0 and emu.records == []


def test_timeout_kills_the_environment(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator(timeout=1)
    lam = client(emu)
    _, info = invoke(lam, {"op": "info"})
    assert 0 < info["remaining_ms"] <= 1000
    started = time.monotonic()
    response, payload = invoke(lam, {"op": "sleep", "seconds": 30})
    assert time.monotonic() - started < 5
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorMessage"].endswith(
        f"{response['ResponseMetadata']['RequestId']} Task timed out after 1.00 seconds")
    assert poll(lambda: not pid_alive(info["pid"]))
    # the next invocation starts a new environment
    _, again = invoke(lam, {"op": "info"})
    assert again["pid"] != info["pid"]
    assert [r.outcome for r in emu.records] == ["success", "timeout", "success"]
    assert 1.0 <= emu.records[1].duration_s < 3
    assert emu.stats.timeouts == 1 and emu.stats.cold_starts == 2
    assert "Task timed out after 1.00 seconds" in emu.logs()


def test_crash_is_recorded(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator()
    lam = client(emu)
    response, payload = invoke(lam, {"op": "crash"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in payload["errorMessage"]
    # an asynchronous one too; then a new environment serves the next
    invoke(lam, {"op": "crash"}, kind="Event")
    assert emu.wait_idle(10)
    _, info = invoke(lam, {"op": "info"})
    assert info["pid"] not in {r.pid for r in emu.records[:2]}
    assert [r.outcome for r in emu.records] == ["crash", "crash", "success"]
    assert emu.stats.crashes == 2 and emu.stats.cold_starts == 3


def test_concurrency_is_never_exceeded(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator(concurrency=3)
    lam = client(emu)
    for _ in range(12):
        response, _ = invoke(lam, {"op": "sleep", "seconds": 0.1}, kind="Event")
        assert response["StatusCode"] == 202
    assert emu.wait_idle(20)
    assert emu.stats.max_concurrent == 3
    assert emu.stats.cold_starts == 3
    assert emu.stats.invokes == emu.stats.completed == emu.stats.successes == 12
    assert len({r.pid for r in emu.records}) == 3
    assert all(r.outcome == "success" for r in emu.records)


def test_warm_environment_is_reused(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator(timeout=30)
    lam = client(emu)
    _, first = invoke(lam, {"op": "info"})
    _, second = invoke(lam, {"op": "info"})
    assert first["pid"] == second["pid"]
    assert first["request_id"] != second["request_id"]
    assert 25_000 < second["remaining_ms"] <= 30_000
    assert emu.records[0].init_s is not None and emu.records[1].init_s is None
    assert emu.stats.cold_starts == 1
    assert emu.logs().count(f"info from {first['pid']}") == 2


def test_throttle_raises_too_many_requests(emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator()
    lam = client(emu)
    emu.throttle(2)
    for kind in ("RequestResponse", "Event"):
        with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
            invoke(lam, {}, kind=kind)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert caught.value.response["Reason"] == (
            "ReservedFunctionConcurrentInvocationLimitExceeded")
    response, _ = invoke(lam, {})
    assert response["StatusCode"] == 200
    assert emu.stats.throttled == 2 and emu.stats.invokes == 1


def test_control_plane_reads(emulator: Callable[..., LambdaEmulator], package: Path) -> None:
    import base64
    import hashlib
    import sys

    emu = emulator(timeout=2.5, memory_mb=2048, env={"A": "1"})
    lam = client(emu)
    config = lam.get_function_configuration(FunctionName=NAME)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}"
    assert config["FunctionName"] == NAME and config["FunctionArn"] == arn
    assert config["Runtime"] == f"python3.{sys.version_info.minor}"
    assert config["Handler"] == "echo_handler.handler"
    assert (config["Timeout"], config["MemorySize"]) == (3, 2048)
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
    assert config["PackageType"] == "Zip" and config["Architectures"] == ["x86_64"]
    sha = base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()
    assert config["CodeSha256"] == sha
    assert config["Environment"]["Variables"] == {"A": "1"}
    function = lam.get_function(FunctionName=arn)
    assert function["Configuration"]["CodeSha256"] == sha
    assert function["Code"]["RepositoryType"] == "S3" and function["Code"]["Location"]
    event_config = lam.get_function_event_invoke_config(FunctionName=NAME)
    assert event_config["MaximumRetryAttempts"] == 0
    assert event_config["MaximumEventAgeInSeconds"] == 21600
    assert event_config["FunctionArn"].startswith(arn)


def test_function_sees_a_lambda_environment(emulator: Callable[..., LambdaEmulator],
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPARENT_MP_BACKEND", "local")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "layer_module.py").write_text("")
    emu = emulator(layers=[layer], env={"EXTRA": "yes"}, memory_mb=512)
    _, info = invoke(client(emu), {"op": "info"})
    path = info["path"]
    # task root first, then the layers, then the runtime; no site-packages at all
    assert path.index(str(emu.task_root)) < path.index(str(layer)) < path.index(
        str(emu.runtime_dir))
    assert not [p for p in path if "site-packages" in p]
    assert info["no_site"] and not info["boto3"] and info["layer_module"]
    assert info["cwd"] == str(emu.task_root)
    environ = info["environ"]
    assert not [k for k in environ if k.startswith("TRANSPARENT_MP_")]
    assert environ["PYTHONPATH"].split(os.pathsep)[0] == str(emu.task_root)
    assert environ["EXTRA"] == "yes"
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == NAME
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_REGION"] == "us-east-1" and environ["TZ"] == ":UTC"
    assert environ["_HANDLER"] == "echo_handler.handler"


def test_client_context_reaches_the_handler(emulator: Callable[..., LambdaEmulator]) -> None:
    import base64

    emu = emulator()
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response = client(emu).invoke(FunctionName=NAME, ClientContext=context,
                                  Payload=json.dumps({"op": "info"}))
    assert json.loads(response["Payload"].read())["client_context"] == {"k": "v"}


def test_init_error_is_an_unhandled_function_error(
        emulator: Callable[..., LambdaEmulator]) -> None:
    emu = emulator(handler="missing_module.handler")
    response, payload = invoke(client(emu), {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in payload["errorMessage"]
    assert [r.outcome for r in emu.records] == ["error"]
    assert emu.wait_idle(10)
    assert poll(lambda: not pid_alive(emu.records[0].pid))
    emu.stop()
    assert "Runtime.ImportModuleError" in emu.logs()  # the log outlives the temp dir
