"""The key space of a run: every key lives under ``tmp:<run id>:`` and has a TTL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..util import logger

if TYPE_CHECKING:
    from .resp import Connection

#: Seconds a key lives unless the driver refreshes it; a crashed run's keys expire.
KEY_TTL = 600
REFRESH_INTERVAL = 60.0


class Namespace:
    """Key names of one run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.prefix = f"tmp:{run_id}:"

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def _scan(self, conn: Connection) -> Iterator[list[bytes]]:
        cursor = b"0"
        while True:
            cursor, batch = conn.execute("SCAN", cursor, "MATCH", self.prefix + "*",
                                         "COUNT", 1000)
            if batch:
                yield batch
            if cursor in (b"0", 0):
                return

    def keys(self, conn: Connection) -> list[bytes]:
        return [key for batch in self._scan(conn) for key in batch]

    def refresh(self, conn: Connection) -> None:
        """Push the TTL of every key of the run back to :data:`KEY_TTL`."""
        for batch in self._scan(conn):
            conn.execute_many([("EXPIRE", key, KEY_TTL) for key in batch])

    def delete_all(self, conn: Connection) -> None:
        for batch in self._scan(conn):
            conn.execute("UNLINK", *batch)


class Refresher(threading.Thread):
    """Keeps a run's keys alive while the driver lives."""

    def __init__(self, namespace: Namespace, url: str) -> None:
        super().__init__(name="transparent_mp-ttl", daemon=True)
        self.namespace, self.url = namespace, url
        self.stopped = threading.Event()

    def run(self) -> None:
        from .resp import Connection

        conn = None
        while not self.stopped.wait(REFRESH_INTERVAL):
            try:
                conn = conn or Connection(self.url)
                self.namespace.refresh(conn)
            except Exception as exc:
                logger.warning("could not refresh key TTLs: %s", exc)
                conn = None

    def stop(self) -> None:
        self.stopped.set()
