"""Leaves a daemonic child running at exit: the driver must terminate it."""

import multiprocessing
import os


def block() -> None:
    r, _w = os.pipe()
    os.read(r, 1)


if __name__ == "__main__":
    p = multiprocessing.Process(target=block, daemon=True)
    p.start()
    print("daemon", p.pid, flush=True)
