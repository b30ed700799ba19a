"""A child that prints a line, then waits for a go-ahead the test gives after it saw
that line on the driver's stdout: the output must arrive while the child runs."""

import multiprocessing
import os
import sys
import time


def talk(go_file: str) -> None:
    print("first line from the child", flush=True)
    sys.stderr.write("a line on stderr\n")
    deadline = time.monotonic() + 30
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.01)
    print("second line from the child", flush=True)


if __name__ == "__main__":
    p = multiprocessing.Process(target=talk, args=(sys.argv[1],))
    p.start()
    p.join()
    print("child exit code", p.exitcode, flush=True)
