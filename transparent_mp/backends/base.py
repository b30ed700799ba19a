"""The interface between the primitives and whatever runs an invocation.

An :class:`Invocation` carries only references: the store's URL, the run's
namespace and key, and the store key of its payload. A backend starts it
somewhere and returns an :class:`InvocationHandle`, through which the driver
learns the invocation's pid and exit code and can signal it.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..util import logger

#: Longest wait for a backend to report that an invocation has started.
START_TIMEOUT = 120.0


@dataclass
class Invocation:
    """One unit of remote work; serialisable as a small JSON document."""

    id: str
    kind: str  # "process", ...
    run_id: str
    store_url: str
    secret: str  # hex of the run's signing key
    payload_key: str
    prep_key: str
    #: The fork snapshot's manifest ("" for spawn and forkserver: main is rebuilt).
    snapshot_key: str = ""
    settings: dict = field(default_factory=dict)
    #: The driver's Python and cloudpickle versions (see ``serialize.versions``).
    versions: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Invocation:
        return cls(**json.loads(text))


class InvocationHandle:
    """The driver's view of one invocation: started, pid, exit code, sentinel.

    ``sentinel`` is a real file descriptor that becomes readable when the
    invocation ends, so it works with ``multiprocessing.connection.wait``.
    """

    def __init__(self, invocation_id: str) -> None:
        self.id = invocation_id
        self.exitcode: int | None = None
        self._pid: int | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._exit_callbacks: list[Callable[[], None]] = []
        self.sentinel, self._sentinel_w = os.pipe()
        #: Descriptors still open; each is closed once (a number closed twice may
        #: by then belong to someone else).
        self._open_fds = [self.sentinel, self._sentinel_w]
        self._finalizer = weakref.finalize(self, _close_fds, self._open_fds)

    # -- reported by the backend --
    def set_started(self, pid: int) -> None:
        self._pid = pid
        self._started.set()

    def add_exit_callback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the invocation ends, before anyone waiting is woken."""
        self._exit_callbacks.append(callback)

    def set_exit(self, exitcode: int) -> None:
        """Record the exit code; the first report wins."""
        with self._lock:
            if self._ended.is_set():
                return
            for callback in self._exit_callbacks:
                try:
                    callback()
                except Exception as exc:  # the exit itself must still be reported
                    logger.warning("cleanup after invocation %s failed: %s", self.id, exc)
            self.exitcode = exitcode
            self._ended.set()
            self._started.set()
            _close_fds(self._open_fds, self._sentinel_w)

    # -- asked by the driver --
    @property
    def pid(self) -> int | None:
        if not self._started.wait(START_TIMEOUT):
            raise TimeoutError(f"invocation {self.id} did not start within {START_TIMEOUT}s")
        return self._pid

    def poll(self) -> int | None:
        return self.exitcode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        self._ended.wait(timeout)
        return self.poll()

    def signal(self, sig: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._finalizer()


def _close_fds(fds: list[int], only: int | None = None) -> None:
    """Close (and forget) the descriptors in ``fds``, or just ``only`` of them."""
    for fd in [fd for fd in fds if only is None or fd == only]:
        try:
            fds.remove(fd)
        except ValueError:  # closed by another thread meanwhile
            continue
        try:
            os.close(fd)
        except OSError:
            pass


class Backend(ABC):
    """Runs invocations. Implementations: ``local`` and ``lambda``."""

    name: str
    #: Seconds one invocation may run (Lambda: 900), or None for no limit.
    time_limit: float | None = None

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.invocations = 0

    @abstractmethod
    def invoke(self, invocation: Invocation) -> InvocationHandle:
        """Start ``invocation`` now; never queue it behind another."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every worker this backend started."""
