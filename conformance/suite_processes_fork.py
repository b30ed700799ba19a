"""CPython's own multiprocessing tests, "processes" flavour, fork start method, unedited.

Imported under the sitecustomize hook by ``conformance/run.py --start-method fork``,
the way CPython's ``test_multiprocessing_fork`` builds its test classes.
"""

from flavour import install

install(globals(), "fork", "processes")
