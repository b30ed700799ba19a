"""The target lives in a module of the app's directory, which workers cannot see."""

import multiprocessing
import os

import helper_mod

if __name__ == "__main__":
    os.environ["APP_DIR"] = os.path.dirname(os.path.abspath(__file__))
    p = multiprocessing.Process(target=helper_mod.where)
    p.start()
    p.join()
    print("exit code", p.exitcode)
