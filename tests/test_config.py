"""Settings from the environment."""

from __future__ import annotations

import os

import pytest

from transparent_mp import config


def test_defaults():
    s = config.from_env({})
    assert (s.backend, s.redis_url, s.workers, s.log_level) == ("local", "", 0, "WARNING")
    assert s.concurrency == os.cpu_count()


def test_environment_overrides_defaults():
    s = config.from_env({"TRANSPARENT_MP_BACKEND": "lambda", "TRANSPARENT_MP_WORKERS": "64",
                         "TRANSPARENT_MP_REDIS_URL": "rediss://h:6379",
                         "TRANSPARENT_MP_LOG_LEVEL": "debug", "TRANSPARENT_MP_STATS": "yes"})
    assert (s.backend, s.workers, s.concurrency, s.redis_url, s.log_level, s.stats) == (
        "lambda", 64, 64, "rediss://h:6379", "DEBUG", True)


def test_settings_round_trip_through_the_environment():
    s = config.Settings(backend="local", workers=3, idle_timeout=2.5, stats=True)
    assert config.from_env(s.to_env()) == s


@pytest.mark.parametrize(("name", "value", "message"), [
    ("BACKEND", "k8s", "unknown backend"),
    ("WORKERS", "many", "not a valid int"),
    ("WORKERS", "-1", "must be >= 0"),
    ("LOG_LEVEL", "loud", "log level"),
])
def test_bad_values_are_clear_errors(name, value, message):
    with pytest.raises(ValueError, match=message):
        config.from_env({f"TRANSPARENT_MP_{name}": value})
