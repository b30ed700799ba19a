"""pandarallel on remote workers.

pandarallel fixes ``multiprocessing.get_context("fork")`` at import (the hook
makes that the remote context), reports progress through a ``Manager().Queue()``
(a remote manager) and by default moves data through files in ``/dev/shm``,
which remote workers cannot see. The one change: the memory file system is
reported as absent, so pandarallel uses its pipe mode; asking for
``use_memory_fs=True`` gets pandarallel's own "not available" error.
"""

#: Where pandarallel looks for a memory file system: nowhere a remote worker could share.
MEMORY_FS_ROOT = "/transparent_mp: remote workers share no memory file system"
