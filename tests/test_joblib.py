"""joblib, and scikit-learn through it, on remote workers under the hook."""

from __future__ import annotations

import json

from conftest import ROOT, run

PROBE = '''
import json, multiprocessing, os, time
from joblib import Parallel, delayed, parallel_config

def where(i):
    return os.getpid(), os.getcwd(), i * i

def slow(i):
    time.sleep(1.0)
    return i

def fail_on_three(i):
    if i == 3:
        raise ValueError("three")
    return i

if __name__ == "__main__":
    out = {"driver": os.getpid()}
    out["default"] = Parallel(n_jobs=2)(delayed(where)(i) for i in range(8))
    out["loky"] = Parallel(n_jobs=2, backend="loky")(delayed(where)(i) for i in range(4))
    out["threads"] = Parallel(n_jobs=2, prefer="threads")(delayed(where)(i) for i in range(4))
    out["sharedmem"] = Parallel(n_jobs=2, require="sharedmem")(delayed(where)(i) for i in range(4))
    gen = Parallel(n_jobs=2, return_as="generator")(delayed(where)(i) for i in range(4))
    out["generator"] = [r[2] for r in gen]
    unordered = Parallel(n_jobs=2, return_as="generator_unordered")(
        delayed(where)(i) for i in range(4))
    out["unordered"] = sorted(r[2] for r in unordered)
    try:
        Parallel(n_jobs=2, timeout=0.2)(delayed(slow)(i) for i in range(2))
        out["timeout"] = "none"
    except multiprocessing.TimeoutError:  # what joblib raises, with loky too
        out["timeout"] = "raised"
    try:
        Parallel(n_jobs=2)(delayed(fail_on_three)(i) for i in range(8))
    except ValueError as exc:  # the error, then the backend aborts the rest
        out["error"] = str(exc)
    out["after_error"] = Parallel(n_jobs=2)(delayed(fail_on_three)(i) for i in range(3))
    with parallel_config(n_jobs=-1):
        out["n_jobs_minus_1"] = Parallel()._effective_n_jobs()
    print(json.dumps(out))
'''


def test_parallel_goes_remote_and_threads_stay_local(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    result = run("cli", ["--workers", "3", str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    driver = out["driver"]
    for name in ("default", "loky"):
        assert [r[2] for r in out[name]] == [i * i for i in range(len(out[name]))]
        assert all(pid != driver and "transparent_mp-worker-" in cwd
                   for pid, cwd, _ in out[name]), name
    for name in ("threads", "sharedmem"):  # joblib's own threads, as it intends
        assert all(pid == driver for pid, _, _ in out[name]), name
    assert out["generator"] == [0, 1, 4, 9] and out["unordered"] == [0, 1, 4, 9]
    assert out["timeout"] == "raised"
    assert out["error"] == "three" and out["after_error"] == [0, 1, 2]
    assert out["n_jobs_minus_1"] == 3  # counted from the remote concurrency


def test_sklearn_search_gives_the_same_result_as_plain_python():
    example = str(ROOT / "examples" / "sklearn_search.py")
    plain = run("plain", [example])
    ours = run("cli", ["--stats", example])
    assert ours.returncode == plain.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "invocations=2" in ours.stderr  # one warm pool served every search
