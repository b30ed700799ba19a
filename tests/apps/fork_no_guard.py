"""Case 3: no main guard at all (fine under fork)."""

import multiprocessing as mp
import sys


def square(x):
    return x * x


ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp
pool = ctx.Pool(2)
print(pool.map(square, range(10)))
pool.close()
pool.join()
q = ctx.Queue()
p = ctx.Process(target=q.put, args=("from a child",))
p.start()
print(q.get())
p.join()
