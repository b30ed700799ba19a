"""transparent_mp: run unmodified ``multiprocessing`` programs on remote workers,
with their shared state in Redis.

``python -m transparent_mp app.py`` runs an app under the import hook;
:func:`install` and :func:`uninstall` do the same from code.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "install", "is_installed", "uninstall"]


def install() -> None:
    """Install the import hook (see :mod:`transparent_mp.hook`)."""
    from .hook import install

    install()


def uninstall() -> None:
    """Remove the import hook and restore the stdlib's names."""
    from .hook import uninstall

    uninstall()


def is_installed() -> bool:
    from .hook import is_installed

    return is_installed()
