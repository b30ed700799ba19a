"""``python -m transparent_mp doctor``: check that runs can use the ``lambda`` backend.

Each check prints one line, ``ok``, ``warn`` or ``FAIL`` with what to do; the
exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlparse

from . import __version__, config
from .deploy import HANDLER, RUNTIME, add_function_options, aws_error

_DEPLOY = "python -m transparent_mp deploy"
_VPC_ADVICE = ("deploy with --subnet and --security-group of the store's VPC (its security group "
               "letting the function's in on the store's port), or use a TLS endpoint the "
               "internet can reach")


class ProbeFailed(Exception):
    """The function did not answer the probe."""


class Report:
    """The check lines, printed as they come, and whether any failed."""

    def __init__(self) -> None:
        self.failed = False

    def ok(self, what: str, detail: str) -> None:
        print(f"ok    {what}: {detail}", flush=True)

    def warn(self, what: str, detail: str, advice: str) -> None:
        print(f"warn  {what}: {detail}: {advice}", flush=True)

    def fail(self, what: str, detail: str, advice: str = "") -> None:
        self.failed = True
        print(f"FAIL  {what}: {detail}" + (f": {advice}" if advice else ""), flush=True)


def probe(client: Any, function_name: str, store_url: str) -> dict[str, Any]:
    """Invoke the function synchronously with the probe event; its answer
    (``python``, ``cloudpickle``, ``transparent_mp`` versions and ``store``)."""
    response = client.invoke(
        FunctionName=function_name, InvocationType="RequestResponse",
        Payload=json.dumps({"probe": {"store_url": store_url}}).encode())
    body = response["Payload"].read()
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if response.get("FunctionError"):
        if isinstance(answer, dict) and "errorMessage" in answer:
            body = f"{answer.get('errorType', 'Error')}: {answer['errorMessage']}".encode()
        raise ProbeFailed(f"the function failed ({response['FunctionError']}): "
                          f"{body[:500].decode(errors='replace')}")
    if not isinstance(answer, dict):
        raise ProbeFailed(f"the function answered {body[:200]!r}, not the probe's JSON object "
                          f"(is its handler {HANDLER}?)")
    return answer


def check_credentials(report: Report, region: str, endpoint_url: str) -> Any:
    """Credentials and region; the Lambda client, or None when they are missing."""
    try:
        import boto3
    except ImportError:
        report.fail("credentials", "boto3 is not installed", "pip install 'transparent-mp[aws]'")
        return None
    session = boto3.Session(region_name=region or None)
    credentials = session.get_credentials()
    if credentials is None:
        report.fail("credentials", "boto3 finds no AWS credentials",
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
                    "or run `aws configure`")
        return None
    if not session.region_name:
        report.fail("credentials", "no AWS region",
                    "give --region, or set TRANSPARENT_MP_AWS_REGION or AWS_REGION")
        return None
    if endpoint_url:
        report.ok("credentials", f"found ({credentials.method}); endpoint {endpoint_url}")
    else:
        identity = session.client("sts").get_caller_identity()
        report.ok("credentials", f"account {identity['Account']} as {identity['Arn']}")
    return session.client("lambda", endpoint_url=endpoint_url or None)


def check_function(report: Report, client: Any, name: str) -> dict[str, Any] | None:
    """The function's state, handler, runtime and retries; ``get_function``'s answer."""
    try:
        found = client.get_function(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        report.fail("function", f"{name} does not exist in {client.meta.region_name}",
                    f"create it: {_DEPLOY} --role ROLE_ARN")
        return None
    conf = found["Configuration"]
    state = conf.get("State", "Active")
    if state != "Active":
        report.fail("function", f"{name} is {state} ({conf.get('StateReason', '')})",
                    f"wait a minute; if it stays so, run {_DEPLOY} again")
    else:
        report.ok("function", f"{conf['FunctionArn']} is Active: {conf.get('MemorySize')} MB, "
                              f"timeout {conf.get('Timeout')} s, "
                              f"{'/'.join(conf.get('Architectures', ['x86_64']))}")
    if conf.get("PackageType") == "Image":
        report.ok("handler", "a container image: its handler and Python are checked by the probe")
    else:
        if conf.get("Handler") == HANDLER:
            report.ok("handler", HANDLER)
        else:
            report.fail("handler", f"{conf.get('Handler')}, not {HANDLER}", f"run {_DEPLOY}")
        if conf.get("Runtime") == RUNTIME:
            report.ok("runtime", RUNTIME)
        else:
            report.fail("runtime", f"the function runs {conf.get('Runtime')}, this driver "
                                   f"{RUNTIME}", f"run {_DEPLOY} from this Python")
    try:
        invoke_config = client.get_function_event_invoke_config(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        invoke_config = {}
    retries = invoke_config.get("MaximumRetryAttempts")
    retries = 2 if retries is None else retries  # Lambda's default
    if retries == 0:
        report.ok("retries", "Lambda does not retry a failed invocation (the driver decides)")
    else:
        report.fail("retries", f"MaximumRetryAttempts is {retries}: Lambda would retry a failed "
                               "invocation, running a Process's side effects twice",
                    f"run {_DEPLOY} again (it sets MaximumRetryAttempts to 0)")
    return found


def check_store(report: Report, url: str) -> None:
    """A store URL Lambda can use, with a password and TLS, that this machine reaches."""
    from .store.resp import ping, redacted

    if not url:
        report.fail("store", "no Redis URL, so runs start an embedded server on this machine, "
                             "which Lambda cannot reach",
                    "give --redis-url (or set TRANSPARENT_MP_REDIS_URL) to "
                    "rediss://:PASSWORD@HOST:6379, e.g. ElastiCache in the function's VPC")
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        report.fail("store", f"{redacted(url)} is not a network address Lambda can reach",
                    "give a rediss://:PASSWORD@HOST:6379 URL")
        return
    if parsed.password or parse_qs(parsed.query).get("password"):
        report.ok("store password", "given")
    else:
        report.fail("store password", "the URL has none, so whoever reaches the server can "
                                      "read and change the runs' data",
                    "require one (an ElastiCache AUTH token) and put it in the URL: "
                    "rediss://:PASSWORD@HOST:6379")
    if parsed.scheme == "rediss":
        report.ok("store TLS", "rediss://")
    else:
        report.warn("store TLS", "plain redis:// sends the data and password unencrypted",
                    "use rediss:// (ElastiCache with in-transit encryption)")
    try:
        ping(url)
    except (OSError, RuntimeError, ValueError) as exc:
        report.fail("store reach", f"this machine cannot use the store: {exc}",
                    "check the host, port and password (ElastiCache answers only inside its "
                    "VPC: run the driver there, e.g. on EC2)")
    else:
        report.ok("store reach", f"this machine reaches {redacted(url)}")


def check_probe(report: Report, client: Any, name: str, store_url: str) -> None:
    """Invoke the function: its Python, cloudpickle and reach of the store."""
    try:
        answer = probe(client, name, store_url)
    except ProbeFailed as exc:
        report.fail("probe", str(exc),
                    f"see its log group /aws/lambda/{name} in CloudWatch; run {_DEPLOY} again")
        return
    python, mine = str(answer.get("python")), platform.python_version()
    if python.split(".")[:2] == mine.split(".")[:2]:
        report.ok("probe python", f"the function runs Python {python} (this driver {mine})")
    else:
        report.fail("probe python", f"the function runs Python {python}, this driver {mine}",
                    f"run {_DEPLOY} from this Python (an image: rebuild it on python:"
                    f"{'.'.join(mine.split('.')[:2])})")
    cloudpickle, mine = answer.get("cloudpickle"), importlib.metadata.version("cloudpickle")
    if cloudpickle == mine:
        report.ok("probe cloudpickle", mine)
    else:
        report.fail("probe cloudpickle", f"the function has cloudpickle {cloudpickle}, this "
                                         f"driver {mine}",
                    f"run {_DEPLOY} again (an image: pin cloudpickle=={mine})")
    if answer.get("transparent_mp") != __version__:
        report.warn("probe transparent_mp", f"the function has {answer.get('transparent_mp')}, "
                                            f"this driver {__version__}", f"run {_DEPLOY} again")
    if not store_url:
        return  # already failed above; the function was not told where the store is
    if answer.get("store") == "ok":
        report.ok("probe store", "the function reaches the store")
    else:
        report.fail("probe store", f"the function cannot reach the store: {answer.get('store')}",
                    _VPC_ADVICE)


def check_concurrency(report: Report, client: Any, found: dict[str, Any], workers: int) -> None:
    """Whether the account (or the function's reservation) lets ``workers`` run at once."""
    wanted = workers or config.LAMBDA_DEFAULT_WORKERS
    reserved = found.get("Concurrency", {}).get("ReservedConcurrentExecutions")
    if reserved is not None:
        available, what = reserved, "the function's reserved concurrency"
    else:
        try:
            limit = client.get_account_settings()["AccountLimit"]
        except Exception as exc:
            line = aws_error(exc)
            if line is None:
                raise
            report.warn("concurrency", f"not checked: {line}",
                        "check the account's concurrency limit in the Lambda console")
            return
        available, what = limit["UnreservedConcurrentExecutions"], "the account's unreserved one"
    if wanted > available:
        report.warn("concurrency", f"workers is {wanted} but {what} is {available}: "
                                   "invocations past it are throttled",
                    f"lower --workers ({config.env_name('workers')}) or ask AWS for more "
                    "(Service Quotas: Lambda concurrent executions)")
    else:
        report.ok("concurrency", f"workers {wanted}, {what} {available}")


def parser() -> argparse.ArgumentParser:
    s = config.settings()
    env = config.env_name
    p = argparse.ArgumentParser(
        prog="python -m transparent_mp doctor",
        description="Check that runs can use the lambda backend: AWS credentials, the deployed "
                    "function, the store, and an invocation of the function (which must reach "
                    "the store too). Exit status 1 if any check fails.")
    add_function_options(p)
    p.add_argument("--redis-url", metavar="URL", default=s.redis_url,
                   help=f"the store's URL, rediss://:PASSWORD@HOST:PORT [{env('redis_url')}]")
    return p


def run(ns: argparse.Namespace, report: Report) -> None:
    """Every check, in order; AWS errors fail the check they happen in."""
    def guarded(what: str, check: Any, *args: Any) -> Any:
        try:
            return check(report, *args)
        except Exception as exc:
            line = aws_error(exc)
            if line is None:
                raise
            report.fail(what, line)
            return None

    client = guarded("credentials", check_credentials, ns.region, ns.endpoint_url)
    found = client and guarded("function", check_function, client, ns.function)
    check_store(report, ns.redis_url)
    if found:
        guarded("probe", check_probe, client, ns.function, ns.redis_url)
        check_concurrency(report, client, found, config.settings().workers)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``doctor`` with ``argv``; the exit status."""
    ns = parser().parse_args(argv)
    report = Report()
    run(ns, report)
    print("all checks passed" if not report.failed else "some checks failed",
          file=sys.stderr)
    return 1 if report.failed else 0
