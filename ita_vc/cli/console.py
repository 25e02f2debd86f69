"""The only place that creates rich Consoles: all CLI output goes through here."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["err", "out"]


@functools.cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def out() -> Console:
    """Console for results (stdout)."""
    return _console(False)


def err() -> Console:
    """Console for errors and warnings (stderr)."""
    return _console(True)
