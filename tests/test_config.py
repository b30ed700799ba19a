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
                         "TRANSPARENT_MP_REDIS_URL": "rediss://:pw@h:6379",
                         "TRANSPARENT_MP_LOG_LEVEL": "debug", "TRANSPARENT_MP_STATS": "yes"})
    assert (s.backend, s.workers, s.concurrency, s.redis_url, s.log_level, s.stats) == (
        "lambda", 64, 64, "rediss://:pw@h:6379", "DEBUG", True)


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


@pytest.mark.parametrize(("url", "message"), [
    ("", "embedded server listens only on this machine"),
    ("unix:///tmp/redis.sock", "cannot reach a unix:// socket"),
    ("rediss://cache.example.com:6379", "has no password"),
])
def test_lambda_needs_a_store_the_functions_can_reach(url, message):
    with pytest.raises(ValueError, match=message):
        config.from_env({"TRANSPARENT_MP_BACKEND": "lambda", "TRANSPARENT_MP_REDIS_URL": url})


def test_lambda_defaults_to_ten_workers():
    s = config.from_env({"TRANSPARENT_MP_BACKEND": "lambda",
                         "TRANSPARENT_MP_REDIS_URL": "rediss://:pw@h:6379"})
    assert (s.concurrency, s.lambda_function, s.heartbeat) == (
        config.LAMBDA_DEFAULT_WORKERS, "transparent-mp", 2.0)
