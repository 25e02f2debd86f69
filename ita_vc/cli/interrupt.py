"""Ctrl-C as a request, not an exception: for long commands that can stop cleanly.

Inside :func:`graceful_sigint` the first SIGINT only sets a flag, which the core polls between
units of work (``run_grid(should_stop=...)``): the work stops at a consistent point and the
command writes what it has. A second SIGINT raises ``KeyboardInterrupt`` at once, as usual.
A flag set by our own handler cannot be lost inside library code the way an exception raised
at an arbitrary bytecode can (one that lands in a ``__del__`` or a broad ``except`` vanishes).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["graceful_sigint"]


@contextlib.contextmanager
def graceful_sigint() -> Iterator[threading.Event]:
    """Install the two-stage SIGINT handler for the block; yields the flag it sets."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested  # signal handlers live in the main thread only: nothing to install
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)
