"""The indicator catalog (``configs/indicators.yaml``): names, parameters, bounds and defaults.

A workspace's ``configs/indicators.yaml`` is used when present, else the embedded default
(``ita_vc/templates/indicators.yaml``). The catalog only describes parameters; the indicator
implementations live in :mod:`ita_vc.backtest`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ita_vc.errors import ConfigError
from ita_vc.yaml_read import YamlError, load_yaml_text, read_text_file

__all__ = [
    "CATALOG_RELPATH",
    "Catalog",
    "IndicatorSpec",
    "ParamSpec",
    "default_catalog_text",
    "load_catalog",
]

CATALOG_RELPATH = "configs/indicators.yaml"
_TYPES = {"int", "float"}
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
        return {"type": self.type, "min": self.min, "max": self.max, "step": self.step,
                "default": self.default}


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
                problems.append(("", f"{self.name} needs {constraint} "
                                     f"(got {left}={values[left]!r}, {right}={values[right]!r})"))
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


def _param(name: str, pname: str, p: Any, fail: Any) -> ParamSpec:
    where = f"indicators.{name}.params.{pname}"
    if not isinstance(p, Mapping) or not {"type", "min", "max", "step", "default"} <= set(p):
        raise fail(f"{where}: needs type, min, max, step, default")
    if not isinstance(p["type"], str) or p["type"] not in _TYPES:
        raise fail(f"{where}.type: one of {sorted(_TYPES)}, got {p['type']!r}")
    for key in ("min", "max", "step", "default"):
        if not _finite(p[key]):
            raise fail(f"{where}.{key}: must be a finite number, got {p[key]!r}")
    spec = ParamSpec(pname, p["type"], float(p["min"]), float(p["max"]), float(p["step"]),
                     p["default"])
    if spec.min > spec.max or spec.step <= 0 or spec.check(spec.default):
        raise fail(f"{where}: inconsistent bounds/step/default")
    return spec


def _parse(doc: Any, source: str) -> Catalog:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"{source}: {message}")

    if not isinstance(doc, Mapping) or not isinstance(doc.get("indicators"), Mapping):
        raise fail("must be a mapping with an 'indicators' mapping")
    indicators: dict[str, IndicatorSpec] = {}
    for name, body in doc["indicators"].items():
        if not isinstance(name, str) or not name.isidentifier():
            raise fail(f"indicators: indicator names are identifiers, got {name!r}")
        if not isinstance(body, Mapping) or not isinstance(body.get("params", {}), Mapping):
            raise fail(f"indicators.{name}: must be a mapping with a 'params' mapping")
        params = {}
        for pname, p in body.get("params", {}).items():
            if not isinstance(pname, str) or not pname.isidentifier():
                raise fail(f"indicators.{name}.params: parameter names are identifiers, "
                           f"got {pname!r}")
            params[pname] = _param(name, pname, p, fail)
        raw_constraints = body.get("constraints") or []
        if not isinstance(raw_constraints, list):
            raise fail(f"indicators.{name}.constraints: must be a list such as "
                       "['fast < slow']")
        for constraint in raw_constraints:
            parts = constraint.split() if isinstance(constraint, str) else []
            if len(parts) != 3 or parts[1] not in _OPERATORS or not {parts[0], parts[2]} <= set(
                params
            ):
                raise fail(f"indicators.{name}.constraints: cannot read {constraint!r}")
        description = body.get("description", "")
        if not isinstance(description, str):
            raise fail(f"indicators.{name}.description: must be a string")
        indicators[name] = IndicatorSpec(name, description, params, tuple(raw_constraints))
    return Catalog(indicators)


@functools.cache
def _embedded() -> Catalog:
    text = resources.files("ita_vc.templates").joinpath("indicators.yaml").read_text("utf-8")
    return _parse(load_yaml_text(text, "<embedded indicators.yaml>"), "<embedded indicators.yaml>")


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
        return _parse(load_yaml_text(read_text_file(path, max_bytes=1 << 20), CATALOG_RELPATH),
                      CATALOG_RELPATH)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
