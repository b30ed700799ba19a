"""Fork semantics: programs written for Linux's default start method give plain
python's output under the hook, and the same programs under ``spawn`` give the
stdlib's spawn errors. Each program runs under plain python, ``python -m
transparent_mp`` and the sitecustomize route."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from conftest import APPS, command, descendants, run

from transparent_mp import snapshot

FORK_PROGRAMS = [
    "fork_guard_global.py",  # a global set in the main guard, read by the tasks
    "fork_guard_function.py",  # a function and a class defined in the main guard
    "fork_no_guard.py",  # no main guard at all
    "fork_module_state.py",  # an app module's state set before the Pool starts
    "fork_lock_target.py",  # a target bound to an object that holds threading locks
    "fork_inherits.py",  # argv, environ, logging, numpy's random state, random reseeded
]


@pytest.fixture(scope="module")
def plain_outputs() -> dict[str, subprocess.CompletedProcess]:
    return {program: run("plain", [program]) for program in FORK_PROGRAMS}


@pytest.mark.parametrize("mode", ["cli", "site"])
@pytest.mark.parametrize("program", FORK_PROGRAMS)
def test_fork_programs_give_plain_pythons_output(plain_outputs, program, mode):
    plain = plain_outputs[program]
    assert plain.returncode == 0, plain.stderr
    ours = run(mode, [program])
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert logged(ours.stderr) == logged(plain.stderr)


def logged(stderr: str) -> list[str]:
    """The lines the programs log (at INFO and above), in order."""
    return [line for line in stderr.splitlines() if line.startswith(("INFO ", "WARNING "))]


def test_what_cannot_travel_is_a_placeholder_that_names_it():
    plain = run("plain", ["fork_placeholder.py"])
    ours = run("cli", ["fork_placeholder.py"])
    assert plain.returncode == ours.returncode == 0, ours.stderr
    assert plain.stdout.splitlines() == ["the word is still here", "got 0", "exitcode 0",
                                         "the word is still here", "got True", "exitcode 0"]
    lines = ours.stdout.splitlines()
    assert lines[0] == lines[3] == "the word is still here"  # the rest did travel
    assert lines[2] == lines[5] == "exitcode 0"
    assert lines[1].startswith("StateUnavailable: global 'NUMBERS' of module __main__ "
                               "(a builtins.generator) did not travel")
    assert "cannot pickle 'generator' object" in lines[1]
    assert lines[4].startswith("StateUnavailable: global 'LISTENER' of module __main__ "
                               "(a socket.socket) did not travel")


@pytest.mark.parametrize("mode", ["plain", "cli"])
@pytest.mark.parametrize(("program", "error"), [
    ("fork_guard_global.py", "TypeError: 'NoneType' object is not subscriptable"),
    ("fork_lock_target.py", "TypeError: cannot pickle '_thread.lock' object"),
])
def test_under_spawn_the_same_programs_fail_as_the_stdlibs_spawn(program, error, mode):
    result = run(mode, [program, "spawn"])
    assert result.returncode == 1
    assert error in result.stderr


@pytest.mark.parametrize("mode", ["plain", "cli"])
def test_set_start_method_decides_the_semantics_too(mode):
    spawned = run(mode, ["fork_guard_global.py", "spawn", "set"])
    assert spawned.returncode == 1
    assert "TypeError: 'NoneType' object is not subscriptable" in spawned.stderr
    forked = run(mode, ["fork_guard_global.py", "fork", "set"])
    assert forked.returncode == 0, forked.stderr
    assert forked.stdout == run("plain", ["fork_guard_global.py"]).stdout


def test_under_spawn_a_function_of_the_guard_is_not_found_in_the_worker():
    # (the stdlib's pool then hangs, its workers dying one after another; ours
    # fails the tasks with the same error)
    result = run("cli", ["fork_guard_function.py", "spawn"])
    assert result.returncode == 1
    assert "AttributeError: Can't get attribute 'scale' on <module '__mp_main__'" \
        in result.stderr


@pytest.mark.parametrize("mode", ["plain", "cli"])
def test_under_spawn_a_script_without_a_guard_fails_to_bootstrap(mode):
    # Under spawn both the stdlib and we restart the failing workers for ever: read
    # stderr until the error appears, then end the program.
    argv, env = command(mode, ["fork_no_guard.py", "spawn"])
    proc = subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    timer = threading.Timer(100, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    try:
        found = any("has finished its bootstrapping phase" in line for line in proc.stderr)
    finally:
        timer.cancel()
        tree = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stderr.close()
    assert found


def test_module_state_under_spawn_is_the_imported_one():
    plain = run("plain", ["fork_module_state.py", "spawn"])
    ours = run("cli", ["fork_module_state.py", "spawn"])
    assert plain.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "set in main" not in ours.stdout


# -- the snapshot itself, in this process --

UNCHANGED = list(range(100_000))


def test_unchanged_globals_keep_their_blobs(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CHANGING", [1], raising=False)
    first = snapshot.take()
    monkeypatch.setattr(sys.modules[__name__], "CHANGING", [2], raising=False)
    second = snapshot.take()
    (module,) = [m for m in first.manifest["modules"] if m["name"] == __name__]
    (again,) = [m for m in second.manifest["modules"] if m["name"] == __name__]
    assert module["attrs"]["UNCHANGED"][0] == "b"  # large: a blob of its own
    assert module["attrs"]["UNCHANGED"] == again["attrs"]["UNCHANGED"]
    assert module["attrs"]["CHANGING"] != again["attrs"]["CHANGING"]


def test_a_placeholder_raises_on_any_use_and_pickles():
    import pickle

    stand_in = snapshot.Unavailable("global 'conn' of module app", "sqlite3.Connection",
                                    "TypeError: cannot pickle")
    for use in (lambda: stand_in.cursor(), lambda: stand_in(), lambda: len(stand_in),
                lambda: bool(stand_in), lambda: stand_in[0], lambda: iter(stand_in)):
        with pytest.raises(snapshot.StateUnavailable, match="global 'conn' of module app "
                                                            r"\(a sqlite3.Connection\)"):
            use()
    assert "conn" in repr(pickle.loads(pickle.dumps(stand_in)))


def test_a_large_snapshot_is_logged_and_warned_about_once():
    code = ("import multiprocessing as mp\n"
            "BIG = bytes(101 * 10**6)\n"
            "for _ in range(2):\n"
            "    p = mp.Process(target=len, args=(BIG[:3],)); p.start(); p.join()\n"
            "print(p.exitcode)\n")
    result = run("cli", ["-v", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"
    assert result.stderr.count("fork snapshot: ") >= 2  # the size of each, at -v
    warnings = [line for line in result.stderr.splitlines() if "is 101 MB" in line]
    assert len(warnings) == 1 and "__main__.BIG 101.0 MB" in warnings[0], result.stderr
