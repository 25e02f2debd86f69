"""Adapters over git (gitpython) and DVC. ``vcs.dvc`` is the only module that imports dvc."""

from __future__ import annotations

__all__: list[str] = []
