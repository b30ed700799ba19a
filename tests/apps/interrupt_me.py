"""Starts a non-daemonic and a daemonic child that never end, reports their pids,
then waits for the test to interrupt it."""

import multiprocessing
import os
import threading


def block() -> None:
    r, _w = os.pipe()
    os.read(r, 1)


if __name__ == "__main__":
    procs = [multiprocessing.Process(target=block),
             multiprocessing.Process(target=block, daemon=True)]
    for p in procs:
        p.start()
    print("children", *(p.pid for p in procs), flush=True)
    threading.Event().wait()
