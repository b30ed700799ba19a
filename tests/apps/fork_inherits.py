"""What a fork child inherits besides plain globals: argv, environ, logging, numpy's
random state, views of shared memory."""

import logging
import multiprocessing as mp
import os
import random
import sys

import numpy as np

log = logging.getLogger("app.child")


def report(q, parent_random, raw):
    log.info("logged in the child")  # the driver's logging configuration applies
    log.debug("not shown: below the level set in main")
    q.put({
        "argv": sys.argv[1:],
        "env": os.environ.get("FORK_CASE_VAR"),
        "level": logging.getLogger("app").level,
        "numpy": int(np.random.randint(1_000_000)),  # numpy's state is inherited
        "random_reseeded": random.random() != parent_random,  # as CPython does at fork
        # a numpy view of shared memory is still a view of it, not a copy
        "view": [VIEW[:3].tolist(), bool(np.shares_memory(VIEW, np.ctypeslib.as_array(RAW)))],
        "argument_is_the_global": raw is RAW,  # one object, as inheritance gives
    })


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # on stderr
    logging.getLogger("app").setLevel(logging.INFO)
    os.environ["FORK_CASE_VAR"] = "set in main"
    RAW = mp.RawArray("d", 1000)
    VIEW = np.ctypeslib.as_array(RAW)[10:]
    VIEW[:] = np.arange(990)
    np.random.seed(7)
    random.seed(7)
    state = random.getstate()
    parent_random = random.random()
    random.setstate(state)
    q = mp.Queue()
    p = mp.Process(target=report, args=(q, parent_random, RAW))
    p.start()
    print(sorted(q.get().items()))
    p.join()
    print("parent numpy", int(np.random.randint(1_000_000)))
