"""The suite on every supported Python: ``nox`` runs the core suite (all but the
apps extra's tests) on each supported version other than the one nox runs on,
which the README's ``python -m pytest`` covers. A missing interpreter is an error
that names it. ``nox -l`` lists the sessions; ``conformance-3.X`` runs that
version's whole CPython multiprocessing suite (for ``conformance/RESULTS.md``).

Interpreters are found on ``PATH`` (``python3.12``...); those installed by pyenv
are found too, without a ``pyenv shell``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nox

SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"

nox.options.sessions = [f"tests-{v}" for v in SUPPORTED if v != RUNNING]
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"


def _pyenv_versions() -> None:
    """Make pyenv's shims answer for every installed supported version."""
    if shutil.which("pyenv") is None:
        return
    installed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True,
                               text=True).stdout.split()
    current = os.environ.get("PYENV_VERSION") or subprocess.run(
        ["pyenv", "version-name"], capture_output=True, text=True).stdout.strip()
    newest = {}
    for name in installed:  # sorted ascending by pyenv: the last of each X.Y wins
        parts = name.split(".")
        if len(parts) == 3 and ".".join(parts[:2]) in SUPPORTED and parts[2].isdigit():
            newest[".".join(parts[:2])] = name
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*current.split(":"),
                                                          *newest.values()]))


_pyenv_versions()


@nox.session(python=SUPPORTED)
def tests(session: nox.Session) -> None:
    """The core suite: everything but the tests of the apps extra."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "not apps", *session.posargs)


@nox.session(python=SUPPORTED)
def conformance(session: nox.Session) -> None:
    """This version's CPython multiprocessing suite, both flavours (about 4 minutes)."""
    session.install("-e", ".[test]")
    for flavour in ("processes", "manager"):
        session.run("python", "conformance/run.py", "--flavour", flavour, *session.posargs)
