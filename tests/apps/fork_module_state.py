"""Case 4: state set on one of the app's own modules before the Pool starts."""

import multiprocessing as mp
import sys

import fork_settings


def scaled(x):
    return x * fork_settings.FACTOR, list(fork_settings.NAMES)


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp
    fork_settings.FACTOR = 3
    fork_settings.NAMES.append("set in main")
    with ctx.Pool(2) as pool:
        print(pool.map(scaled, range(4)))
