"""Shared fixtures: a real redis-server per test that needs one, programs run
under the CLI or the sitecustomize hook, and leak checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from transparent_mp import runtime
from transparent_mp.store.server import EmbeddedServer
from transparent_mp.util import sitecustomize_dir

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
RUN_TIMEOUT = 120


def pytest_collection_modifyitems(config, items):
    """On another backend (tests/test_lambda.py runs the suites there), skip what
    is about the local backend's own worker processes."""
    backend = os.environ.get("TRANSPARENT_MP_BACKEND", "local")
    if backend == "local":
        return
    skip = pytest.mark.skip(reason=f"about the local backend's workers; this run is on {backend}")
    for item in items:
        if "local_backend" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def redis_server() -> Iterator[EmbeddedServer]:
    """A real redis-server owned by this test, stopped afterwards."""
    server = EmbeddedServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        client.close()


def program_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSPARENT_MP_")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def command(mode: str, target: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``target`` in ``mode``.

    ``mode`` is ``plain`` (stdlib python), ``cli`` (``python -m transparent_mp``)
    or ``site`` (``PYTHONPATH=<sitecustomize dir> python``).
    """
    if mode == "plain":
        return [sys.executable, *target], program_env()
    if mode == "cli":
        return [sys.executable, "-m", "transparent_mp", *target], program_env()
    if mode == "site":
        return [sys.executable, *target], program_env(PYTHONPATH=sitecustomize_dir())
    raise ValueError(mode)


def run(mode: str, target: list[str], cwd: Path | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    argv, env = command(mode, target)
    env.update(kwargs.pop("env", {}))
    return subprocess.run(argv, cwd=cwd or APPS, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, **kwargs)


def descendants(pid: int) -> set[int]:
    """Pids of every living descendant of ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def driver() -> Iterator[runtime.Runtime]:
    """This test process as a driver; checks no process is left behind, no payload
    is left unconsumed, and deletes the keys of the test's shared objects."""
    from multiprocessing.process import active_children

    rt = runtime.current()
    yield rt
    leftover = [p for p in active_children() if type(p).__module__ == "transparent_mp.process"]
    for p in leftover:
        p.kill()
        p.join(10)
    keys = [k.decode() for k in rt.namespace.keys(rt.conn())]
    # the test's shared objects live as long as the run: delete them with the test
    # (preparation data and fork snapshots stay: the driver stores each only once)
    lasting = (rt.namespace.key("prep"), rt.namespace.key("snap"))
    mine = [k for k in keys if not k.startswith(lasting)]
    if mine:
        rt.conn().execute("UNLINK", *mine)
    assert not leftover, f"test left processes running: {leftover}"
    # an invocation's payload is consumed when it starts: none may be left
    assert not [k for k in mine if k.startswith(rt.namespace.key("payload"))]
