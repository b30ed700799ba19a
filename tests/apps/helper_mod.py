"""A module of the app's own, imported by uses_helper.py."""

import os

GREETING = "hello from helper_mod"


def where() -> None:
    print(GREETING, "loaded from the worker's copy:",
          not os.path.dirname(os.path.abspath(__file__)).startswith(os.environ["APP_DIR"]),
          flush=True)
