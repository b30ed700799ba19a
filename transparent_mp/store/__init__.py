"""The state store: one Redis server, its client and the run's key space."""

from .client import StoreUnavailable, connect, redacted
from .keys import KEY_TTL, Namespace

__all__ = ["KEY_TTL", "Namespace", "StoreUnavailable", "connect", "redacted"]
