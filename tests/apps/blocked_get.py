"""Blocks in Queue.get until the test takes the store away."""

import multiprocessing

if __name__ == "__main__":
    q = multiprocessing.Queue()
    assert q.empty()  # connected to the store
    print("waiting", flush=True)
    q.get()
