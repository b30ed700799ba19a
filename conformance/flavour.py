"""Build one flavour of CPython's multiprocessing test classes, as that version does.

3.11+ take ``only_type``; 3.10's ``install_tests_in_module_dict`` installs every
flavour (and the flavourless classes), so the others are removed afterwards:
the classes that stay are the ones 3.11+ would install.
"""

from __future__ import annotations

import inspect

import test._test_multiprocessing as suite


def install(globs: dict, start_method: str, flavour: str) -> None:
    """Install the ``flavour`` classes ("processes" or "manager") into ``globs``."""
    if "only_type" in inspect.signature(suite.install_tests_in_module_dict).parameters:
        suite.install_tests_in_module_dict(globs, start_method, only_type=flavour)
        return
    before = set(globs)
    suite.install_tests_in_module_dict(globs, start_method)
    prefix = "With" + flavour.capitalize()
    for name in set(globs) - before:
        if isinstance(globs[name], type) and not name.startswith(prefix):
            del globs[name]
