"""A small AWS Lambda service for the tests.

The real boto3 ``lambda`` client, pointed at ``endpoint_url``, invokes a function
whose execution environments run the real runtime interface client
(``python -S -m awslambdaric <handler>``), each talking to its own Runtime API
server, the way Lambda runs a zip-packaged Python function::

    with LambdaEmulator(Path("function.zip"), concurrency=4, timeout=5) as emu:
        client = boto3.client("lambda", endpoint_url=emu.endpoint_url, ...)
        client.invoke(FunctionName="transparent-mp", InvocationType="Event", Payload=b"{}")
        emu.wait_idle(30)

Scheduling follows Lambda: invocations queue, go to an idle warm environment or
start a new one while fewer than ``concurrency`` exist; an environment is reused
after a success or a handled error, and discarded (its process group killed)
after a timeout or when its process dies. Unlike Lambda, a synchronous
invocation beyond the concurrency waits in the queue instead of being throttled;
``throttle(n)`` answers the next ``n`` invocations with 429.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

REGION = "us-east-1"
ACCOUNT = "123456789012"
INIT_LIMIT_S = 10.0  # Lambda's limit on an environment's init phase
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_EVENT_PAYLOAD = 256 * 1024


class _Fields:
    """Dataclass fields readable as ``obj.name`` and ``obj["name"]``."""

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


@dataclass
class Stats(_Fields):
    """Counts since start; ``completed`` counts finished invocations of any outcome."""

    invokes: int = 0
    throttled: int = 0
    cold_starts: int = 0
    max_concurrent: int = 0
    timeouts: int = 0
    errors: int = 0
    crashes: int = 0
    completed: int = 0
    successes: int = 0


@dataclass(frozen=True)
class Record(_Fields):
    """A finished invocation. ``duration_s`` runs from the handover to the runtime
    (from the queue's assignment if it never got there); ``init_s`` is the cold
    start of the environment that served it, None when it was warm."""

    request_id: str
    invocation_type: str
    outcome: str
    duration_s: float
    pid: int
    init_s: float | None


class _Invocation:
    def __init__(self, kind: str, payload: bytes, arn: str, client_context: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.kind, self.payload, self.arn = kind, payload, arn
        self.client_context = client_context
        self.env: _Environment | None = None
        self.assigned_at = 0.0
        self.delivered_at: float | None = None
        self.deadline: float | None = None  # monotonic
        self.deadline_ms = 0  # epoch ms, as the runtime is told
        self.cold = False
        self.outcome: str | None = None
        self.body = b""
        self.done = threading.Event()


class _Server(ThreadingHTTPServer):
    """A threading HTTP/1.1 server on a free port of 127.0.0.1 that can drop its
    open (keep-alive) connections when closed."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = owner
        self.conns: set[socket.socket] = set()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        # small answers written in two sends would wait for delayed ACKs (~40 ms)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # peers go away: that is fine
            super().handle_error(request, client_address)

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        for conn in list(self.conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with a Content-Length on every answer, so keep-alive works."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, body: bytes | dict = b"",
               headers: Mapping[str, str] | None = None) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)


class _Environment:
    """One execution environment: a runtime process and its Runtime API server."""

    def __init__(self, emu: LambdaEmulator) -> None:
        self.emu = emu
        self.current: _Invocation | None = None
        self.dead = False
        self.started = time.monotonic()
        self.init_s: float | None = None
        self.server = _Server(_RuntimeHandler, self)
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        environ = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(map(str, emu.python_path)),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.port}",
            "LAMBDA_TASK_ROOT": str(emu.task_root),
            "LAMBDA_RUNTIME_DIR": str(emu.runtime_dir),
            "_HANDLER": emu.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python3.{sys.version_info.minor}",
            "AWS_LAMBDA_FUNCTION_NAME": emu.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(emu.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{emu.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            **emu.env,
        }
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-m", "awslambdaric", emu.handler],
                cwd=emu.task_root, env=environ, stdin=subprocess.DEVNULL,
                stdout=emu.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self.server.close()
            raise

    def close(self) -> None:
        """Kill the environment's whole process group and stop its server."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.server.close()


class _RuntimeHandler(_Handler):
    """The Lambda Runtime API of one environment (``server.owner``)."""

    def do_GET(self) -> None:
        env: _Environment = self.server.owner
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.answer(404, {"errorMessage": "not found", "errorType": "NotFound"})
        inv = env.emu._next(env)
        if inv is None:  # the environment is being killed: let the runtime die unanswered
            try:
                env.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.close_connection = True
            return None
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
            "Lambda-Runtime-Trace-Id": trace,
        }
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        return self.answer(200, inv.payload, headers)

    def do_POST(self) -> None:
        env: _Environment = self.server.owner
        body = self.body()
        if self.path == "/2018-06-01/runtime/init/error":
            env.emu._init_error(env, body)
            return self.answer(202, {"status": "OK"})
        match = re.fullmatch(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)", self.path)
        if match is None:
            return self.answer(404, {"errorMessage": "not found", "errorType": "NotFound"})
        outcome = "success" if match[2] == "response" else "error"
        if not env.emu._respond(env, unquote(match[1]), outcome, body):
            return self.answer(400, {"errorMessage": "Invalid request ID",
                                     "errorType": "InvalidRequestID"})
        return self.answer(202, {"status": "OK"})


class _ApiHandler(_Handler):
    """The Lambda service API: Invoke and a few control-plane reads."""

    timeout = 60  # idle keep-alive connections of clients

    def route(self) -> tuple[str, str] | None:
        path = urlsplit(self.path).path
        for pattern, op in (
            (r"/2015-03-31/functions/([^/]+)/invocations", "invoke"),
            (r"/2015-03-31/functions/([^/]+)/configuration", "config"),
            (r"/2015-03-31/functions/([^/]+)/?", "function"),
            (r"/2019-09-25/functions/([^/]+)/event-invoke-config", "event-config"),
        ):
            match = re.fullmatch(pattern, path)
            if match:
                return op, unquote(match[1]).split(":function:")[-1].split(":")[0]
        return None

    def error(self, status: int, error_type: str, message: str, **extra: str) -> None:
        self.answer(status, {"Type": "User", "message": message, **extra},
                    {"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())})

    def do_GET(self) -> None:
        self.handle_api("GET", b"")

    def do_POST(self) -> None:
        self.handle_api("POST", self.body())

    def handle_api(self, method: str, body: bytes) -> None:
        emu: LambdaEmulator = self.server.owner
        found = self.route()
        if found is None or (found[0] == "invoke") != (method == "POST"):
            return self.error(404, "UnknownOperationException", "Unknown operation")
        op, name = found
        if name != emu.function_name:
            return self.error(404, "ResourceNotFoundException",
                              f"Function not found: {emu.arn_of(name)}")
        if op == "config":
            return self.answer(200, emu.configuration())
        if op == "function":
            return self.answer(200, {"Configuration": emu.configuration(), "Code": {
                "RepositoryType": "S3", "Location": emu.package.as_uri()}})
        if op == "event-config":
            return self.answer(200, {
                "FunctionArn": f"{emu.arn_of(name)}:$LATEST", "LastModified": emu.created,
                "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 21600,
                "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}})
        return self.invoke(emu, name, body)

    def invoke(self, emu: LambdaEmulator, name: str, payload: bytes) -> None:
        kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if emu._take_throttle():
            return self.error(429, "TooManyRequestsException", "Rate Exceeded.",
                              Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
        if kind == "DryRun":
            return self.answer(204)
        if kind not in ("Event", "RequestResponse"):
            return self.error(400, "InvalidParameterValueException",
                              f"Unsupported invocation type {kind}")
        limit = MAX_EVENT_PAYLOAD if kind == "Event" else MAX_SYNC_PAYLOAD
        if len(payload) > limit:
            return self.error(413, "RequestTooLargeException",
                              f"Request must be smaller than {limit} bytes for the "
                              f"InvokeFunction operation")
        context = self.headers.get("X-Amz-Client-Context") or ""
        if context:  # the client sends it base64-encoded, the runtime gets the JSON
            context = base64.b64decode(context).decode()
        inv = emu._submit(kind, payload or b"{}", emu.arn_of(name), context)
        if inv is None:
            return self.error(503, "ServiceException", "The emulator is stopping")
        headers = {"x-amzn-RequestId": inv.request_id}
        if kind == "Event":
            return self.answer(202, b"", headers)
        while not inv.done.wait(1.0):
            if emu._stopping:
                break
        if inv.outcome is None:
            return self.error(503, "ServiceException", "The emulator stopped")
        headers["X-Amz-Executed-Version"] = "$LATEST"
        headers["Content-Type"] = "application/json"
        if inv.outcome != "success":
            headers["X-Amz-Function-Error"] = "Unhandled"
        return self.answer(200, inv.body, headers)


def _runtime_packages() -> dict[str, Path]:
    """The top-level names of awslambdaric and its runtime dependencies, with paths."""
    found: dict[str, Path] = {}
    todo, seen = ["awslambdaric"], set()
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.match(r"[A-Za-z0-9._-]+", req)[0])
        for file in dist.files or []:
            top = file.parts[0]
            if top == ".." or top == "__pycache__" or top.endswith((".dist-info", ".pth")):
                continue
            found.setdefault(top, Path(dist.locate_file(top)))
    return found


class LambdaEmulator:
    """An emulated Lambda function with its Invoke API on ``endpoint_url``."""

    def __init__(self, package: Path, *, function_name: str = "transparent-mp",
                 handler: str = "transparent_mp.worker.handler",
                 layers: Sequence[Path] = (), concurrency: int = 10, timeout: float = 900.0,
                 memory_mb: int = 1024, env: Mapping[str, str] | None = None) -> None:
        self.package = Path(package).resolve()
        self.function_name, self.handler = function_name, handler
        self.layers = [Path(p).resolve() for p in layers]
        self.concurrency, self.timeout, self.memory_mb = concurrency, timeout, memory_mb
        self.env = dict(env or {})
        self.endpoint_url = ""
        self.stats = Stats()
        self.records: list[Record] = []
        self.created = time.time()
        self._cond = threading.Condition()
        self._queue: deque[_Invocation] = deque()
        self._envs: list[_Environment] = []
        self._throttle = 0
        self._final_logs: str | None = None
        self._stopping = False
        self._started = False
        self._tmp: Path | None = None
        self._server: _Server | None = None
        self._monitor: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> LambdaEmulator:
        """Unpack the package, build the runtime dir and start the Invoke API."""
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        self._tmp = Path(tempfile.mkdtemp(prefix="lambda-emulator-"))
        try:
            self.task_root = self._tmp / "task"
            with zipfile.ZipFile(self.package) as archive:
                archive.extractall(self.task_root)
            self.runtime_dir = self._tmp / "runtime"
            self.runtime_dir.mkdir()
            for top, target in _runtime_packages().items():
                (self.runtime_dir / top).symlink_to(target)
            self.python_path = [self.task_root, *self.layers, self.runtime_dir]
            self.log_path = self._tmp / "function.log"
            self.log_file = open(self.log_path, "ab", buffering=0)
            self._server = _Server(_ApiHandler, self)
            self.endpoint_url = f"http://127.0.0.1:{self._server.port}"
            self._monitor = threading.Thread(target=self._watch, daemon=True,
                                             name="lambda-emulator-monitor")
            self._monitor.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every environment, stop the servers and remove the temp dir."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            envs, self._envs = self._envs, []
            for env in envs:
                env.dead = True
            self._queue.clear()
            self._cond.notify_all()
        if self._monitor is not None:
            self._monitor.join(10)
        for env in envs:
            env.close()
        if self._server is not None:
            self._server.close()
        if hasattr(self, "log_file"):
            self.log_file.close()
            self._final_logs = self.logs()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LambdaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- public helpers --------------------------------------------------------------

    def throttle(self, n: int) -> None:
        """Answer the next ``n`` Invoke calls with 429 TooManyRequestsException."""
        with self._cond:
            self._throttle = n

    def logs(self) -> str:
        """Everything the environments (and the START/END/REPORT lines) logged;
        still readable after ``stop()``."""
        if self._final_logs is not None:
            return self._final_logs
        try:
            return self.log_path.read_text(errors="replace")
        except (AttributeError, OSError):
            return ""

    def wait_idle(self, timeout: float) -> bool:
        """True once no invocation is queued or running, False after ``timeout`` s."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not any(e.current for e in self._envs), timeout)

    def arn_of(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def configuration(self) -> dict[str, Any]:
        """GetFunctionConfiguration's answer."""
        code = self.package.read_bytes()
        return {
            "FunctionName": self.function_name,
            "FunctionArn": self.arn_of(self.function_name),
            "Runtime": f"python3.{sys.version_info.minor}",
            "Role": f"arn:aws:iam::{ACCOUNT}:role/{self.function_name}",
            "Handler": self.handler,
            "CodeSize": len(code),
            "CodeSha256": base64.b64encode(hashlib.sha256(code).digest()).decode(),
            "Description": "",
            "Timeout": math.ceil(self.timeout),
            "MemorySize": self.memory_mb,
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000",
                                          time.gmtime(self.created)),
            "Version": "$LATEST",
            "Environment": {"Variables": dict(self.env)},
            "Layers": [{"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{p.name}:1",
                        "CodeSize": 0} for p in self.layers],
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "TracingConfig": {"Mode": "PassThrough"},
            "LoggingConfig": {"LogFormat": "Text",
                              "LogGroup": f"/aws/lambda/{self.function_name}"},
        }

    # --- scheduling (the lock is self._cond) -----------------------------------------

    def _log(self, line: str) -> None:
        try:
            self.log_file.write(line.encode() + b"\n")
        except (AttributeError, ValueError):
            pass

    def _take_throttle(self) -> bool:
        with self._cond:
            if self._throttle <= 0:
                return False
            self._throttle -= 1
            self.stats.throttled += 1
            return True

    def _submit(self, kind: str, payload: bytes, arn: str,
                client_context: str) -> _Invocation | None:
        inv = _Invocation(kind, payload, arn, client_context)
        with self._cond:
            if self._stopping:
                return None
            self.stats.invokes += 1
            self._queue.append(inv)
            self._dispatch()
        return inv

    def _dispatch(self) -> None:
        """Hand queued invocations to idle environments, starting new ones as allowed."""
        while self._queue and not self._stopping:
            env = next((e for e in self._envs if not e.dead and e.current is None), None)
            if env is None:
                if len(self._envs) >= self.concurrency:
                    return
                env = _Environment(self)
                self._envs.append(env)
                self.stats.cold_starts += 1
            inv = self._queue.popleft()
            inv.env, inv.assigned_at, env.current = env, time.monotonic(), inv
            busy = sum(1 for e in self._envs if e.current is not None)
            self.stats.max_concurrent = max(self.stats.max_concurrent, busy)
        self._cond.notify_all()

    def _next(self, env: _Environment) -> _Invocation | None:
        """Block until ``env`` is given an invocation (None: the environment is gone)."""
        with self._cond:
            while True:
                if env.dead or self._stopping:
                    return None
                inv = env.current
                if inv is not None and inv.delivered_at is None:
                    now = time.monotonic()
                    if env.init_s is None:
                        env.init_s, inv.cold = now - env.started, True
                    inv.delivered_at, inv.deadline = now, now + self.timeout
                    inv.deadline_ms = int((time.time() + self.timeout) * 1000)
                    self._log(f"START RequestId: {inv.request_id} Version: $LATEST")
                    return inv
                self._cond.wait(1.0)

    def _respond(self, env: _Environment, request_id: str, outcome: str, body: bytes) -> bool:
        with self._cond:
            inv = env.current
            if inv is None or inv.request_id != request_id or inv.delivered_at is None:
                return False
            self._finish(inv, outcome, body)
            self._dispatch()
            return True

    def _init_error(self, env: _Environment, body: bytes) -> None:
        with self._cond:
            env.dead = True  # the runtime exits after reporting; the monitor reaps it
            if env.current is not None:
                self._finish(env.current, "error", body)

    def _finish(self, inv: _Invocation, outcome: str, body: bytes) -> None:
        now = time.monotonic()
        env = inv.env
        assert env is not None
        env.current = None
        inv.outcome, inv.body = outcome, body
        duration = now - (inv.delivered_at if inv.delivered_at is not None else inv.assigned_at)
        self.records.append(Record(inv.request_id, inv.kind, outcome, duration, env.proc.pid,
                                   env.init_s if inv.cold else None))
        self.stats.completed += 1
        counter = {"success": "successes", "error": "errors", "timeout": "timeouts",
                   "crash": "crashes"}[outcome]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        init = f"\tInit Duration: {env.init_s * 1000:.2f} ms" if inv.cold and env.init_s else ""
        self._log(f"END RequestId: {inv.request_id}")
        self._log(f"REPORT RequestId: {inv.request_id}\tDuration: {duration * 1000:.2f} ms\t"
                  f"Billed Duration: {math.ceil(duration * 1000)} ms\t"
                  f"Memory Size: {self.memory_mb} MB{init}\tStatus: {outcome}")
        inv.done.set()
        self._cond.notify_all()

    def _watch(self) -> None:
        """Discard environments that died or passed their invocation's deadline."""
        while True:
            with self._cond:
                self._cond.wait(0.05)
                if self._stopping:
                    return
                gone = [e for e in self._envs if e.dead or e.proc.poll() is not None
                        or self._overdue(e)]
                for env in gone:
                    self._envs.remove(env)
                    env.dead = True
                    inv = env.current
                    if inv is None:
                        continue
                    code = env.proc.poll()
                    if code is None:  # overdue: Lambda kills the environment
                        message = (f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z "
                                   f"{inv.request_id} Task timed out after "
                                   f"{self.timeout:.2f} seconds")
                        self._log(message)
                        self._finish(inv, "timeout", json.dumps(
                            {"errorMessage": message}).encode())
                    else:
                        why = (f"signal: {signal.strsignal(-code).lower()}" if code < 0
                               else f"exit status {code}")
                        message = (f"RequestId: {inv.request_id} Error: "
                                   f"Runtime exited with error: {why}")
                        self._log(message)
                        self._finish(inv, "crash", json.dumps(
                            {"errorType": "Runtime.ExitError",
                             "errorMessage": message}).encode())
                if gone:
                    self._dispatch()
            for env in gone:
                env.close()

    def _overdue(self, env: _Environment) -> bool:
        inv = env.current
        if inv is None:
            return False
        if inv.deadline is not None:
            return time.monotonic() > inv.deadline
        return time.monotonic() > inv.assigned_at + INIT_LIMIT_S + self.timeout
