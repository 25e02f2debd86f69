"""The grid request (``params.yaml: grid:``): variants, their keys, and the validated request.

Every value of the section is checked here (messages read ``params.yaml: grid.<key>: <value>:
<why>``), and the number of variants is counted from the axes arithmetically before any list
is built (:mod:`ita_vc.grid.axes`), so a request for 10^12 variants is refused at once
and in little memory. Variants are generated lazily.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ita_vc.errors import DataValidationError
from ita_vc.grid.axes import (
    DEFAULT_AXES_NOTE,
    Axis,
    default_axes,
    fail,
    guard_variants,
    holds,
    indicator_axes,
    indicator_count,
    is_number,
)

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog
    from ita_vc.rules.model import Rule

__all__ = [
    "GridInputs",
    "GridRequest",
    "GridSetup",
    "Variant",
    "check_grid",
    "check_rule_indicators",
    "parse_grid",
    "variant_from_dict",
    "variant_key",
    "variant_to_dict",
]

SOURCE = "params.yaml"
_DEFAULTS = {"preselect": 20_000, "top_k": 300, "top_trades_n": 10, "batch_size": 2_000,
             "max_variants": 1_000_000, "max_compute_bytes": 1e12}
_KEYS = {"indicators", "targets", "direction", "sizing", "prune", *_DEFAULTS}
_PRUNE_KEYS = {"max_drawdown_floor", "min_trades", "max_trades"}
_TARGET_MAX = 10_000  # as in rule files: a percent in (0, 10000)


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Variant:
    """Concrete indicator params (tuple of (name, ((param, value), ...))) and targets."""

    indicators: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    sl_pct: float | None = None
    tp_pct: float | None = None

    @property
    def base(self) -> Variant:
        """The same variant without SL/TP (its Stage A form)."""
        return Variant(self.indicators)

    @property
    def key(self) -> str:
        """The canonical variant key."""
        return variant_key(self)

    def rule(self, base_rule: Mapping[str, Any]) -> dict[str, Any]:
        """A rule mapping for a single backtest of this variant."""
        rule = {k: v for k, v in base_rule.items() if k not in ("params_hash",)}
        rule["indicators"] = [{"name": n, "params": dict(p)} for n, p in self.indicators]
        rule["targets"] = {"tp_pct": self.tp_pct, "sl_pct": self.sl_pct}
        return rule


def variant_key(variant: Variant) -> str:
    """``name(p=v,...)+name(...)|sl=x|tp=y``."""
    parts = ["{}({})".format(name, ",".join(f"{k}={_fmt(v)}" for k, v in params))
             for name, params in variant.indicators]
    return "+".join(parts) + f"|sl={_fmt(variant.sl_pct)}|tp={_fmt(variant.tp_pct)}"


def variant_to_dict(variant: Variant) -> dict[str, Any]:
    """JSON form of a variant (checkpoints, topk rows)."""
    return {"indicators": [[n, [[k, v] for k, v in p]] for n, p in variant.indicators],
            "sl_pct": variant.sl_pct, "tp_pct": variant.tp_pct}


def variant_from_dict(data: dict[str, Any]) -> Variant:
    """Inverse of :func:`variant_to_dict`."""
    return Variant(tuple((n, tuple((k, v) for k, v in p)) for n, p in data["indicators"]),
                   data.get("sl_pct"), data.get("tp_pct"))


Axes = list[tuple[str, list[tuple[str, list[Any]]]]]


@dataclass
class GridRequest:
    """A validated grid: axes, stages, guards and pruning."""

    axes: Axes  # (indicator, [(param, values)])
    sl_values: list[float | None]
    tp_values: list[float | None]
    direction: str | None = None
    sizing: dict[str, Any] | None = None
    preselect: int = 20_000
    top_k: int = 300
    top_trades_n: int = 10
    batch_size: int = 2_000
    max_variants: int = 1_000_000
    max_compute_bytes: float = 1e12
    prune: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_axes: bool = False  # the axes were not named: the rule's own, +/- 5 steps

    def base_variants(self) -> Iterator[Variant]:
        """Stage A variants, lazily, in a fixed order (catalog constraints applied): the first
        indicator varies slowest, as in ``itertools.product``; nothing is materialised."""

        def combos(i: int) -> Iterator[tuple[str, tuple[tuple[str, Any], ...]]]:
            name, params = self.axes[i]
            names = [p for p, _values in params]
            for values in itertools.product(*(v for _p, v in params)):
                chosen = dict(zip(names, values, strict=True))
                if all(holds(c, chosen) for c in self.constraints.get(name, ())):
                    yield name, tuple(chosen.items())

        def walk(i: int, prefix: tuple[Any, ...]) -> Iterator[Variant]:
            if i == len(self.axes):
                yield Variant(prefix)
                return
            for combo in combos(i):
                yield from walk(i + 1, (*prefix, combo))

        yield from walk(0, ())

    def count_stage_a(self) -> tuple[int, bool]:
        """``(Stage A variants, exact)``, counted from the axes without generating them (an
        upper bound, ``exact`` False, for an indicator with several constraints whose
        combinations are too many to enumerate)."""
        total, exact = 1, True
        for name, params in self.axes:
            axes = {p: Axis(f"{name}.{p}", None, tuple(v)) for p, v in params}
            count, known = indicator_count(axes, self.constraints.get(name, ()))
            total, exact = total * count, exact and known
        return total, exact

    def count_base(self) -> int:
        """Number of Stage A variants (see :meth:`count_stage_a`; an upper bound if inexact)."""
        return self.count_stage_a()[0]

    def count_stage_b(self, base: int) -> int:
        """Stage B variants at most: the shortlist times the SL/TP axes."""
        return min(base, self.preselect) * len(self.sl_values) * len(self.tp_values)

    def expand(self, base: Variant) -> Iterator[Variant]:
        """Stage B variants of one base variant (the SL/TP axes)."""
        for sl in self.sl_values:
            for tp in self.tp_values:
                yield Variant(base.indicators, sl, tp)

    def to_dict(self) -> dict[str, Any]:
        """The canonical request (what ``grid_request_hash`` hashes)."""
        return {
            "axes": [[n, [[p, list(v)] for p, v in params]] for n, params in self.axes],
            "sl_pct": self.sl_values, "tp_pct": self.tp_values, "direction": self.direction,
            "sizing": self.sizing, "preselect": self.preselect, "top_k": self.top_k,
            "top_trades_n": self.top_trades_n, "prune": self.prune,
        }


class GridSetup(NamedTuple):
    """A grid run's checked inputs, before any candles are read."""

    rule: Rule
    params: RunParams
    request: GridRequest


class GridInputs(NamedTuple):
    """A grid run's inputs: the prepared candles and the checked rule, params and request."""

    prepared: pd.DataFrame
    rule: Rule
    params: RunParams
    request: GridRequest


def check_rule_indicators(names: Sequence[str], rule: Rule) -> None:
    """Refuse a grid whose indicators are not the rule's (a grid sweeps its rule's own).

    Raises:
        DataValidationError: naming both lists.
    """
    own = [str(i.get("name")) for i in rule.indicators]
    if sorted(names) != sorted(own):
        raise DataValidationError(
            f"{SOURCE}: grid.indicators: the grid sweeps [{', '.join(names)}] but the rule "
            f"{rule.setup_id} {rule.version.tag} has [{', '.join(own)}]; a grid sweeps its "
            "rule's own indicators: list the same names in grid.indicators, or leave "
            f"grid.indicators out to sweep {DEFAULT_AXES_NOTE}")


# -- settings -----------------------------------------------------------------------------------
def _whole(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def _targets(spec: Any, where: str) -> list[float | None]:
    values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise fail(where, spec, "needs at least one value (null: no SL/TP)")
    for value in values:
        if value is not None and not (is_number(value) and 0 < value < _TARGET_MAX):
            raise fail(where, value, f"percent values > 0 and < {_TARGET_MAX:,}, or null")
    return sorted(set(values), key=lambda v: (v is not None, v or 0.0))


def _prune(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail("grid.prune", raw, "must be a mapping")
    unknown = [k for k in raw if k not in _PRUNE_KEYS]
    if unknown:
        raise fail(f"grid.prune.{unknown[0]}", raw[unknown[0]],
                    f"unknown key; grid.prune knows {', '.join(sorted(_PRUNE_KEYS))}")
    floor = raw.get("max_drawdown_floor")
    if floor is not None and not (is_number(floor) and -100 <= floor <= 0):
        raise fail("grid.prune.max_drawdown_floor", floor, "a percent in [-100, 0] "
                                                            "(drawdowns are negative)")
    for key in ("min_trades", "max_trades"):
        value = raw.get(key)
        if value is not None and not (_whole(value) and value >= 0):
            raise fail(f"grid.prune.{key}", value, "must be a whole number >= 0")
    low, high = raw.get("min_trades"), raw.get("max_trades")
    if low is not None and high is not None and low > high:
        raise fail("grid.prune.min_trades", low, f"is more than max_trades {high!r}")
    return dict(raw)


def _execution(raw: Mapping[Any, Any], catalog: Catalog) -> tuple[str | None, Any]:
    """The optional direction and sizing overrides, checked as a rule file's are."""
    import json

    from ita_vc.rules.model import DIRECTIONS
    from ita_vc.rules.validate import parse_rule

    direction, sizing = raw.get("direction"), raw.get("sizing")
    if direction is not None and direction not in DIRECTIONS:
        raise fail("grid.direction", direction, f"one of {', '.join(DIRECTIONS)}")
    if sizing is not None:
        try:
            doc = json.dumps({"setup_id": "grid", "version": "1.0", "sizing": sizing},
                             allow_nan=False)
        except (TypeError, ValueError):
            raise fail("grid.sizing", sizing, "must be a mapping of a mode and finite "
                                               "numbers") from None
        _rule, problems = parse_rule(doc.encode("utf-8"), SOURCE, catalog=catalog,
                                     rules_root=None, require_hash=False)
        if problems:
            first = problems[0]
            raise fail(f"grid.{first.field or 'sizing'}", sizing, first.message)
    return direction, sizing


def _settings(raw: Any, catalog: Catalog) -> dict[str, Any]:
    """Everything but the indicator axes, validated."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise fail("grid", raw, "must be a mapping (indicators, targets, ...)")
    unknown = [k for k in raw if k not in _KEYS]
    if unknown:
        raise fail(f"grid.{unknown[0]}", raw[unknown[0]], "unknown key (known: "
                    f"{', '.join(sorted(_KEYS))})")
    settings: dict[str, Any] = {}
    for key, default in _DEFAULTS.items():
        value = raw.get(key, default)
        whole = key != "max_compute_bytes"
        if not (_whole(value) if whole else is_number(value)) or value <= 0:
            kind = "a positive whole number" if whole else "a positive number"
            raise fail(f"grid.{key}", value, f"must be {kind}")
        settings[key] = int(value) if whole else float(value)
    targets = raw.get("targets")
    if targets is not None and not isinstance(targets, Mapping):
        raise fail("grid.targets", targets, "must be a mapping {sl_pct, tp_pct}")
    for key, value in (targets or {}).items():
        if key not in ("sl_pct", "tp_pct"):
            raise fail(f"grid.targets.{key}", value, "unknown key (sl_pct, tp_pct)")
    settings["targets"] = targets
    settings["prune"] = _prune(raw.get("prune"))
    settings["direction"], settings["sizing"] = _execution(raw, catalog)
    return settings


def _parse(raw: Any, catalog: Catalog, rule: Rule | None) -> GridRequest | None:
    settings = _settings(raw, catalog)
    items = raw.get("indicators") if isinstance(raw, Mapping) else None
    default = items is None or items == []
    if default:
        if rule is None:
            return None
        found = default_axes(rule, catalog)
    else:
        found = indicator_axes(items, catalog)
        if rule is not None:
            check_rule_indicators([ind.spec.name for ind in found], rule)
    targets = settings["targets"]
    if targets is None and default and rule is not None:
        targets = rule.targets
    targets = targets or {}
    sl_values = _targets(targets.get("sl_pct"), "grid.targets.sl_pct")
    tp_values = _targets(targets.get("tp_pct"), "grid.targets.tp_pct")
    guard_variants(found, settings, len(sl_values) * len(tp_values))
    axes = [(ind.spec.name, [(p, a.build()) for p, a in ind.axes.items()]) for ind in found]
    return GridRequest(
        axes=axes, sl_values=sl_values, tp_values=tp_values, direction=settings["direction"],
        sizing=settings["sizing"], preselect=settings["preselect"], top_k=settings["top_k"],
        top_trades_n=settings["top_trades_n"], batch_size=settings["batch_size"],
        max_variants=settings["max_variants"], max_compute_bytes=settings["max_compute_bytes"],
        prune=settings["prune"], constraints={i.spec.name: i.spec.constraints for i in found},
        default_axes=default,
    )


def parse_grid(raw: Mapping[str, Any] | None, catalog: Catalog,
               rule: Rule | None = None) -> GridRequest:
    """Validate the ``grid:`` section of params.yaml and guard its size, before any list of
    values is built.

    With ``rule``: the grid's indicators must be the rule's, and a section that names no
    indicators (absent, ``{}``) sweeps the rule's own (:data:`DEFAULT_AXES_NOTE`; targets
    not named: the rule's). Without a rule, the indicators are required.

    Raises:
        DataValidationError: unknown keys or indicators, a value that is not a finite number,
            ranges beyond the catalog's bounds, other indicators than the rule's, or more
            variants than ``max_variants`` (counted arithmetically; the message names the
            count, the limit and the axes).
    """
    request = _parse(raw, catalog, rule)
    if request is None:
        raise DataValidationError(f"{SOURCE}: grid: needs an `indicators` list of {{name, "
                                  "params: axes}} (or a rule to take them from)")
    return request


def check_grid(raw: Any, catalog: Catalog) -> None:
    """Validate a ``grid:`` section without its rule (e.g. a ``-S grid...`` override): every
    value and the size guard; a section without indicators is fine (they default to the
    rule's when the grid runs).

    Raises:
        DataValidationError: as :func:`parse_grid`.
    """
    _parse(raw, catalog, None)
