"""One settings object, read from ``TRANSPARENT_MP_*`` environment variables.

The command line writes its flags into the same variables before the app
starts, so a flag wins over the inherited environment and every interpreter
the run starts (workers, ``subprocess`` children) sees the same settings.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from urllib.parse import urlparse

BACKENDS = ("local", "lambda")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Concurrency of the ``lambda`` backend when ``workers`` is not set (new AWS
#: accounts may run only 10 functions at once; raise it with ``--workers``).
LAMBDA_DEFAULT_WORKERS = 10


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
    #: Print a usage summary (invocations, bytes, Lambda cost) at exit.
    stats: bool = False
    #: The Lambda function (name or ARN) that ``deploy`` made and the ``lambda`` backend invokes.
    lambda_function: str = "transparent-mp"
    #: AWS region; empty means boto3's own default (``AWS_REGION``, the profile).
    aws_region: str = ""
    #: Endpoint of the Lambda API; empty means AWS's. For emulators and tests.
    lambda_endpoint_url: str = ""
    #: Seconds between a Lambda worker's heartbeats; five missed ones mean it is lost.
    heartbeat: float = 2.0
    #: Seconds an invoked function may take to start an invocation before it is lost.
    start_timeout: float = 120.0
    #: Prices for the cost estimate (USD; AWS's x86 list price in us-east-1).
    price_gb_second: float = 0.0000166667
    price_request: float = 0.0000002

    @property
    def concurrency(self) -> int:
        if self.workers:
            return self.workers
        if self.backend == "lambda":
            return LAMBDA_DEFAULT_WORKERS
        return os.cpu_count() or 1

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
    if s.backend == "lambda":
        _check_lambda_store(s.redis_url)
    if s.heartbeat <= 0 or s.start_timeout <= 0:
        raise ValueError("heartbeat and start_timeout must be > 0 seconds")
    if s.log_level.upper() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    return s


def _check_lambda_store(url: str) -> None:
    """Lambda functions need a store they can reach, behind a password."""
    if not url:
        raise ValueError(
            "the lambda backend needs a Redis that the functions can reach: give "
            "--redis-url rediss://:<password>@<host>:6379 (e.g. ElastiCache in the function's "
            "VPC); the embedded server listens only on this machine")
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        raise ValueError("the lambda backend cannot reach a unix:// socket on this machine: "
                         "give a rediss:// URL")
    if not (parsed.password or "password=" in parsed.query):
        raise ValueError(
            "the lambda backend's Redis URL has no password: payloads are pickles, so anyone "
            "who can write to the store can run code on the workers; give "
            "rediss://:<password>@<host>:6379")


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default ``os.environ``) over the defaults."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            values[f.name] = _parse(f.name, raw, type(f.default))
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
