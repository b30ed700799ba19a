"""Prints what plain python gives a program: argv, __name__, sys.path[0], then exits."""

import json
import os
import sys

if __name__ == "__main__":
    print(json.dumps({
        "argv": sys.argv, "name": __name__, "path0": os.path.realpath(sys.path[0] or "."),
        "file": globals().get("__file__"),
    }))
    sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
