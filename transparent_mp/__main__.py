"""``python -m transparent_mp``: see :mod:`transparent_mp.cli`."""

from .cli import main

if __name__ == "__main__":
    main()
