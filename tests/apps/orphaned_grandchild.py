"""A child starts a grandchild and is terminated: the grandchild lives on and sees
its parent gone, as a stdlib grandchild does, then sleeps until the driver ends."""

import multiprocessing as mp
import os
import time


def grandchild(q):
    mp.parent_process().join(120)
    q.put((os.getpid(), mp.parent_process().is_alive()))
    time.sleep(600)


def child(q):
    mp.Process(target=grandchild, args=(q,)).start()
    q.put("started")
    time.sleep(600)


if __name__ == "__main__":
    q = mp.Queue()
    c = mp.Process(target=child, args=(q,))
    c.start()
    assert q.get(timeout=120) == "started"
    c.terminate()
    c.join()
    pid, parent_alive = q.get(timeout=120)
    print("orphan", pid, parent_alive, flush=True)
    time.sleep(600)
