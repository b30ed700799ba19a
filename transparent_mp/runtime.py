"""The run this interpreter belongs to: its store, key space, signing key and backend.

The driver creates its runtime lazily, on first use (this starts the embedded
Redis server if no URL is configured) and tears it down at exit. A worker
enters the runtime an invocation names, so nested processes share the run.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import multiprocessing.util  # noqa: F401  (registers its atexit hook before ours: ours runs first)
import os
import secrets
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

from . import compat, config, serialize, snapshot, spawn
from .backends.base import Backend, Invocation, InvocationHandle
from .store import KEY_TTL, Namespace, StoreUnavailable, scripts
from .store.keys import Refresher
from .store.resp import Connection
from .util import configure_logging, logger, start_service_thread


class Runtime:
    """Store, key space, signing key and backend of one run."""

    def __init__(self, settings: config.Settings, store_url: str, run_id: str, secret: bytes,
                 *, owner: bool, token: str, server=None) -> None:
        self.settings = settings
        #: Names this process as a holder of shared handles (pipe ends).
        self.token = token
        self.store_url = store_url
        self.namespace = Namespace(run_id)
        self.secret = secret
        self.owner = owner
        self.server = server
        self.stats: Counter = Counter()
        self._backend: Backend | None = None
        self._lock = threading.RLock()
        self._uploaded_prep: set[str] = set()
        self._uploaded_snap: set[str] = set()  # snapshot blobs and manifests stored
        self._prep_cache: tuple[int, str, bytes] | None = None
        self._refresher: Refresher | None = None
        self.interrupted = False
        #: When this invocation's backend ends it (``time.monotonic()``), if it does.
        self.deadline: float | None = None
        self._local = threading.local()
        self._conns: list[Connection] = []

    def conn(self) -> Connection:
        """This thread's lean connection to the store (hot paths)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid() or conn._sock is None:
            conn = Connection(self.store_url)
            conn.pid = os.getpid()
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def flush(self) -> None:
        """Wait until every command this process sent has been carried out."""
        for conn in self._conns:
            if conn.pid == os.getpid() and conn._sock is not None:
                try:
                    conn.flush()
                except BrokenPipeError:
                    pass  # a reply to a peer that has gone: as a send on a closed socket
                except Exception as exc:
                    logger.warning("a command sent before exit failed: %s", exc)

    def tag(self, body: bytes | memoryview) -> bytes:
        """The signature of ``body``; a stored item is ``tag + body``."""
        return serialize.tag(body, self.secret)

    def sign(self, body: bytes | memoryview) -> bytes:
        return serialize.sign(body, self.secret)

    def verify(self, data: bytes | memoryview) -> memoryview:
        return serialize.verify(data, self.secret)

    def release_token(self, token: str) -> None:
        """Let go of every pipe end ``token`` (a process that ended) held."""
        self.conn().run(scripts.RELEASE_ENDS, [self.namespace.key("tok", token)],
                        [KEY_TTL, token])

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = _make_backend(self)
        return self._backend

    def dumps(self, obj: object) -> bytes:
        return serialize.dumps(obj, self.secret)

    def loads(self, data: bytes | memoryview) -> object:
        return serialize.loads(data, self.secret)

    def _preparation(self) -> tuple[str, bytes]:
        data = spawn.preparation_data()
        cached = self._prep_cache
        if cached is None or cached[0] != id(data):
            blob = self.dumps(data)
            key = self.namespace.key("prep", hashlib.sha256(blob).hexdigest()[:24])
            cached = self._prep_cache = (id(data), key, blob)
        return cached[1], cached[2]

    def fork_snapshot(self) -> snapshot.Snapshot:
        """This process's state as a fork child inherits it (inside :meth:`one_snapshot`,
        the one taken first there)."""
        scope = getattr(self._local, "snapshot_scope", None)
        if scope:
            return scope[0]
        snap = snapshot.take()
        if scope is not None:
            scope.append(snap)
        return snap

    @contextlib.contextmanager
    def one_snapshot(self) -> Iterator[None]:
        """Processes started inside share one fork snapshot, as the workers a
        fork-based Pool forks one after another see the same state."""
        self._local.snapshot_scope = []
        try:
            yield
        finally:
            del self._local.snapshot_scope

    def _snapshot_missing(self, snap: snapshot.Snapshot) -> tuple[str, dict[str, bytes]]:
        """The manifest's key, and what the store lacks of ``snap``, by key."""
        manifest = snap.manifest_pickle
        manifest_key = self.namespace.key("snap", snapshot.digest_of(manifest))
        parts = {self.namespace.key("snap", digest): body for digest, body in snap.blobs.items()}
        parts[manifest_key] = manifest
        return manifest_key, {k: v for k, v in parts.items() if k not in self._uploaded_snap}

    @staticmethod
    def new_id() -> str:
        """A fresh unique id (invocations, waiters)."""
        return uuid.uuid4().hex

    def new_key(self, kind: str) -> str:
        """A fresh key of the run for a new shared object of ``kind``."""
        return self.namespace.key(kind, self.new_id())

    def invoke(self, kind: str, payload: bytes, inv_id: str | None = None,
               snap: snapshot.Snapshot | None = None) -> InvocationHandle:
        """Store ``payload`` (and ``snap``, what the store lacks of it) and start one
        invocation of ``kind`` on the backend."""
        inv_id = inv_id or self.new_id()
        payload_key = self.namespace.key("payload", inv_id)
        prep_key, prep = self._preparation()
        snapshot_key, missing = self._snapshot_missing(snap) if snap else ("", {})
        commands = [("SET", key, (self.tag(body), body), "EX", KEY_TTL)
                    for key, body in missing.items()]
        self.stats["bytes_up"] += sum(map(len, missing.values()))
        commands.append(("SET", payload_key, payload, "EX", KEY_TTL))
        if prep_key not in self._uploaded_prep:
            commands.append(("SET", prep_key, prep, "EX", KEY_TTL))
            self.stats["bytes_up"] += len(prep)
        self.conn().execute_many(commands)
        self._uploaded_prep.add(prep_key)  # (once stored: a failed store is tried again)
        self._uploaded_snap.update(missing)
        settings = self.settings.as_dict()
        settings["redis_url"] = ""
        invocation = Invocation(
            id=inv_id, kind=kind, run_id=self.namespace.run_id, store_url=self.store_url,
            secret=self.secret.hex(), payload_key=payload_key, prep_key=prep_key,
            snapshot_key=snapshot_key, settings=settings, versions=serialize.versions(),
        )
        self.stats["invocations"] += 1
        self.stats["bytes_up"] += len(payload)
        handle = self.backend.invoke(invocation)
        handle.add_exit_callback(lambda: self.release_token(inv_id))
        return handle

    def shutdown(self) -> None:
        """End the run: children, workers, keys and (for the driver) the server."""
        from multiprocessing.process import active_children

        if self.interrupted:
            for child in active_children():
                child.terminate()
        compat.exit_function()
        if self._backend is not None:
            self._backend.shutdown()
        if self._refresher is not None:
            self._refresher.stop()
        if self.owner:
            try:
                self.namespace.delete_all(self.conn())
            except Exception as exc:
                logger.warning("could not delete the run's keys: %s", exc)
        if self.server is not None:
            self.server.stop()
        if self.settings.stats or logger.isEnabledFor(20) or (
                self.owner and self._backend is not None and self._backend.name == "lambda"):
            print_stats(self)  # what a Lambda run cost is always worth a line


def print_stats(rt: Runtime) -> None:
    """What this driver used: invocations, workers, Pool chunks, blobs, bytes stored,
    and on Lambda the billed duration and the estimated cost."""
    s = rt.stats
    backend = rt._backend
    sys.stderr.write(
        f"[transparent_mp] backend={rt.settings.backend} invocations={s['invocations']} "
        f"workers_started={getattr(backend, 'workers_started', 0)} "
        f"pool_chunks={s['pool_chunks']} blobs={s['blobs']} bytes_up={s['bytes_up']}\n"
    )
    if backend is not None and hasattr(backend, "usage"):
        sys.stderr.write(f"[transparent_mp] {backend.usage()}\n")


def _make_backend(rt: Runtime) -> Backend:
    if rt.settings.backend == "lambda":
        from .backends.aws_lambda import LambdaBackend

        return LambdaBackend(rt.settings, rt.store_url, rt.namespace, rt.conn)
    from .backends.local import LocalBackend
    from .util import DRIVER_PID_ENV

    # a nested process's workers are the run's, bound to its driver (util.die_with_driver)
    driver_pid = os.getpid() if rt.owner else int(os.environ.get(DRIVER_PID_ENV) or os.getpid())
    return LocalBackend(rt.settings, driver_pid)


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime:
    """This interpreter's runtime; a driver creates it on first use."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = _start_driver()
    return _current


def _start_driver() -> Runtime:
    settings = config.settings()
    configure_logging(settings.log_level)
    server = None
    url = settings.redis_url
    if not url:
        from .store.server import EmbeddedServer

        server = EmbeddedServer()
        url = server.url
    rt = Runtime(settings, url, uuid.uuid4().hex[:16], secrets.token_bytes(32),
                 owner=True, token="driver", server=server)
    try:
        rt.conn()  # fail now, with a clear error, if the store does not answer
    except StoreUnavailable:
        if server is not None:
            server.stop()
        raise
    rt._refresher = Refresher(rt.namespace, url)
    start_service_thread(rt._refresher)
    atexit.register(_shutdown_at_exit, rt, os.getpid())
    _watch_interrupt(rt)
    return rt


def _shutdown_at_exit(rt: Runtime, pid: int) -> None:
    if os.getpid() == pid:
        rt.shutdown()


def _watch_interrupt(rt: Runtime) -> None:
    """Note an uncaught KeyboardInterrupt so shutdown stops running children."""
    previous = sys.excepthook

    def excepthook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            rt.interrupted = True
        previous(kind, value, tb)

    sys.excepthook = excepthook


def enter_worker(invocation: Invocation) -> Runtime:
    """Join the run that ``invocation`` belongs to (inside a worker)."""
    global _current
    rt = _current
    if rt is None or rt.namespace.run_id != invocation.run_id or rt.owner:
        settings = config.Settings(**invocation.settings)
        configure_logging(settings.log_level)
        rt = Runtime(settings, invocation.store_url, invocation.run_id,
                     bytes.fromhex(invocation.secret), owner=False, token=invocation.id)
        _current = rt
    rt.token = invocation.id
    return rt
