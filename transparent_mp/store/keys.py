"""The key space of a run: every key lives under ``tmp:<run id>:`` and has a TTL."""

from __future__ import annotations

import threading

import redis

from ..util import logger

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

    def keys(self, client: redis.Redis) -> list[bytes]:
        return list(client.scan_iter(match=self.prefix + "*", count=1000))

    def refresh(self, client: redis.Redis) -> None:
        """Push the TTL of every key of the run back to :data:`KEY_TTL`."""
        with client.pipeline(transaction=False) as pipe:
            for i, key in enumerate(client.scan_iter(match=self.prefix + "*", count=1000), 1):
                pipe.expire(key, KEY_TTL)
                if i % 1000 == 0:
                    pipe.execute()
            pipe.execute()

    def delete_all(self, client: redis.Redis) -> None:
        batch = []
        for key in client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)


class Refresher(threading.Thread):
    """Keeps a run's keys alive while the driver lives."""

    def __init__(self, namespace: Namespace, client: redis.Redis) -> None:
        super().__init__(name="transparent_mp-ttl", daemon=True)
        self.namespace, self.client = namespace, client
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(REFRESH_INTERVAL):
            try:
                self.namespace.refresh(self.client)
            except redis.RedisError as exc:
                logger.warning("could not refresh key TTLs: %s", exc)

    def stop(self) -> None:
        self.stopped.set()
