"""Case 2: a function defined inside the main guard (over a local of the guard)."""

import multiprocessing as mp
import sys

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp
    factor = 3

    def scale(x):
        return x * factor

    class Scaler:
        def __call__(self, x):
            return scale(x) + 1

    with ctx.Pool(2) as pool:
        print(pool.map(scale, range(10)))
        print(pool.map(Scaler(), range(5)))
