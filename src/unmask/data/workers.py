"""Worker processes that never outlive the command that started them.

    ProcessPoolExecutor(..., initializer=die_with_parent, initargs=(os.getpid(),))

A SIGKILL of `unmask prepare` left its two spawned workers (about 200 MB each) and the
multiprocessing resource tracker running under PID 1 for minutes (issue 24): a killed
parent runs no clean-up. On Linux each worker asks the kernel for SIGKILL when its parent
dies (prctl PR_SET_PDEATHSIG); the resource tracker then sees its pipe close and exits
too. Elsewhere this does nothing.
"""

from __future__ import annotations

import os
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Call first in a worker: die with `parent_pid` (Linux). Exits at once when the parent
    is already gone (it died between the fork and this call)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: nothing to ask for
            return
    if os.getppid() != parent_pid:
        os._exit(1)
