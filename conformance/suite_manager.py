"""CPython's own multiprocessing tests, "manager" flavour, unedited.

Imported under the sitecustomize hook by ``conformance/run.py``, the way
CPython's ``test_multiprocessing_spawn`` builds its test classes.
"""

from flavour import install

install(globals(), "spawn", "manager")
