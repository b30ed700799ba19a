"""Case 5: a Process whose target is a bound method of an object holding a lock."""

import multiprocessing as mp
import sys
import threading


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.ready = threading.Event()
        self.count = 41

    def bump(self, q):
        with self.lock, self.rlock:
            self.count += 1
        q.put((self.count, self.ready.is_set(), self.lock.locked()))


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp
    counter = Counter()
    counter.ready.set()
    q = ctx.Queue()
    p = ctx.Process(target=counter.bump, args=(q,))
    p.start()
    print(q.get())
    p.join()
    print("exitcode", p.exitcode, "parent count", counter.count)
