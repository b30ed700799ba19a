"""CPython's own multiprocessing tests, "manager" flavour, unedited.

Imported under the sitecustomize hook by ``conformance/run.py``, the way
CPython's ``test_multiprocessing_spawn`` builds its test classes.
"""

import test._test_multiprocessing

test._test_multiprocessing.install_tests_in_module_dict(globals(), "spawn",
                                                        only_type="manager")
