"""Rule & Version Registry: immutable rule versions, params_hash, lifecycle, commit checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.rules.model import LifecycleEntry, Problem, Rule, RuleVersion
    from ita_vc.rules.registry import FieldChange, RehashResult, RuleInfo, RuleRegistry
    from ita_vc.rules.validate import compute_params_hash, parse_lifecycle, parse_rule

_EXPORTS = {
    "FieldChange": "ita_vc.rules.registry",
    "LifecycleEntry": "ita_vc.rules.model",
    "Problem": "ita_vc.rules.model",
    "RehashResult": "ita_vc.rules.registry",
    "Rule": "ita_vc.rules.model",
    "RuleInfo": "ita_vc.rules.registry",
    "RuleRegistry": "ita_vc.rules.registry",
    "RuleVersion": "ita_vc.rules.model",
    "compute_params_hash": "ita_vc.rules.validate",
    "parse_lifecycle": "ita_vc.rules.validate",
    "parse_rule": "ita_vc.rules.validate",
}

__all__ = [
    "FieldChange",
    "LifecycleEntry",
    "Problem",
    "RehashResult",
    "Rule",
    "RuleInfo",
    "RuleRegistry",
    "RuleVersion",
    "compute_params_hash",
    "parse_lifecycle",
    "parse_rule",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
