"""CPython's own multiprocessing tests, "manager" flavour, fork start method, unedited.

Imported under the sitecustomize hook by ``conformance/run.py --start-method fork``,
the way CPython's ``test_multiprocessing_fork`` builds its test classes.
"""

import test._test_multiprocessing

test._test_multiprocessing.install_tests_in_module_dict(globals(), "fork",
                                                        only_type="manager")
