"""One settings object, read from ``TRANSPARENT_MP_*`` environment variables.

The command line writes its flags into the same variables before the app
starts, so a flag wins over the inherited environment and every interpreter
the run starts (workers, ``subprocess`` children) sees the same settings.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

BACKENDS = ("local", "lambda")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    """What a run is configured with; see the README's table."""

    backend: str = "local"
    #: ``redis://``, ``rediss://`` or ``unix://`` URL; empty means an embedded server.
    redis_url: str = ""
    #: What ``cpu_count()`` reports, the default Pool size and the number of
    #: warm workers kept. Zero means this machine's CPU count.
    workers: int = 0
    log_level: str = "WARNING"
    #: Seconds a warm local worker waits for work before it retires.
    idle_timeout: float = 60.0
    #: Print a usage summary (invocations, bytes) at exit.
    stats: bool = False

    @property
    def concurrency(self) -> int:
        return self.workers or os.cpu_count() or 1

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[env_name(f.name)] = str(int(value) if isinstance(value, bool) else value)
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def env_name(field_name: str) -> str:
    return "TRANSPARENT_MP_" + field_name.upper()


def _parse(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{env_name(name)}={raw!r} is not a valid {kind.__name__}") from None


def _validate(s: Settings) -> Settings:
    if s.backend not in BACKENDS:
        raise ValueError(f"unknown backend {s.backend!r}; choose one of {', '.join(BACKENDS)}")
    if s.workers < 0:
        raise ValueError(f"workers must be >= 0, not {s.workers}")
    if s.log_level.upper() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    return s


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default ``os.environ``) over the defaults."""
    environ = os.environ if environ is None else environ
    kinds = {"backend": str, "redis_url": str, "workers": int, "log_level": str,
             "idle_timeout": float, "stats": bool}
    values = {}
    for f in fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            values[f.name] = _parse(f.name, raw, kinds[f.name])
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    return _validate(Settings(**values))


_current: Settings | None = None


def settings() -> Settings:
    """The settings of this interpreter, read once from the environment."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


def reload() -> Settings:
    """Forget the cached settings and read the environment again."""
    global _current
    _current = None
    return settings()
