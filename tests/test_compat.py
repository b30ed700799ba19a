"""What differs between Python versions: the stdlib's private names this package
uses, the hook's table against each module's public names, the default start
method and 3.12's warning for fork with threads, on the interpreter running."""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import sys

import pytest
from conftest import run

from transparent_mp import compat, hook

#: The modules whose public names the hook's table must account for.
PATCHED = ["multiprocessing", "multiprocessing.pool", "multiprocessing.connection",
           "multiprocessing.managers", "multiprocessing.sharedctypes", "concurrent.futures"]


def test_every_private_name_the_package_uses_is_here():
    assert callable(compat.default_context.get_context)
    assert callable(compat.exit_function)
    assert isinstance(compat.logger_settings(), dict)
    assert callable(compat.run_module_as_main)
    assert isinstance(compat.lru_cache_wrapper, type)
    assert issubclass(compat.PoolCache, dict)
    assert callable(compat.helper_reraises_exception)
    assert isinstance(compat.IMAP_BUFFERSIZE, bool)
    import logging

    assert compat.formatter_spec(logging.Formatter("%(message)s")) == ("%(message)s",
                                                                       "PercentStyle")


@pytest.mark.parametrize("owner", sorted(compat.OBJECT_ATTRIBUTES))
def test_the_private_attributes_our_subclasses_use_exist(owner):
    module_name, _, class_name = owner.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls is concurrent.futures.Future:
        instance = cls()  # set in __init__
        for name in compat.OBJECT_ATTRIBUTES[owner]:
            assert hasattr(instance, name), f"{owner}.{name}"
        assert instance._state == "PENDING"
        return
    for name in compat.OBJECT_ATTRIBUTES[owner]:
        # a method on the class, or set by the class's own code
        assert hasattr(cls, name) or f"self.{name} =" in _source(cls), f"{owner}.{name}"


def _source(cls: type) -> str:
    import inspect

    return "".join(inspect.getsource(k) for k in cls.__mro__ if k is not object)


def test_the_pool_result_iterator_is_built_as_this_version_builds_it(driver):
    from transparent_mp.pool import IMapIterator, Pool

    with Pool(1) as pool:
        it = compat.imap_iterator(IMapIterator, pool._core)
        it._set_length(0)
        assert list(it) == []


@pytest.mark.parametrize("module_name", PATCHED)
def test_every_public_name_is_substituted_or_kept_on_purpose(module_name):
    module = importlib.import_module(module_name)
    substituted = {name for mod, name, _ in hook.SUBSTITUTIONS if mod == module_name}
    kept = set(hook.KEPT.get(module_name, {}))
    unaccounted = set(module.__all__) - substituted - kept
    assert not unaccounted, f"{module_name} has names the hook does not account for"
    assert not substituted & kept


def test_every_process_backend_of_joblib_is_ours():
    from joblib import parallel

    from transparent_mp.integrations.joblib import BACKENDS, RemoteBackend

    assert set(BACKENDS) == set(parallel.BACKENDS)
    for name, backend in parallel.BACKENDS.items():
        threads = getattr(backend, "uses_threads", False) is True
        assert (BACKENDS[name] is RemoteBackend) == (not threads), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's defaults")
def test_the_default_start_method_is_this_versions():
    expected = "forkserver" if sys.version_info >= (3, 14) else "fork"
    assert compat.default_context.get_start_method() == expected
    code = "import multiprocessing as mp; print(mp.get_start_method())"
    plain, ours = run("plain", ["-c", code]), run("cli", ["-c", code])
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout == expected + "\n"


FORK_WITH_THREAD = """
import multiprocessing as mp, sys, threading
def f():
    pass
if __name__ == '__main__':
    mp.set_start_method('fork')
    stop = threading.Event()
    if sys.argv[1] == 'thread':
        threading.Thread(target=stop.wait).start()
    p = mp.Process(target=f)
    p.start()
    p.join()
    stop.set()
    print('exit', p.exitcode)
"""


@pytest.mark.parametrize("threads", ["thread", "none"])
def test_fork_with_threads_warns_only_where_plain_python_does(tmp_path, threads):
    script = tmp_path / "fork_thread.py"
    script.write_text(FORK_WITH_THREAD)
    plain = run("plain", ["-W", "always::DeprecationWarning", str(script), threads])
    ours = run("cli", [str(script), threads],
               env={"PYTHONWARNINGS": "always::DeprecationWarning"})
    assert plain.returncode == ours.returncode == 0, ours.stderr
    assert plain.stdout == ours.stdout == "exit 0\n"
    warned = "is multi-threaded, use of fork() may lead to deadlocks" in ours.stderr
    assert warned == ("is multi-threaded" in plain.stderr)
    assert warned == (threads == "thread" and compat.FORK_WARNS_WITH_THREADS)


def _wait(started, release) -> None:
    started.set()
    release.wait(60)


def test_the_3_14_names_are_written_for_the_version(driver):
    from transparent_mp.futures import ProcessPoolExecutor
    from transparent_mp.process import Process
    from transparent_mp.synchronize import Event

    assert hasattr(ProcessPoolExecutor, "kill_workers") == compat.EXECUTOR_TERMINATE_WORKERS
    assert hasattr(multiprocessing.Process, "interrupt") == (sys.version_info >= (3, 14))
    started, release = Event(), Event()
    p = Process(target=_wait, args=(started, release))
    p.start()
    assert started.wait(30)
    # 3.14's Process.interrupt() is its Popen's interrupt(): SIGINT, a KeyboardInterrupt
    (p.interrupt if hasattr(p, "interrupt") else p._popen.interrupt)()
    p.join(30)
    assert p.exitcode == 1
