"""Pipeline stage entry points that ``dvc.yaml`` calls (thin: read params, call core, save)."""

from __future__ import annotations

__all__: list[str] = []
