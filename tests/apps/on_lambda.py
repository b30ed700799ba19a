"""Small programs for the lambda backend's tests: python on_lambda.py <case> [args]."""

import multiprocessing as mp
import os
import signal
import sys
import time


def double(x):
    return 2 * x


def kill_environment():
    """As an out-of-memory kill: the function's whole environment dies."""
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(60)


def once_kills_environment(marker, x):
    if not os.path.exists(marker):
        open(marker, "w").close()
        kill_environment()
    return 2 * x


def slow_double(x):
    time.sleep(0.5)
    return 2 * x


def hello(q, name):
    print(f"hello from {name}", flush=True)
    q.put(os.getpid())


def timed(q):
    began = time.time()
    time.sleep(0.3)
    q.put((began, time.time()))


def busy(seconds):
    time.sleep(seconds)


def main(case, *args):
    if case == "hello":
        q = mp.Queue()
        ps = [mp.Process(target=hello, args=(q, f"p{i}")) for i in range(int(args[0]))]
        for p in ps:
            p.start()
        pids = {q.get(timeout=60) for _ in ps}
        for p in ps:
            p.join()
        print("exitcodes", [p.exitcode for p in ps], "distinct pids", len(pids))
    elif case == "overlap":
        q = mp.Queue()
        ps = [mp.Process(target=timed, args=(q,)) for _ in range(int(args[0]))]
        for p in ps:
            p.start()
        spans = [q.get(timeout=60) for _ in ps]
        for p in ps:
            p.join()
        most = max(sum(b <= t < e for b, e in spans) for t, _ in spans)
        print("exitcodes", [p.exitcode for p in ps], "most at once", most)
    elif case == "crash":
        p = mp.Process(target=kill_environment)
        p.start()
        p.join(60)
        print("exitcode", p.exitcode)
    elif case == "pool-crash":
        with mp.Pool(2) as pool:
            print("results", pool.starmap(once_kills_environment, [(args[0], i) for i in range(4)]))
    elif case == "sleep":
        p = mp.Process(target=busy, args=(float(args[0]),))
        p.start()
        p.join(120)
        print("exitcode", p.exitcode)
    elif case == "pool-retire":
        with mp.Pool(1) as pool:
            print("results", pool.map(slow_double, range(int(args[0])), chunksize=1))
    elif case == "version":
        p = mp.Process(target=busy, args=(0,))
        p.start()
        p.join(60)
        print("exitcode", p.exitcode)
        try:
            mp.Process(target=busy, args=(0,)).start()
        except RuntimeError as exc:
            print("second start:", exc)
    elif case == "main-value":
        with mp.Pool(1) as pool:
            print("value", pool.apply(double, (int(args[0]),)))
    else:
        sys.exit(f"unknown case {case!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
