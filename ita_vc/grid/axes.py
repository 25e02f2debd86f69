"""Grid axes: parsing each parameter's axis, and counting variants without building them.

A range axis is ``floor((max - min) / step) + 1`` values, counted, not built; a catalog
constraint between two parameters (``fast < slow``) is counted exactly by sorted counting of
the two axes' distinct values; several constraints on one indicator give an exact count by
enumeration when its combinations are few, else an upper bound (messages then say "up to").
So a request for 10^12 variants is refused at once and in little memory. An axis is built (a
list) only after the guard, and holds at most :data:`AXIS_VALUES_MAX` values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from ita_vc.catalog import Catalog, IndicatorSpec, ParamSpec
    from ita_vc.rules.model import Rule
    from ita_vc.schema import Problems

__all__ = [
    "AXIS_VALUES_MAX",
    "DEFAULT_AXES_NOTE",
    "DEFAULT_SPAN_STEPS",
    "INT_LIMIT",
    "MIN_STEP",
    "Axis",
    "GridFieldError",
    "IndicatorAxes",
    "default_axes",
    "fail",
    "guard_variants",
    "holds",
    "indicator_axes",
    "indicator_count",
    "is_number",
]

SOURCE = "params.yaml"
AXIS_VALUES_MAX = 1_000_000
"""The most values one axis may hold (a range is refused before it is built)."""
MIN_STEP = 1e-9
"""The finest range step: values are rounded to 10 decimals, so a finer step would repeat."""
DEFAULT_SPAN_STEPS = 5
"""Default axes: each parameter at the rule's value +/- this many catalog steps."""
DEFAULT_AXES_NOTE = (
    "the rule's own indicators, each parameter at its rule value +/- "
    f"{DEFAULT_SPAN_STEPS} catalog steps (clipped to the catalog bounds)"
)
_EXACT_ENUMERATION_MAX = 200_000


def holds(constraint: str, values: Mapping[str, Any]) -> bool:
    """Whether ``values`` satisfy a catalog constraint (``a < b``, ``a <= b``)."""
    left, op, right = constraint.split()
    if left not in values or right not in values:
        return True
    return bool(values[left] < values[right]) if op == "<" else bool(values[left] <= values[right])


def _distinct(values: Iterator[Any], count: int) -> Any:
    """Sorted distinct values as a float64 array (8 bytes a value, no Python list)."""
    import numpy as np

    return np.unique(np.fromiter(values, dtype=np.float64, count=count))


def _pairs(constraint: str, axes: Mapping[str, Axis]) -> int:
    """Combinations of an indicator's axes that satisfy one ``a < b`` / ``a <= b``, by sorted
    counting of the two axes' distinct values (no combination is generated)."""
    import numpy as np

    left, op, right = constraint.split()
    others = math.prod(a.size for p, a in axes.items() if p not in (left, right))
    if left == right:
        return axes[left].size * others if op == "<=" else 0
    a, b = axes[left].distinct(), axes[right].distinct()
    # for each value of a, the values of b above it (b > a), or from it on (b >= a)
    at = np.searchsorted(b, a, side="right") if op == "<" else np.searchsorted(b, a, side="left")
    return int((len(b) - at).sum()) * others


def indicator_count(axes: Mapping[str, Axis], constraints: Sequence[str]) -> tuple[int, bool]:
    """``(combinations, exact)`` of one indicator's axes under its catalog constraints: exact
    for one constraint (or few enough combinations to enumerate), else an upper bound."""
    raw = math.prod(a.size for a in axes.values())
    if not constraints or raw == 0:
        return raw, True
    if len(constraints) == 1:
        return _pairs(constraints[0], axes), True
    if raw <= _EXACT_ENUMERATION_MAX:
        names = list(axes)
        lists = [list(axes[p].generate()) for p in names]
        count = sum(
            1
            for combo in itertools.product(*lists)
            if all(holds(c, dict(zip(names, combo, strict=True))) for c in constraints)
        )
        return count, True
    return min(_pairs(c, axes) for c in constraints), False


class GridFieldError(DataValidationError):
    """One refused field of the grid section: ``params.yaml: <field>: <detail>``."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{SOURCE}: {field}: {detail}")
        self.field = field
        self.detail = detail


def fail(where: str, value: Any, why: str) -> GridFieldError:
    """``params.yaml: <where>: <value>: <why>``."""
    return GridFieldError(where, f"{value!r}: {why}")


INT_LIMIT = 2**63
"""Integers from YAML are accepted up to this magnitude (int64; a float of them is exact
enough), so no value overflows a float conversion downstream."""


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool); an int within +/- :data:`INT_LIMIT`."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT_LIMIT < value < INT_LIMIT
    return isinstance(value, float) and math.isfinite(value)


@dataclass(frozen=True)
class Axis:
    """One parameter axis before it is built: explicit values, or a range and its count."""

    where: str
    bounds: ParamSpec | None
    explicit: tuple[Any, ...] | None = None
    lo: float = 0.0
    step: float = 0.0
    count: int = 0

    @property
    def size(self) -> int:
        """How many values (a range's counted, not built)."""
        return len(self.explicit) if self.explicit is not None else self.count

    def generate(self) -> Iterator[Any]:
        """The values, one at a time (a range's are ``round(min + i * step, 10)``)."""
        if self.explicit is not None:
            yield from self.explicit
            return
        whole = self.bounds is not None and self.bounds.type == "int"
        for i in range(self.count):
            value = round(self.lo + i * self.step, 10)
            yield int(value) if whole and value.is_integer() else value

    def distinct(self) -> Any:
        """The sorted distinct values as a float64 array."""
        return _distinct(self.generate(), self.size)

    def build(self) -> list[Any]:
        """The sorted distinct values, each checked against the catalog."""
        if self.explicit is not None:
            return list(self.explicit)
        values = list(self.generate())
        for value in values:
            if self.bounds is not None and (reason := self.bounds.check(value)):
                raise fail(
                    self.where,
                    value,
                    f"{reason} (a grid narrows the catalog's range, never widens it)",
                )
        return sorted(set(values), key=float)


def _range_axis(spec: Mapping[Any, Any], bounds: ParamSpec, where: str) -> Axis:
    unknown = [k for k in spec if k not in ("min", "max", "step")]
    if unknown or "min" not in spec or "max" not in spec:
        raise fail(
            where, dict(spec), "a range is {min, max, step} (step: the catalog's if left out)"
        )
    lo, hi, step = spec["min"], spec["max"], spec.get("step", bounds.step)
    for key, value in (("min", lo), ("max", hi), ("step", step)):
        if not is_number(value):
            raise fail(f"{where}.{key}", value, "must be a finite number")
    if step < MIN_STEP or hi < lo:
        raise fail(where, dict(spec), f"needs min <= max and step >= {MIN_STEP:g}")
    for key, value in (("min", lo), ("max", hi)):
        if reason := bounds.check(value):
            raise fail(
                f"{where}.{key}",
                value,
                f"{reason} (a grid narrows the catalog's range, never widens it)",
            )
    ratio = (hi - lo) / step
    count = math.floor(ratio + 1e-9) + 1 if math.isfinite(ratio) else math.inf
    if count > AXIS_VALUES_MAX:
        shown = f"{count:,}" if math.isfinite(count) else "too many"
        raise GridFieldError(
            where,
            f"{{min: {lo!r}, max: {hi!r}, step: {step!r}}} is {shown} values, more than "
            f"an axis may hold ({AXIS_VALUES_MAX:,}); use a larger step",
        )
    return Axis(where, bounds, None, float(lo), float(step), int(count))


def _axis(spec: Any, bounds: ParamSpec, where: str) -> Axis:
    """One parameter axis: a scalar, a list, or ``{min, max, step}`` within the catalog."""
    if isinstance(spec, Mapping):
        return _range_axis(spec, bounds, where)
    values = list(spec) if isinstance(spec, list) else [spec]
    if not values:
        raise fail(where, spec, "an axis needs at least one value")
    if len(values) > AXIS_VALUES_MAX:
        raise fail(
            where, f"{len(values):,} values", f"more than an axis may hold ({AXIS_VALUES_MAX:,})"
        )
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and not is_number(value):
            raise fail(where, value, f"outside the catalog range [{bounds.min:g}, {bounds.max:g}]")
    if bounds.type == "int":
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    for value in values:
        if reason := bounds.check(value):
            raise fail(
                where, value, f"{reason} (a grid narrows the catalog's range, never widens it)"
            )
    return Axis(where, bounds, tuple(sorted(set(values), key=float)))


@dataclass(frozen=True)
class IndicatorAxes:
    """An indicator of the request and its parameter axes (not built yet)."""

    spec: IndicatorSpec
    where: str
    axes: dict[str, Axis]


def _indicator(item: Any, where: str, catalog: Catalog, problems: Problems) -> IndicatorAxes | None:
    """One indicator of the request and its axes (None when refused: problems added)."""
    if not isinstance(item, Mapping):
        raise fail(where, item, "must be a mapping {name, params}")
    extra = [k for k in item if k not in ("name", "params")]
    if extra:
        raise fail(
            f"{where}.{extra[0]}", item[extra[0]], "unknown key (an indicator has name and params)"
        )
    name = item.get("name")
    spec = catalog.get(name) if isinstance(name, str) else None
    if spec is None:
        raise fail(
            f"{where}.name", name, f"unknown indicator (catalog: {', '.join(catalog.indicators)})"
        )
    given = item.get("params")
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise fail(f"{where}.params", given, "must be a mapping of parameter axes")
    for key in given:
        if key not in spec.params:
            problems.add(
                f"{where}.params.{key}",
                f"{given[key]!r}: unknown parameter of {name} (known: {', '.join(spec.params)})",
            )
    axes = {}
    for p, bounds in spec.params.items():
        try:
            axes[p] = _axis(given.get(p, bounds.default), bounds, f"{where}.params.{p}")
        except GridFieldError as exc:
            problems.add(exc.field, exc.detail)
    if len(axes) < len(spec.params) or any(key not in spec.params for key in given):
        return None
    return IndicatorAxes(spec, where, axes)


def indicator_axes(
    items: Any,
    catalog: Catalog,
    problems: Problems,
) -> list[IndicatorAxes] | None:
    """The request's indicators and their axes, each checked against the catalog: every
    refused one is added to ``problems`` (then None)."""
    if not isinstance(items, list):
        problems.add("grid.indicators", f"{items!r}: must be a list of {{name, params: axes}}")
        return None
    out = []
    for i, item in enumerate(items):
        try:
            found = _indicator(item, f"grid.indicators.{i}", catalog, problems)
        except GridFieldError as exc:
            problems.add(exc.field, exc.detail)
            found = None
        if found is not None:
            out.append(found)
    return out if len(out) == len(items) else None


def default_axes(rule: Rule, catalog: Catalog) -> list[IndicatorAxes]:
    """The rule's own indicators, each parameter at its value +/- 5 catalog steps (clipped)."""
    out = []
    for i, item in enumerate(rule.indicators):
        where = f"rule {rule.setup_id} {rule.version.tag}: indicators.{i}"
        spec = catalog.get(str(item.get("name")))
        if spec is None:
            raise fail(
                f"{where}.name",
                item.get("name"),
                f"unknown indicator (catalog: {', '.join(catalog.indicators)})",
            )
        params = item.get("params") or {}
        axes = {}
        for p, bounds in spec.params.items():
            centre = params.get(p, bounds.default)
            if not is_number(centre):
                raise fail(f"{where}.params.{p}", centre, "must be a finite number")
            values = []
            for k in range(-DEFAULT_SPAN_STEPS, DEFAULT_SPAN_STEPS + 1):
                value = round(centre + k * bounds.step, 10)
                if bounds.type == "int" and float(value).is_integer():
                    value = int(value)
                if bounds.check(value) is None:
                    values.append(value)
            axes[p] = Axis(f"{where}.params.{p}", bounds, tuple(sorted(set(values), key=float)))
        out.append(IndicatorAxes(spec, where, axes))
    return out


def guard_variants(
    found: Sequence[IndicatorAxes], settings: Mapping[str, Any], per_base: int
) -> None:
    """Refuse a grid of more than ``max_variants`` variants, counted without building it."""
    base, exact, parts = 1, True, []
    for ind in found:
        count, known = indicator_count(ind.axes, ind.spec.constraints)
        base, exact = base * count, exact and known
        detail = " x ".join(f"{p} {a.size:,}" for p, a in ind.axes.items())
        rule = f", {', '.join(ind.spec.constraints)}" if ind.spec.constraints else ""
        parts.append(f"{ind.where} {ind.spec.name}: {detail} values{rule}")
    stage_b = min(base, settings["preselect"]) * per_base
    total, limit = base + stage_b, settings["max_variants"]
    if total > limit:
        up_to = "" if exact else "up to "
        raise DataValidationError(
            f"{SOURCE}: grid: the grid has {up_to}{total:,} variants (Stage A {up_to}{base:,} "
            f"+ Stage B {up_to}{stage_b:,}), more than max_variants = {limit:,} "
            f"(grid.max_variants); narrow the ranges ({'; '.join(parts)}) or raise the limit"
        )
