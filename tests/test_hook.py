"""The import hook: substitutions, install/uninstall, contexts, originals."""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import multiprocessing.context
import sys

import pytest
from conftest import run

import transparent_mp
from transparent_mp import config, hook
from transparent_mp.context import RemoteContext
from transparent_mp.original import multiprocessing as original_mp
from transparent_mp.process import Process

#: The rows whose module is installed (pandarallel comes with the apps extra only).
ROWS = [row for row in hook.SUBSTITUTIONS
        if importlib.util.find_spec(row[0].partition(".")[0]) is not None]
STDLIB = {(module, name): getattr(importlib.import_module(module), name)
          for module, name, _ in ROWS}


@pytest.fixture
def installed():
    assert not hook.is_installed()
    transparent_mp.install()
    try:
        yield
    finally:
        transparent_mp.uninstall()


def test_already_imported_module_is_patched_at_once(installed):
    assert hook.is_installed()
    assert multiprocessing.Process is Process
    assert isinstance(multiprocessing.get_context(), RemoteContext)


def test_every_row_of_the_table_is_applied(installed):
    for module_name, name, target in ROWS:
        assert getattr(sys.modules[module_name], name) == hook._resolve(target)


def test_install_twice_is_a_no_op(installed):
    transparent_mp.install()
    assert sum(isinstance(f, hook._Finder) for f in sys.meta_path) == 1


def test_uninstall_restores_every_original(installed):
    transparent_mp.uninstall()
    assert not hook.is_installed()
    for (module, name), value in STDLIB.items():
        assert getattr(sys.modules[module], name) is value
    assert not any(isinstance(f, hook._Finder) for f in sys.meta_path)
    transparent_mp.install()  # for the fixture's uninstall


def test_originals_stay_reachable(installed):
    assert original_mp.Process is STDLIB["multiprocessing", "Process"]
    assert original_mp.Queue is STDLIB["multiprocessing", "Queue"]
    assert original_mp.current_process is multiprocessing.current_process  # never replaced


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_every_start_method_is_remote(installed, method):
    ctx = multiprocessing.get_context(method)
    assert isinstance(ctx, RemoteContext)
    assert ctx.get_start_method() == method
    assert issubclass(ctx.Process, Process) and ctx.Process._start_method == method
    assert ctx.get_context() is ctx


def test_start_methods_are_the_stdlibs(installed):
    stdlib_methods = STDLIB["multiprocessing", "get_all_start_methods"]()
    assert multiprocessing.get_all_start_methods() == stdlib_methods
    with pytest.raises(ValueError, match="cannot find context"):
        multiprocessing.get_context("threads")


def test_set_start_method_follows_the_stdlib(installed):
    ctx = multiprocessing.get_context.__self__
    try:
        ctx.set_start_method(None, force=True)
        assert multiprocessing.get_start_method(allow_none=True) is None
        multiprocessing.set_start_method("spawn")
        assert multiprocessing.get_start_method() == "spawn"
        with pytest.raises(RuntimeError, match="already been set"):
            multiprocessing.set_start_method("fork")
        multiprocessing.set_start_method("forkserver", force=True)
        assert multiprocessing.get_context().get_start_method() == "forkserver"
    finally:
        ctx.set_start_method(None, force=True)


def test_cpu_count_reports_the_configured_concurrency(installed):
    assert multiprocessing.cpu_count() == config.settings().concurrency


def test_module_imported_after_install_is_patched():
    code = ("import sys, transparent_mp\n"
            "assert 'multiprocessing' not in sys.modules\n"
            "transparent_mp.install()\n"
            "import multiprocessing, multiprocessing.context as c\n"
            "print(multiprocessing.Process.__module__, type(c._default_context).__name__)\n")
    result = run("plain", ["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["transparent_mp.process", "DefaultContext"]


def test_libraries_that_subclass_the_context_process_work():
    code = ("import multiprocessing as mp\n"
            "ctx = mp.get_context('forkserver')\n"
            "class Env(ctx.Process):\n"
            "    def run(self): print('env ran in', mp.current_process().name)\n"
            "if __name__ == '__main__':\n"
            "    p = Env(name='env-0', daemon=True); p.start(); p.join(); print(p.exitcode)\n")
    result = run("cli", ["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["env ran in env-0", "0"]


def test_thread_pools_stay_local_threads():
    code = ("import os, multiprocessing.pool as p, multiprocessing.dummy as d\n"
            "with p.ThreadPool(2) as tp:\n"
            "    print(tp.map(abs, [-1, -2]), tp.apply(os.getpid) == os.getpid())\n"
            "with d.Pool(2) as tp:\n"
            "    print(list(tp.imap(abs, [-3])))\n")
    result = run("cli", ["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[1, 2] True", "[3]"]
