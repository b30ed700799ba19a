"""Processes, the stdlib way: plain targets, a Process subclass, exit codes,
terminate and kill. Run it either way; the output is the same:

    python examples/processes.py
    python -m transparent_mp examples/processes.py
"""

import multiprocessing as mp
import os
import sys


def square_sum(n: int) -> None:
    total = sum(i * i for i in range(n))
    # one write per line: these children run at once and share the terminal
    sys.stdout.write(f"{mp.current_process().name}: sum of squares below {n} is {total}\n")
    sys.stdout.flush()


def fail() -> None:
    raise RuntimeError("this child fails on purpose")


def stop_with(code: int) -> None:
    sys.exit(code)


def wait_forever() -> None:
    r, _w = os.pipe()
    os.read(r, 1)


class Counter(mp.Process):
    """A Process subclass: the whole object, with its attributes, is what runs."""

    def __init__(self, limit: int) -> None:
        super().__init__(name=f"counter-{limit}")
        self.limit = limit

    def run(self) -> None:
        counted = sum(1 for _ in range(self.limit))
        print(f"{mp.current_process().name} counted to {counted}", flush=True)


if __name__ == "__main__":
    jobs = [mp.Process(target=square_sum, args=(n,), name=f"job-{n}") for n in (10, 100, 1000)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    print("job exit codes:", [job.exitcode for job in jobs])
    print("jobs ran in other processes:", all(job.pid != os.getpid() for job in jobs))

    counter = Counter(12345)
    counter.start()
    counter.join()
    print("counter exit code:", counter.exitcode)

    for target, args in ((fail, ()), (stop_with, (4,))):
        p = mp.Process(target=target, args=args)
        p.start()
        p.join()
        print(f"{target.__name__} exit code: {p.exitcode}")

    for how in ("terminate", "kill"):
        p = mp.Process(target=wait_forever)
        p.start()
        getattr(p, how)()
        p.join()
        print(f"after {how}: exit code {p.exitcode}, alive {p.is_alive()}")
