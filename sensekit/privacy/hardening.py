"""Process settings that keep raw data inside the running process.

A core dump of the daemon would hold whatever frames and audio were in memory when it crashed,
written to disk by the kernel (or systemd-coredump) where any administrator can read it.
Dumps are therefore switched off at the start, before any frame is read: the core size limit
is set to zero, and the process is marked not dumpable, which also stops other processes of
the same user from attaching a debugger or reading its memory through /proc.
"""

from __future__ import annotations

import ctypes
import logging
import resource

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> None:
    """RLIMIT_CORE = 0 and PR_SET_DUMPABLE = 0; a failure is logged, never fatal (a kernel
    without prctl still gets the zero limit)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # libc, already loaded: no ldconfig child
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    except OSError as exc:
        log.warning("could not mark the process non-dumpable (%s); core size is still 0", exc)
