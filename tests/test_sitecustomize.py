"""The sitecustomize template installs the hook once and keeps an existing sitecustomize."""

from __future__ import annotations

import os

from conftest import run

from transparent_mp.util import sitecustomize_dir

PROBE = ("import sys, multiprocessing, transparent_mp\n"
         "from transparent_mp import hook\n"
         "finders = sum(isinstance(f, hook._Finder) for f in sys.meta_path)\n"
         "print(transparent_mp.is_installed(), finders, multiprocessing.Process.__module__)\n")


def test_installs_the_hook_at_start():
    result = run("site", ["-c", PROBE])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "transparent_mp.process"]


def test_chains_the_sitecustomize_that_was_there(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE_RAN = 1\n")
    path = os.pathsep.join([sitecustomize_dir(), str(tmp_path)])
    code = PROBE + "import builtins; print(getattr(builtins, 'USER_SITE_RAN', 0))\n"
    result = run("plain", ["-c", code], env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "transparent_mp.process", "1"]


def test_never_installs_twice():
    path = os.pathsep.join([sitecustomize_dir(), sitecustomize_dir()])
    code = ("import importlib, sitecustomize\n"
            "importlib.reload(sitecustomize)\n" + PROBE)
    result = run("plain", ["-c", code], env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "transparent_mp.process"]
