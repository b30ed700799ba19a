"""What cannot travel: the child gets a placeholder that names it when used."""

import multiprocessing as mp
import socket

LISTENER = socket.socket()
NUMBERS = (n * n for n in range(3))
WORD = "still here"


def use(what):
    print("the word is", WORD, flush=True)
    try:
        print("got", next(NUMBERS) if what == "generator" else LISTENER.fileno() >= 0)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    for what in ("generator", "socket"):
        p = mp.Process(target=use, args=(what,))
        p.start()
        p.join()
        print("exitcode", p.exitcode)
    LISTENER.close()
