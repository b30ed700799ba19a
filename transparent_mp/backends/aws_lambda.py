"""The lambda backend: every invocation is an asynchronous AWS Lambda ``Invoke``.

The ``Invoke`` payload is the :class:`Invocation`'s JSON, references only (run
id, keys, the store's address and credentials); the data stays in the store.
Invokes go out from a bounded thread pool, throttling (429) is retried with
jittered backoff, and no more than ``concurrency`` invocations are ever out at
once: the rest wait in the driver. A duplicate delivery is harmless, because a
worker takes its payload with ``GETDEL``: only one delivery ever runs it.

The function (``transparent_mp.worker.handler``) reports through the store, on
one list per run (see :func:`event`)::

    S <id> <pid>                             started
    O <id> <text>, R <id> <text>             lines the process wrote to stdout, stderr
    E <id> <exitcode> <billed ms> <MB> <why> ended ("-", or "timelimit")
    X <id> <message>                         refused (the version guard)

and, while an invocation runs, bumps its counter in a heartbeat hash. The
driver's watcher thread reads the list; an invocation whose heartbeats stop
(the function timed out, ran out of memory or crashed) or that does not start
in time is *lost*: it ends with exit code ``-SIGKILL``, as a local worker killed
by the kernel does, so a Process reports it and a Pool re-queues its tasks.
Signals (``terminate()``, ``kill()``) travel on a per-invocation list.
"""

from __future__ import annotations

import collections
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .. import config
from ..store.keys import KEY_TTL, Namespace
from ..store.resp import Connection, StoreUnavailable
from ..util import block_async_signals, logger, start_service_thread
from .base import Backend, Invocation, InvocationHandle

#: Heartbeats an invocation may miss before the driver declares it lost.
LOST_AFTER_BEATS = 5
#: Threads sending Invoke requests.
MAX_SENDERS = 16
#: Error codes of Invoke that mean "not accepted, try again".
_RETRYABLE = {"TooManyRequestsException", "ServiceException", "EC2ThrottledException",
              "ResourceNotReadyException", "ThrottlingException"}
#: Backoff between retries: full jitter, doubling from the first to the cap (seconds).
_BACKOFF_FIRST, _BACKOFF_CAP = 0.05, 5.0
#: Most events the watcher takes from the list per round trip.
_EVENT_BATCH = 256


def events_key(ns: Namespace) -> str:
    return ns.key("lambda", "events")


def beats_key(ns: Namespace) -> str:
    return ns.key("lambda", "beats")


def signal_key(ns: Namespace, inv_id: str) -> str:
    return ns.key("lambda", "sig", inv_id)


def event(kind: str, inv_id: str, *fields: object) -> bytes:
    """One item of the events list."""
    return " ".join([kind, inv_id, *map(str, fields)]).encode(errors="replace")


class _LambdaHandle(InvocationHandle):
    def __init__(self, invocation: Invocation, backend: LambdaBackend) -> None:
        super().__init__(invocation.id)
        self.invocation = invocation
        self.backend = backend
        self.sent_at: float | None = None
        self.started_at: float | None = None
        self.request_id = ""
        self.beat: bytes | None = None
        self.beat_seen = 0.0

    def signal(self, sig: int) -> None:
        self.backend._signal(self, sig)


class LambdaBackend(Backend):
    """Invocations as asynchronous invokes of one Lambda function."""

    name = "lambda"

    def __init__(self, settings: config.Settings, store_url: str, namespace: Namespace,
                 conn: Callable[[], Connection]) -> None:
        super().__init__(settings.concurrency)
        self.settings = settings
        self.function = settings.lambda_function
        self.client = lambda_client(settings, pool_size=min(self.concurrency, MAX_SENDERS))
        conf = self._configuration()
        self.time_limit = float(conf["Timeout"])
        self.memory_mb = int(conf["MemorySize"])
        self.store_url = store_url
        self.namespace = namespace
        self._conn = conn
        self._events = events_key(namespace)
        self._beats = beats_key(namespace)
        self._lock = threading.Lock()
        self._pending: collections.deque[_LambdaHandle] = collections.deque()
        self._out: dict[str, _LambdaHandle] = {}  # sent (or being sent), not ended
        self._warned_queue = False
        self.refused: str | None = None
        self._closed = False
        # usage, for the cost estimate
        self.requests = 0
        self.throttled = 0
        self.lost = 0
        self.gb_seconds = 0.0
        self.billed_ms = 0
        self._senders = ThreadPoolExecutor(max_workers=min(self.concurrency, MAX_SENDERS),
                                           thread_name_prefix="transparent_mp-invoke",
                                           initializer=block_async_signals)
        self._watch_conn: Connection | None = Connection(store_url)
        self._thread = threading.Thread(target=self._watch, name="transparent_mp-lambda",
                                        daemon=True)
        start_service_thread(self._thread)

    def _configuration(self) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            conf = self.client.get_function_configuration(FunctionName=self.function)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise RuntimeError(
                    f"the Lambda function {self.function!r} does not exist: deploy it with "
                    "`python -m transparent_mp deploy --role <role ARN>`") from None
            raise RuntimeError(f"cannot read the Lambda function {self.function!r}: "
                               f"{exc}") from None
        except BotoCoreError as exc:
            raise RuntimeError(f"cannot reach AWS Lambda: {exc}") from None
        state = conf.get("State", "Active")
        if state != "Active":
            raise RuntimeError(f"the Lambda function {self.function!r} is {state}, not Active: "
                               f"{conf.get('StateReason', 'see the Lambda console')}")
        return conf

    # -- starting (any thread) --
    def invoke(self, invocation: Invocation) -> InvocationHandle:
        handle = _LambdaHandle(invocation, self)
        with self._lock:
            if self.refused is not None:
                raise RuntimeError(self.refused)
            if self._closed:
                raise RuntimeError("the lambda backend has been shut down")
            self._pending.append(handle)
            self.invocations += 1
            self._pump()
        return handle

    def _pump(self) -> None:
        """Send pending invocations while fewer than ``concurrency`` are out (lock held)."""
        while self._pending and len(self._out) < self.concurrency:
            handle = self._pending.popleft()
            self._out[handle.id] = handle
            self._senders.submit(self._send, handle)
        if self._pending and not self._warned_queue:
            self._warned_queue = True
            logger.warning(
                "%d invocation(s) wait for one of the %d running to end (the concurrency); "
                "processes that wait for each other would deadlock: raise --workers",
                len(self._pending), self.concurrency)

    def _send(self, handle: _LambdaHandle) -> None:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        payload = handle.invocation.to_json().encode()
        deadline = time.monotonic() + self.settings.start_timeout
        delay = _BACKOFF_FIRST
        while True:
            try:
                reply = self.client.invoke(FunctionName=self.function, InvocationType="Event",
                                           Payload=payload)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code not in _RETRYABLE or time.monotonic() > deadline:
                    return self._fail(handle, f"AWS Lambda refused to invoke {self.function!r}: "
                                              f"{exc}")
                if code == "TooManyRequestsException":
                    with self._lock:
                        self.throttled += 1
            except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
                # Safe to repeat: only one delivery can take the payload (GETDEL).
                if time.monotonic() > deadline:
                    return self._fail(handle, f"cannot reach AWS Lambda: {exc}")
            except Exception as exc:  # a bug or a bad configuration: report, do not hang
                return self._fail(handle, f"invoking {self.function!r} failed: {exc!r}")
            else:
                handle.request_id = reply["ResponseMetadata"].get("RequestId", "")
                handle.sent_at = time.monotonic()
                with self._lock:
                    self.requests += 1
                return None
            if self._closed:
                return self._finish(handle, 1)
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, _BACKOFF_CAP)

    def _fail(self, handle: _LambdaHandle, message: str) -> None:
        logger.error("invocation %s: %s", handle.id, message)
        self._finish(handle, 1)

    def _finish(self, handle: _LambdaHandle, exitcode: int) -> None:
        with self._lock:
            self._out.pop(handle.id, None)
            self._pump()
        handle.set_exit(exitcode)

    def _signal(self, handle: _LambdaHandle, sig: int) -> None:
        with self._lock:
            queued = handle in self._pending
            if queued:
                self._pending.remove(handle)
        if queued:  # never sent: it ends without having run, as a process killed at birth
            handle.set_exit(-sig)
            return
        if handle.poll() is not None:
            return
        key = signal_key(self.namespace, handle.id)
        self._conn().execute_many([("RPUSH", key, int(sig)), ("EXPIRE", key, KEY_TTL)])

    # -- the watcher thread --
    def _watch(self) -> None:
        conn: Connection | None = self._watch_conn
        beat = self.settings.heartbeat
        next_check = time.monotonic() + beat
        failing_since: float | None = None
        while not self._closed:
            try:
                if conn is None:
                    conn = self._watch_conn = Connection(self.store_url)
                item = conn.blpop([self._events], max(0.001, next_check - time.monotonic()))
                if item is not None:
                    items = [item[1], *(conn.execute("LPOP", self._events, _EVENT_BATCH) or [])]
                    for raw in items:
                        self._on_event(raw)
                if time.monotonic() >= next_check:
                    self._check_liveness(conn)
                    next_check = time.monotonic() + beat
                failing_since = None
            except Exception as exc:
                if self._closed:
                    return
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    logger.error("the lambda backend cannot read its workers' reports: %s", exc)
                if now - failing_since > LOST_AFTER_BEATS * beat:
                    self._abandon(f"the store has not answered for {now - failing_since:.0f} s "
                                  f"({exc})")
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(beat)

    def _abandon(self, why: str) -> None:
        """The workers can no longer be heard: end every invocation out, as lost."""
        with self._lock:
            out = list(self._out.values())
        for handle in out:
            logger.error("invocation %s ended as lost: %s", handle.id, why)
            self._finish(handle, -signal.SIGKILL)

    def _on_event(self, raw: bytes) -> None:
        kind, inv_id, rest = (raw.decode(errors="replace").split(" ", 2) + ["", ""])[:3]
        with self._lock:
            handle = self._out.get(inv_id)
        if handle is None:
            return  # a late report of a lost invocation, or the shutdown marker
        if kind == "S":
            handle.started_at = handle.beat_seen = time.monotonic()
            handle.set_started(int(rest))
        elif kind in ("O", "R"):
            stream = sys.stdout if kind == "O" else sys.stderr
            if stream is not None:
                try:
                    stream.write(rest)
                    stream.flush()
                except (OSError, ValueError):
                    pass
        elif kind == "E":
            code, billed_ms, memory_mb, why = rest.split(" ", 3)
            self._bill(int(billed_ms), int(memory_mb))
            if why == "timelimit":
                logger.error(
                    "invocation %s (request %s) was still running at the function's time limit "
                    "of %g s and was ended; a Process must finish within one Lambda invocation: "
                    "split its work, or use a Pool, whose workers are replaced before the limit",
                    inv_id, handle.request_id, self.time_limit)
            self._finish(handle, int(code))
        elif kind == "X":
            self.refused = rest
            logger.error("invocation %s refused: %s", inv_id, rest)
            self._finish(handle, 1)

    def _bill(self, billed_ms: int, memory_mb: int) -> None:
        with self._lock:
            self.billed_ms += billed_ms
            self.gb_seconds += billed_ms / 1000 * memory_mb / 1024

    def _check_liveness(self, conn: Connection) -> None:
        now = time.monotonic()
        with self._lock:
            started = [h for h in self._out.values() if h.started_at is not None]
            waiting = [h for h in self._out.values()
                       if h.started_at is None and h.sent_at is not None]
        if started:
            beats = conn.execute("HMGET", self._beats, *(h.id for h in started))
            for handle, value in zip(started, beats, strict=True):
                if value != handle.beat:
                    handle.beat, handle.beat_seen = value, now
                elif now - handle.beat_seen > LOST_AFTER_BEATS * self.settings.heartbeat:
                    self._lose(handle, now, "stopped sending heartbeats: the function timed out, "
                                            "ran out of memory or crashed")
        for handle in waiting:
            if now - handle.sent_at > self.settings.start_timeout:
                self._lose(handle, now, f"did not start within {self.settings.start_timeout:g} s "
                                        "(`python -m transparent_mp doctor` checks that the "
                                        "function runs and reaches the store)")

    def _lose(self, handle: _LambdaHandle, now: float, why: str) -> None:
        logger.error("invocation %s of %s (request %s) %s; see the function's logs",
                     handle.id, self.function, handle.request_id, why)
        if handle.started_at is not None:  # billed up to about now
            self._bill(math.ceil((now - handle.started_at) * 1000), self.memory_mb)
        with self._lock:
            self.lost += 1
        try:  # in case it is only slow: it must not go on unseen
            self._signal(handle, signal.SIGKILL)
        except StoreUnavailable:
            pass
        self._finish(handle, -signal.SIGKILL)

    # -- usage and shutdown --
    def usage(self) -> str:
        """Requests, billed duration, GB-seconds and the estimated cost so far."""
        s = self.settings
        cost = self.gb_seconds * s.price_gb_second + self.requests * s.price_request
        return (f"lambda function={self.function} requests={self.requests} "
                f"throttled={self.throttled} lost={self.lost} "
                f"billed={self.billed_ms / 1000:.1f}s gb_seconds={self.gb_seconds:.3f} "
                f"estimated_cost=${cost:.6f} (at ${s.price_gb_second}/GB-s and "
                f"${s.price_request}/request)")

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = list(self._pending), collections.deque()
            out = list(self._out.values())
        for handle in pending:
            handle.set_exit(-signal.SIGKILL)
        for handle in out:  # still running at exit: stop them, they are billed
            try:
                self._signal(handle, signal.SIGKILL)
            except StoreUnavailable:
                break
        self._senders.shutdown(wait=True, cancel_futures=True)
        try:
            self._conn().execute("RPUSH", self._events, event("Q", "-"))  # wake the watcher
        except StoreUnavailable:
            pass
        self._thread.join(5.0)


def lambda_client(settings: config.Settings, pool_size: int = 10):
    """A boto3 Lambda client for ``settings``; botocore does not retry (we do)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise RuntimeError("the lambda backend needs boto3: pip install 'transparent-mp[aws]'"
                           ) from None
    return boto3.session.Session().client(
        "lambda", region_name=settings.aws_region or None,
        endpoint_url=settings.lambda_endpoint_url or None,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=pool_size,
                      connect_timeout=5, read_timeout=60),
    )
