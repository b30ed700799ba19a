"""The state store: one Redis server, the lean connection to it and the run's key space."""

from .keys import KEY_TTL, Namespace
from .resp import StoreUnavailable, connect, redacted

__all__ = ["KEY_TTL", "Namespace", "StoreUnavailable", "connect", "redacted"]
