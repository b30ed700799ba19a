"""Case 1: a global assigned inside the main guard, read by the tasks."""

import multiprocessing as mp
import sys

TABLE = None


def lookup(x):
    return TABLE[x] * 2


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp
    if sys.argv[2:] == ["set"]:  # the method set for the whole program instead
        mp.set_start_method(sys.argv[1])
        ctx = mp
    TABLE = {i: i * i for i in range(10)}
    with ctx.Pool(2) as pool:
        print(pool.map(lookup, range(10)))
