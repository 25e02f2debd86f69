"""The indicator catalog (``configs/indicators.yaml``): names, parameters, bounds and defaults.

A workspace's ``configs/indicators.yaml`` is used when present, else the embedded default
(``ita_vc/templates/indicators.yaml``). The catalog only describes parameters; the indicator
implementations live in :mod:`ita_vc.backtest`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from ita_vc.errors import ConfigError
from ita_vc.schema import (
    Invalid,
    Problems,
    choice,
    finite_number,
    integer,
    listing_allowed,
    mapping_of,
    sequence_of,
    strict,
    text,
    type_name,
)
from ita_vc.yaml_read import YamlError, load_yaml_document, read_text_file

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "CATALOG_RELPATH",
    "SCHEMA",
    "Catalog",
    "IndicatorSpec",
    "ParamSpec",
    "default_catalog_text",
    "load_catalog",
]

CATALOG_RELPATH = "configs/indicators.yaml"
_TYPES = ("int", "float")
_OPERATORS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One indicator parameter: type, hard bounds, grid step and default."""

    name: str
    type: str
    min: float
    max: float
    step: float
    default: float

    def check(self, value: Any) -> str | None:
        """None if ``value`` is acceptable, else the reason."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if not _finite(value):
            return f"must be finite, got {value!r}"
        if self.type == "int" and not (isinstance(value, int) or float(value).is_integer()):
            return f"must be a whole number, got {value!r}"
        if not self.min <= value <= self.max:
            return f"{value!r} is outside the catalog range [{self.min:g}, {self.max:g}]"
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "type": self.type,
            "min": self.min,
            "max": self.max,
            "step": self.step,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """An indicator of the catalog."""

    name: str
    description: str
    params: Mapping[str, ParamSpec]
    constraints: tuple[str, ...] = ()

    def check_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems of a params mapping, as ``(param or '', message)`` pairs."""
        problems: list[tuple[str, str]] = []
        for key, value in params.items():
            spec = self.params.get(key)
            if spec is None:
                known = ", ".join(self.params) or "none"
                problems.append((key, f"unknown parameter of {self.name} (known: {known})"))
                continue
            reason = spec.check(value)
            if reason:
                problems.append((key, reason))
        if problems:
            return problems
        values = {k: params.get(k, spec.default) for k, spec in self.params.items()}
        for constraint in self.constraints:
            left, op, right = constraint.split()
            if not _OPERATORS[op](values[left], values[right]):
                problems.append(
                    (
                        "",
                        f"{self.name} needs {constraint} "
                        f"(got {left}={values[left]!r}, {right}={values[right]!r})",
                    )
                )
        return problems


@dataclass(frozen=True, slots=True)
class Catalog:
    """All indicators a rule may use."""

    indicators: Mapping[str, IndicatorSpec]

    def get(self, name: str) -> IndicatorSpec | None:
        """The spec of ``name``, or None."""
        return self.indicators.get(name)


def _finite(value: Any) -> bool:
    """A number (not a bool) that is finite as a float (a 400-digit int is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _identifier(what: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or not value.isidentifier():
            raise Invalid(f"{what} names are identifiers, got {value!r}")
        return value

    return check


def _constraints(value: object) -> list[str]:
    """``['fast < slow']``; null or absent: none."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"must be a list such as ['fast < slow'], got {value!r} ({type_name(value)})")
    constraints: list[str] = sequence_of(text(what="a constraint such as 'fast < slow'"))(value)
    return constraints


_PARAM = listing_allowed(
    strict(
        {
            vol.Required("type"): choice(_TYPES, what="a parameter type:"),
            vol.Required("min"): finite_number(),
            vol.Required("max"): finite_number(),
            vol.Required("step"): finite_number(),
            vol.Required("default"): finite_number(),
        }
    )
)
_INDICATOR = listing_allowed(
    strict(
        {
            vol.Optional("description", default=""): text(what="a string", nonempty=False),
            vol.Optional("params", default=dict): mapping_of(_identifier("parameter"), _PARAM),
            vol.Optional("constraints", default=list): _constraints,
        }
    )
)
SCHEMA = strict(
    {
        vol.Required("indicators"): mapping_of(_identifier("indicator"), _INDICATOR),
        vol.Optional("schema_version"): integer(minimum=1),
    }
)
"""The shape of ``configs/indicators.yaml``; bounds and constraints are checked after it."""


def _param(where: str, pname: str, p: Mapping[str, Any], problems: Problems) -> ParamSpec:
    """A parameter's spec; ``min <= default <= max`` (a whole default for ints), ``step > 0``."""
    spec = ParamSpec(
        pname, p["type"], float(p["min"]), float(p["max"]), float(p["step"]), p["default"]
    )
    if spec.min > spec.max:
        problems.add(f"{where}.min", f"inconsistent bounds: min {spec.min:g} > max {spec.max:g}")
    if spec.step <= 0:
        problems.add(f"{where}.step", f"must be > 0, got {p['step']!r}")
    reason = spec.check(spec.default) if spec.min <= spec.max else None
    if reason:
        problems.add(f"{where}.default", f"inconsistent default: {reason}")
    return spec


def _check_constraints(where: str, body: Mapping[str, Any], problems: Problems) -> None:
    """Each constraint reads ``<param> <op> <param>`` over the indicator's own parameters."""
    for i, constraint in enumerate(body["constraints"]):
        parts = constraint.split()
        if (
            len(parts) != 3
            or parts[1] not in _OPERATORS
            or not {parts[0], parts[2]} <= set(body["params"])
        ):
            problems.add(
                f"{where}.constraints.{i}",
                f"cannot read {constraint!r}: write "
                f"'<param> < <param>' or '<=' over {', '.join(body['params']) or '-'}",
            )


def _parse(text: str, source: str) -> Catalog:
    """Validate catalog text against :data:`SCHEMA` and the named checks.

    Raises:
        ConfigError: invalid YAML, or every problem found, each with file, line and field.
    """
    try:
        document = load_yaml_document(text, source)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    problems = Problems(source, document.index)
    doc = problems.check(SCHEMA, document.data)
    if doc is None:
        problems.fail(ConfigError)
    indicators: dict[str, IndicatorSpec] = {}
    for name, body in doc["indicators"].items():
        where = f"indicators.{name}"
        params = {
            pname: _param(f"{where}.params.{pname}", pname, p, problems)
            for pname, p in body["params"].items()
        }
        _check_constraints(where, body, problems)
        indicators[name] = IndicatorSpec(
            name, body["description"], params, tuple(body["constraints"])
        )
    problems.raise_for(ConfigError)
    return Catalog(indicators)


@functools.cache
def _embedded() -> Catalog:
    text = resources.files("ita_vc.templates").joinpath("indicators.yaml").read_text("utf-8")
    return _parse(text, "<embedded indicators.yaml>")


def default_catalog_text() -> str:
    """The embedded default catalog (what ``ita-vc init`` writes)."""
    return resources.files("ita_vc.templates").joinpath("indicators.yaml").read_text("utf-8")


def load_catalog(root: str | Path | None = None) -> Catalog:
    """The catalog of the workspace at ``root`` (its ``configs/indicators.yaml``), else the default.

    Raises:
        ConfigError: the workspace catalog is invalid.
    """
    if root is None:
        return _embedded()
    path = Path(root) / CATALOG_RELPATH
    if not path.is_file():
        return _embedded()
    try:
        text = read_text_file(path, max_bytes=1 << 20)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    return _parse(text, CATALOG_RELPATH)
