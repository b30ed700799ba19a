"""Connections to the store, with timeouts on every call."""

from __future__ import annotations

import re

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT = 3.0
#: Longest a single non-blocking command may take before the store counts as lost.
COMMAND_TIMEOUT = 30.0


class StoreUnavailable(ConnectionError):
    """The Redis store cannot be reached (or stopped answering)."""


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    url = re.sub(r"(password=)[^&]*", r"\1***", url)
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def connect(url: str) -> redis.Redis:
    """A client for ``url`` that has answered a PING, or :class:`StoreUnavailable`.

    The first PING gets only :data:`CONNECT_TIMEOUT`, so a server that accepts
    connections but never answers is reported within seconds.
    """
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT,
        health_check_interval=0, retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
        pool = client.connection_pool
        pool.disconnect()  # later connections get the longer command timeout
        pool.connection_kwargs["socket_timeout"] = COMMAND_TIMEOUT
    except redis.AuthenticationError as exc:
        client.close()
        raise StoreUnavailable(
            f"the Redis store at {redacted(url)} refused the password: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        client.close()
        raise StoreUnavailable(
            f"cannot reach the Redis store at {redacted(url)}: {exc}") from exc
    return client
