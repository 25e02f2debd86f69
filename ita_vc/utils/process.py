"""Child processes that do not outlive their parent.

A worker process (a grid's or a validation's local pool) inherits the parent's open files,
the workspace lock's among them: left running after its parent was killed, it would keep the
lock held and burn CPU for nobody. :func:`die_with_parent` asks Linux to signal it when the
parent dies, however it dies (``PR_SET_PDEATHSIG``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent", "start_pool_worker"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: receive ``sig`` when the parent process dies, even by SIGKILL (if it died
    already, now)."""
    if sys.platform != "linux":
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl: do as if it had just died
        os.kill(os.getpid(), sig)


def start_pool_worker() -> None:
    """What every local pool process does first: ignore SIGINT (a Ctrl-C in a terminal reaches
    the whole process group; only the parent decides how to stop, and the pool must not break
    under it) and die with its parent (never outlive the work, nor hold its locks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL)
