"""Tiny helpers shared across subpackages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten"]


def flatten(value: Any, prefix: str = "", *, lists: bool = True) -> dict[str, Any]:
    """``{"a.b.0": leaf}`` of nested mappings (and lists, unless ``lists`` is False)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key), lists=lists))
        return out
    if lists and isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{i}" if prefix else str(i), lists=lists))
        return out
    return {prefix: value}
