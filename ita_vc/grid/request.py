"""The grid request (``params.yaml: grid:``): variants, their keys, and the validated request.

The section's shape is declared once (:data:`GRID_SCHEMA`, on :mod:`ita_vc.schema`), followed
by named cross-field checks (the prune bounds, the sizing as a rule's, the axes against the
catalog); every problem is reported at once, each reading ``params.yaml: grid.<key>: <value>:
<why>``. Then the number of variants is counted from the axes arithmetically before any list
is built (:mod:`ita_vc.grid.axes`), so a request for 10^12 variants is refused at once
and in little memory. Variants are generated lazily.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import voluptuous as vol

from ita_vc.backtest.params import parse_params
from ita_vc.errors import DataValidationError
from ita_vc.grid.axes import (
    DEFAULT_AXES_NOTE,
    Axis,
    IndicatorAxes,
    default_axes,
    fail,
    guard_variants,
    holds,
    indicator_axes,
    indicator_count,
    is_number,
)
from ita_vc.rules.model import DIRECTIONS
from ita_vc.rules.validate import parse_rule
from ita_vc.schema import Invalid, Problems

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog
    from ita_vc.rules.model import Rule
    from ita_vc.schema import Validator

__all__ = [
    "GridInputs",
    "GridRequest",
    "GridSetup",
    "Variant",
    "check_grid",
    "check_params_and_grid",
    "check_rule_indicators",
    "parse_grid",
    "variant_from_dict",
    "variant_key",
    "variant_to_dict",
]

SOURCE = "params.yaml"
_DEFAULTS = {
    "preselect": 20_000,
    "top_k": 300,
    "top_trades_n": 10,
    "batch_size": 2_000,
    "max_variants": 1_000_000,
    "max_compute_bytes": 1e12,
}
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
    parts = [
        "{}({})".format(name, ",".join(f"{k}={_fmt(v)}" for k, v in params))
        for name, params in variant.indicators
    ]
    return "+".join(parts) + f"|sl={_fmt(variant.sl_pct)}|tp={_fmt(variant.tp_pct)}"


def variant_to_dict(variant: Variant) -> dict[str, Any]:
    """JSON form of a variant (checkpoints, topk rows)."""
    return {
        "indicators": [[n, [[k, v] for k, v in p]] for n, p in variant.indicators],
        "sl_pct": variant.sl_pct,
        "tp_pct": variant.tp_pct,
    }


def variant_from_dict(data: dict[str, Any]) -> Variant:
    """Inverse of :func:`variant_to_dict`."""
    return Variant(
        tuple((n, tuple((k, v) for k, v in p)) for n, p in data["indicators"]),
        data.get("sl_pct"),
        data.get("tp_pct"),
    )


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
            "sl_pct": self.sl_values,
            "tp_pct": self.tp_values,
            "direction": self.direction,
            "sizing": self.sizing,
            "preselect": self.preselect,
            "top_k": self.top_k,
            "top_trades_n": self.top_trades_n,
            "prune": self.prune,
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
            f"grid.indicators out to sweep {DEFAULT_AXES_NOTE}"
        )


# -- the section's shape (ita_vc.schema), then named cross-field checks --------------------------
# Each validator's message starts with the value, so a problem reads as it always did:
# ``params.yaml: grid.<key>: <value>: <why>``; every problem of the section is reported at once.


def _whole(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def _positive(*, whole: bool) -> Validator:
    kind = "a positive whole number" if whole else "a positive number"

    def check(value: Any) -> int | float:
        if not (_whole(value) if whole else is_number(value)) or value <= 0:
            raise Invalid(f"{value!r}: must be {kind}")
        return int(value) if whole else float(value)

    return check


def _unknown(known: str) -> Validator:
    """Refuses a key the section does not know (quoting its value and the known keys)."""

    def check(value: Any) -> NoReturn:
        raise Invalid(f"{value!r}: unknown key{known}")

    return check


def _section(shape: Mapping[Any, Any], what: str) -> Validator:
    """An optional sub-mapping (null: absent) of the given shape."""
    compiled = vol.Schema(dict(shape))

    def check(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise Invalid(f"{value!r}: must be a mapping{what}")
        return compiled(dict(value))

    return check


def _target_values(spec: Any) -> list[float | None]:
    """A target axis: one value or a list, each a percent in (0, 10000) or null; sorted."""
    values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise Invalid(f"{spec!r}: needs at least one value (null: no SL/TP)")
    for value in values:
        if value is not None and not (is_number(value) and 0 < value < _TARGET_MAX):
            raise Invalid(f"{value!r}: percent values > 0 and < {_TARGET_MAX:,}, or null")
    return sorted(set(values), key=lambda v: (v is not None, v or 0.0))


def _drawdown_floor(value: Any) -> Any:
    if value is not None and not (is_number(value) and -100 <= value <= 0):
        raise Invalid(f"{value!r}: a percent in [-100, 0] (drawdowns are negative)")
    return value


def _trade_count(value: Any) -> Any:
    if value is not None and not (_whole(value) and value >= 0):
        raise Invalid(f"{value!r}: must be a whole number >= 0")
    return value


def _direction(value: Any) -> Any:
    if value is not None and value not in DIRECTIONS:
        raise Invalid(f"{value!r}: one of {', '.join(DIRECTIONS)}")
    return value


_TARGETS = {
    vol.Optional("sl_pct"): _target_values,
    vol.Optional("tp_pct"): _target_values,
    vol.Extra: _unknown(" (sl_pct, tp_pct)"),
}
_PRUNE = {
    vol.Optional("max_drawdown_floor"): _drawdown_floor,
    vol.Optional("min_trades"): _trade_count,
    vol.Optional("max_trades"): _trade_count,
    vol.Extra: _unknown(f"; grid.prune knows {', '.join(sorted(_PRUNE_KEYS))}"),
}
_SHAPE: dict[Any, Any] = {
    vol.Optional("indicators"): object,  # the axes: checked against the catalog (axes.py)
    vol.Optional("targets"): _section(_TARGETS, " {sl_pct, tp_pct}"),
    vol.Optional("direction"): _direction,
    vol.Optional("sizing"): object,  # checked as a rule file's sizing (_check_sizing)
    vol.Optional("prune"): _section(_PRUNE, ""),
    **{vol.Optional(key): _positive(whole=key != "max_compute_bytes") for key in _DEFAULTS},
    vol.Extra: _unknown(f" (known: {', '.join(sorted(_KEYS))})"),
}
GRID_SCHEMA = vol.Schema(_SHAPE)
"""The shape of ``params.yaml: grid:`` (a mapping; its axes are checked by
:func:`~ita_vc.grid.axes.indicator_axes`)."""


def _check_prune(prune: Any, problems: Problems) -> None:
    """``min_trades`` may not exceed ``max_trades`` (when both are valid counts)."""
    if not isinstance(prune, Mapping):
        return
    low, high = prune.get("min_trades"), prune.get("max_trades")
    if low is not None and high is not None and _whole(low) and _whole(high) and low > high:
        problems.add("grid.prune.min_trades", f"{low!r}: is more than max_trades {high!r}")


def _check_sizing(sizing: Any, catalog: Catalog, problems: Problems) -> None:
    """The sizing override, checked as a rule file's is."""
    if sizing is None:
        return
    try:
        doc = json.dumps({"setup_id": "grid", "version": "1.0", "sizing": sizing}, allow_nan=False)
    except (TypeError, ValueError):
        problems.add("grid.sizing", f"{sizing!r}: must be a mapping of a mode and finite numbers")
        return
    _rule, found = parse_rule(
        doc.encode("utf-8"), SOURCE, catalog=catalog, rules_root=None, require_hash=False
    )
    own = [p for p in found if (p.field or "sizing").startswith("sizing")] or found[:1]
    for problem in own:
        problems.add(f"grid.{problem.field or 'sizing'}", f"{sizing!r}: {problem.message}")


def _settings(raw: Any, catalog: Catalog, problems: Problems) -> dict[str, Any]:
    """Everything but the indicator axes, validated (problems added to ``problems``)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise fail("grid", raw, "must be a mapping (indicators, targets, ...)")
    checked = problems.check(GRID_SCHEMA, dict(raw), prefix="grid.")
    if checked is None:
        checked = {}
    settings: dict[str, Any] = {k: checked.get(k, default) for k, default in _DEFAULTS.items()}
    settings["max_compute_bytes"] = float(settings["max_compute_bytes"])
    settings["targets"] = checked.get("targets")
    settings["prune"] = checked.get("prune") or {}
    _check_prune(raw.get("prune"), problems)
    settings["direction"], settings["sizing"] = checked.get("direction"), raw.get("sizing")
    _check_sizing(settings["sizing"], catalog, problems)
    return settings


def _axes(
    raw: Any, catalog: Catalog, rule: Rule | None, problems: Problems
) -> tuple[list[IndicatorAxes] | None, bool]:
    """``(the indicators' axes, whether they are the rule's by default)``; None without a rule
    to take them from, or when the request's are refused."""
    items = raw.get("indicators") if isinstance(raw, Mapping) else None
    if items is None or items == []:
        return (default_axes(rule, catalog) if rule is not None else None), True
    return indicator_axes(items, catalog, problems), False


def _target_axes(
    settings: Mapping[str, Any], default: bool, rule: Rule | None
) -> tuple[list[float | None], list[float | None]]:
    targets = settings["targets"]
    if targets is None and default and rule is not None:
        try:  # the rule's own (valid: a rule version is checked when it is written)
            return (
                _target_values(rule.targets.get("sl_pct")),
                _target_values(rule.targets.get("tp_pct")),
            )
        except Invalid as exc:
            raise fail(
                f"rule {rule.setup_id} {rule.version.tag}: targets", rule.targets, str(exc.msg)
            ) from None
    targets = targets or {}
    return targets.get("sl_pct", [None]), targets.get("tp_pct", [None])


def _parse(
    raw: Any,
    catalog: Catalog,
    rule: Rule | None,
    index: Mapping[str, tuple[int, str | None]] | None = None,
) -> GridRequest | None:
    problems = Problems(SOURCE, index or {})
    settings = _settings(raw, catalog, problems)
    found, default = _axes(raw, catalog, rule, problems)
    problems.raise_for(DataValidationError)
    if found is None:
        return None
    if rule is not None and not default:
        check_rule_indicators([ind.spec.name for ind in found], rule)
    sl_values, tp_values = _target_axes(settings, default, rule)
    guard_variants(found, settings, len(sl_values) * len(tp_values))
    axes = [(ind.spec.name, [(p, a.build()) for p, a in ind.axes.items()]) for ind in found]
    return GridRequest(
        axes=axes,
        sl_values=sl_values,
        tp_values=tp_values,
        direction=settings["direction"],
        sizing=settings["sizing"],
        preselect=settings["preselect"],
        top_k=settings["top_k"],
        top_trades_n=settings["top_trades_n"],
        batch_size=settings["batch_size"],
        max_variants=settings["max_variants"],
        max_compute_bytes=settings["max_compute_bytes"],
        prune=settings["prune"],
        constraints={i.spec.name: i.spec.constraints for i in found},
        default_axes=default,
    )


def parse_grid(
    raw: Mapping[str, Any] | None,
    catalog: Catalog,
    rule: Rule | None = None,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
) -> GridRequest:
    """Validate the ``grid:`` section of params.yaml and guard its size, before any list of
    values is built.

    With ``rule``: the grid's indicators must be the rule's, and a section that names no
    indicators (absent, ``{}``) sweeps the rule's own (:data:`DEFAULT_AXES_NOTE`; targets
    not named: the rule's). Without a rule, the indicators are required. ``index`` (the
    node index of params.yaml) puts each problem's line in its message.

    Raises:
        DataValidationError: unknown keys or indicators, a value that is not a finite number,
            ranges beyond the catalog's bounds, other indicators than the rule's, or more
            variants than ``max_variants`` (counted arithmetically; the message names the
            count, the limit and the axes).
    """
    request = _parse(raw, catalog, rule, index)
    if request is None:
        raise DataValidationError(
            f"{SOURCE}: grid: needs an `indicators` list of {{name, "
            "params: axes}} (or a rule to take them from)"
        )
    return request


def check_grid(
    raw: Any, catalog: Catalog, *, index: Mapping[str, tuple[int, str | None]] | None = None
) -> None:
    """Validate a ``grid:`` section without its rule (e.g. a ``-S grid...`` override): every
    value and the size guard; a section without indicators is fine (they default to the
    rule's when the grid runs).

    Raises:
        DataValidationError: as :func:`parse_grid`.
    """
    _parse(raw, catalog, None, index)


def check_params_and_grid(
    raw: Mapping[str, Any] | None,
    catalog: Catalog,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    engine: str | None = None,
) -> RunParams:
    """params.yaml's sections (:func:`ita_vc.backtest.params.parse_params`) and its ``grid:``
    section (:func:`check_grid`, without the rule) checked together: every problem of both in
    one message, each with its line when ``index`` is the file's node index.

    Raises:
        DataValidationError: every problem found.
    """
    errors: list[str] = []
    params = None
    try:
        params = parse_params(raw, index=index, engine=engine)
    except DataValidationError as exc:
        errors.append(str(exc))
    try:
        check_grid((raw or {}).get("grid"), catalog, index=index)
    except DataValidationError as exc:
        errors.append(str(exc))
    if errors or params is None:
        raise DataValidationError("\n".join(errors))
    return params
