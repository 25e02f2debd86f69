"""Value objects of the Rule & Version Registry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import total_ordering
from typing import TYPE_CHECKING, Any

from ita_vc.schema import Problem  # one Problem for every file ita-vc validates

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DIRECTIONS",
    "HASH_EXCLUDED_FIELDS",
    "SETUP_ID_PATTERN",
    "SIZING_MODES",
    "LifecycleEntry",
    "Problem",
    "Rule",
    "RuleVersion",
]

SETUP_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SETUP_ID_MAX = 64
_VERSION_RE = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
DIRECTIONS = ("long-only", "short-only", "long-short")
SIZING_MODES = ("all_in", "fixed_quote", "strategy_compound", "strategy_compound_profit_lock")
#: Fields that identify or describe a version without being a parameter of it.
HASH_EXCLUDED_FIELDS = frozenset(
    {"schema_version", "setup_id", "version", "author", "created", "params_hash"}
)


@total_ordering
@dataclass(frozen=True, slots=True)
class RuleVersion:
    """A rule version ``v<major>.<minor>``, ordered numerically (v1.10 > v1.9)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> RuleVersion:
        """Parse ``"1.2"`` or ``"v1.2"``.

        Raises:
            ValueError: not of that form (no leading zeros, no other text).
        """
        if not isinstance(text, str):
            raise ValueError(f"a version is a string such as '1.2', got {text!r}")  # noqa: TRY004
        match = _VERSION_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not a version: {text!r} (expected '<major>.<minor>', e.g. '1.2')")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tag(self) -> str:
        """The ``v``-prefixed form used in file names and snapshots (``v1.2``)."""
        return f"v{self}"

    @property
    def filename(self) -> str:
        """``v1.2.yaml``."""
        return f"{self.tag}.yaml"

    def bump(self, *, major: bool = False) -> RuleVersion:
        """The next version: ``1.2 -> 1.3`` (minor) or ``1.2 -> 2.0`` (major)."""
        return RuleVersion(self.major + 1, 0) if major else RuleVersion(self.major, self.minor + 1)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RuleVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule version file."""

    setup_id: str
    version: RuleVersion
    author: str
    created: str
    params_hash: str
    params: Mapping[str, Any]
    schema_version: int = 1
    path: str = ""

    @property
    def direction(self) -> str:
        """``long-only``, ``short-only`` or ``long-short`` (default long-short)."""
        return str(self.params.get("direction", "long-short"))

    @property
    def indicators(self) -> list[dict[str, Any]]:
        """The indicator list ``[{name, params}]``."""
        return [dict(i) for i in self.params.get("indicators") or []]

    @property
    def targets(self) -> dict[str, float | None]:
        """``{tp_pct, sl_pct}`` (None disables)."""
        targets = self.params.get("targets") or {}
        return {"tp_pct": targets.get("tp_pct"), "sl_pct": targets.get("sl_pct")}

    @property
    def sizing(self) -> dict[str, Any]:
        """``{mode, ...}`` (default all_in)."""
        return dict(self.params.get("sizing") or {"mode": "all_in"})

    def to_dict(self) -> dict[str, Any]:
        """The whole version document, in canonical field order."""
        return {
            "schema_version": self.schema_version,
            "setup_id": self.setup_id,
            "version": str(self.version),
            "author": self.author,
            "created": self.created,
            **dict(self.params),
            "params_hash": self.params_hash,
        }


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """The mutable status of one version (``rules/<setup_id>/lifecycle.yaml``)."""

    active: bool = False
    deprecation_reason: str | None = None
    changed_at: str | None = None
    changed_by: str | None = None
    note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def deprecated(self) -> bool:
        """A version with a deprecation reason is deprecated."""
        return bool(self.deprecation_reason)

    @property
    def status(self) -> str:
        """``active``, ``deprecated`` or ``inactive``."""
        if self.active:
            return "active"
        return "deprecated" if self.deprecated else "inactive"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as written in the lifecycle file."""
        data: dict[str, Any] = {
            "active": self.active,
            "deprecation_reason": self.deprecation_reason,
            "changed_at": self.changed_at,
            "changed_by": self.changed_by,
        }
        if self.note:
            data["note"] = self.note
        return data
