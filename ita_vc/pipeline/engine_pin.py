"""Which engine a workspace's pipeline pins (``--engine X`` in dvc.yaml's stage commands)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ita_vc.yaml_read import YamlError, read_text_file

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["pinned_engine"]

_ENGINE_PIN = re.compile(r"python -m ita_vc\.pipeline backtest\b[^\n]*?--engine[= ]['\"]?([\w.]+)")


def pinned_engine(root: Path) -> str | None:
    """The engine the workspace's dvc.yaml pins on its backtest stage, or None (no dvc.yaml,
    no pin, an unreadable file: the stage itself reports those). ``ita-vc grid run`` and
    ``ita-vc run``'s checks use it, so they resolve params as the pinned stages do."""
    try:
        text = read_text_file(root / "dvc.yaml", max_bytes=1 << 20)
    except (OSError, YamlError):
        return None
    match = _ENGINE_PIN.search(text)
    return match.group(1) if match else None
