"""One validation layer: each file's shape is declared once; one engine reports every problem.

A file's shape (types, required and optional keys, bounds, enums, unknown keys refused) is a
voluptuous schema (as dvc's ``dvc/schema.py`` and ``config_schema.py``) built from the small
validators below, whose messages quote the value. :class:`Problems` runs a schema over loaded
data and turns **every** voluptuous error into a :class:`Problem` with ``file:line: field:
message``, the line coming from the YAML node index (:func:`ita_vc.yaml_read.node_index`).
Cross-field rules (catalog bounds, ``fast < slow``, per-mode sizing fields) stay small named
checks run after the schema, adding to the same :class:`Problems`; each caller raises its own
exception type (rules: exit 4, configuration: 8, parameters: 11) with all of them.

Nothing here imports dvc, pandas or git: the pre-commit hook validates rules through it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import voluptuous as vol

if TYPE_CHECKING:
    from ita_vc.errors import ItaVcError

__all__ = [
    "Invalid",
    "Problem",
    "Problems",
    "boolean",
    "choice",
    "finite_number",
    "integer",
    "listing_allowed",
    "mapping_of",
    "nullable",
    "number",
    "sequence_of",
    "strict",
    "text",
    "type_name",
]

Invalid = vol.Invalid
Validator = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem: where (file, line, field) and what."""

    path: str
    message: str
    field: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "text"),
    (Mapping, "mapping"),
    ((list, tuple), "list"),
)


def type_name(value: object) -> str:
    """The YAML-facing name of a value's type (``mapping``, ``list``, ``text``, ...)."""
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- validators: each raises Invalid with a message that quotes the value ---------------------


def strict(schema: Mapping[Any, Any]) -> vol.Schema:
    """A mapping schema whose unknown keys are refused (every file ita-vc reads is strict)."""
    return vol.Schema(dict(schema), extra=vol.PREVENT_EXTRA)


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Validator:
    """An integer (never a boolean, never a float such as 2.0) within the bounds."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be an integer, got {_show(value)} ({type_name(value)})")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be <= {maximum}, got {value}")
        return value

    return check


def number(
    *, minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False
) -> Validator:
    """A finite number (integer or float, never a boolean, NaN or infinity) within the bounds."""

    def check(value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"must be a number, got {_show(value)} ({type_name(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            raise Invalid(f"must be a finite number, got {value}")
        if minimum is not None:
            if exclusive_minimum and value <= minimum:
                raise Invalid(f"must be > {minimum:g}, got {value}")
            if value < minimum:
                raise Invalid(f"must be >= {minimum:g}, got {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be <= {maximum:g}, got {value}")
        return value

    return check


def text(
    *,
    pattern: str | None = None,
    what: str = "text",
    nonempty: bool = True,
    max_length: int | None = None,
) -> Validator:
    """A string; optionally non-empty, bounded and matching ``pattern`` (described as ``what``)."""
    compiled = re.compile(pattern) if pattern is not None else None

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be {what}, got {_show(value)} ({type_name(value)})")
        if nonempty and not value.strip():
            raise Invalid(f"must be non-empty {what}")
        if max_length is not None and len(value) > max_length:
            raise Invalid(f"is {len(value)} characters, the limit is {max_length}")
        if compiled is not None and not compiled.fullmatch(value):
            raise Invalid(f"{_show(value)} is not {what}")
        return value

    return check


def boolean() -> Validator:
    """``true`` or ``false`` (never 0/1 or the text "yes")."""

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, got {_show(value)} ({type_name(value)})")
        return value

    return check


def choice(options: Iterable[Any], *, what: str = "one of") -> Validator:
    """One of ``options`` (listed in the message)."""
    allowed = tuple(options)

    def check(value: Any) -> Any:
        hashable = isinstance(value, str | int | float | bool) or value is None
        if (
            not hashable
            or value not in allowed
            or isinstance(value, bool) != any(isinstance(a, bool) and a == value for a in allowed)
        ):
            listed = ", ".join(str(a) for a in allowed)
            raise Invalid(f"{_show(value)} is not {what} {listed}")
        return value

    return check


def sequence_of(item: Any, *, minimum: int = 0, maximum: int | None = None) -> Validator:
    """A list whose every item passes ``item`` (each failing item is reported at its index)."""
    inner = vol.Schema(item)

    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Invalid(f"must be a list, got {_show(value)} ({type_name(value)})")
        if len(value) < minimum:
            raise Invalid(f"must hold at least {minimum} item(s), got {len(value)}")
        if maximum is not None and len(value) > maximum:
            raise Invalid(f"must hold at most {maximum} items, got {len(value)}")
        out: list[Any] = []
        errors: list[vol.Invalid] = []
        for i, element in enumerate(value):
            try:
                out.append(inner(element))
            except vol.MultipleInvalid as exc:
                errors.extend(_prefixed(exc.errors, [i]))
            except vol.Invalid as exc:
                errors.extend(_prefixed([exc], [i]))
        if errors:
            raise vol.MultipleInvalid(errors)
        return out

    return check


def mapping_of(key: Validator, value: Any) -> Validator:
    """A mapping with free keys (each passing ``key``) and values passing ``value``."""
    inner = vol.Schema(value)

    def check(data: Any) -> dict[Any, Any]:
        if not isinstance(data, Mapping):
            raise Invalid(f"must be a mapping, got {_show(data)} ({type_name(data)})")
        out: dict[Any, Any] = {}
        errors: list[vol.Invalid] = []
        for k, v in data.items():
            try:
                key(k)
                out[k] = inner(v)
            except vol.MultipleInvalid as exc:
                errors.extend(_prefixed(exc.errors, [k]))
            except vol.Invalid as exc:
                errors.extend(_prefixed([exc], [k]))
        if errors:
            raise vol.MultipleInvalid(errors)
        return out

    return check


def _prefixed(errors: Sequence[vol.Invalid], prefix: list[Any]) -> list[vol.Invalid]:
    return [vol.Invalid(e.msg, path=prefix + list(e.path)) for e in errors]


# --- the engine ------------------------------------------------------------------------------


def _value_at(data: Any, path: Sequence[Any]) -> tuple[bool, Any]:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not in_list and not (isinstance(data, Mapping) and part in data):
            return False, None
        data = data[part]
    return True, data


def _keys_at(schema: Any, path: Sequence[Any]) -> list[str]:
    """The keys a (strict) mapping schema allows at ``path``, for "unknown key" messages."""
    node = schema.schema if isinstance(schema, vol.Schema) else schema
    for part in path:
        if isinstance(node, vol.Schema):
            node = node.schema
        if not isinstance(node, dict):
            return []
        match = [v for k, v in node.items() if getattr(k, "schema", k) == part]
        if not match:
            return []
        node = match[0]
    if isinstance(node, vol.Schema):
        node = node.schema
    if not isinstance(node, dict):
        return []
    return sorted(str(getattr(k, "schema", k)) for k in node)


def _message(error: vol.Invalid, schema: Any, data: Any) -> str:
    path = list(error.path)
    msg = str(error.msg)
    if msg == "extra keys not allowed":
        allowed = _keys_at(schema, path[:-1])
        return "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if msg == "required key not provided":
        return "is required"
    found, value = _value_at(data, path)
    if msg == "expected a dictionary":
        return (
            f"must be a mapping, got {_show(value)} ({type_name(value)})"
            if found
            else "must be a mapping"
        )
    if msg == "expected a list":
        return (
            f"must be a list, got {_show(value)} ({type_name(value)})"
            if found
            else "must be a list"
        )
    if msg.startswith("expected ") and found:
        return f"{msg}, got {_show(value)} ({type_name(value)})"
    return msg


@dataclass
class Problems:
    """Every problem found in one file, each located through the file's node index.

    ``index`` maps dotted key paths to ``(line, raw scalar text)``
    (:attr:`ita_vc.yaml_read.YamlDocument.index`); ``prefix`` is prepended to every field (a
    section validated on its own, such as ``backtest.`` in ``params.yaml``).
    """

    source: str
    index: Mapping[str, tuple[int, str | None]] = field(default_factory=dict)
    items: list[Problem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def line(self, dotted: str) -> int | None:
        """The line of ``dotted`` or, when absent, of its nearest present parent."""
        key = dotted
        while key:
            found = self.index.get(key)
            if found is not None:
                return found[0]
            if "." not in key:
                return None
            key = key.rsplit(".", 1)[0]
        return None

    def raw(self, dotted: str) -> str | None:
        """The scalar text as the author typed it at ``dotted`` (``1.10``, not 1.1)."""
        return self.index.get(dotted, (None, None))[1]

    def add(self, dotted: str, message: str, *, line: int | None = None) -> None:
        """Record one problem at a field (a named cross-field check's finding)."""
        where = line if line is not None else (self.line(dotted) if dotted else None)
        self.items.append(Problem(self.source, message, dotted, where))

    def check(self, schema: Any, data: Any, *, prefix: str = "") -> Any:
        """Validate ``data`` against ``schema``; every error becomes a problem.

        Returns the validated (defaults filled) data, or None when anything failed.
        """
        compiled = schema if isinstance(schema, vol.Schema) else vol.Schema(schema)
        try:
            return compiled(data)
        except vol.MultipleInvalid as exc:
            errors: Sequence[vol.Invalid] = exc.errors
        except vol.Invalid as exc:
            errors = [exc]
        for error in errors:
            dotted = prefix + ".".join(str(p) for p in error.path)
            self.add(dotted.rstrip("."), _message(error, compiled, data))
        return None

    def sorted(self) -> list[Problem]:
        """The problems in file order (line, then field)."""
        return sorted(self.items, key=lambda p: (p.line or 0, p.field))

    def text(self) -> str:
        """All problems, one per line, in file order."""
        return "\n".join(str(p) for p in self.sorted())

    def raise_for(self, error: Callable[[str], ItaVcError]) -> None:
        """Raise ``error(all problems)`` when there is any."""
        if self.items:
            raise error(self.text())

    def fail(self, error: Callable[[str], ItaVcError]) -> NoReturn:
        """Raise ``error`` with the problems found (call only when there is one)."""
        raise error(self.text())


# --- added validators (config, catalog and retention files) ----------------------------------


def finite_number(*, minimum: float | None = None, maximum: float | None = None) -> Validator:
    """A number that is finite as a float (never a boolean, NaN, infinity or an integer too large
    for a float) within the bounds; every message states the whole requirement."""
    wanted = "a finite number"
    if minimum is not None:
        wanted += f" >= {minimum:g}"
    if maximum is not None:
        wanted += f" <= {maximum:g}"

    def check(value: object) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"must be {wanted}, got {_show(value)} ({type_name(value)})")
        try:
            as_float = float(value)
        except OverflowError:
            raise Invalid(
                f"must be {wanted}, got an integer of {int(value).bit_length()} bits, "
                "too large for a number"
            ) from None
        if (
            not math.isfinite(as_float)
            or (minimum is not None and as_float < minimum)
            or (maximum is not None and as_float > maximum)
        ):
            raise Invalid(f"must be {wanted}, got {_show(value)}")
        return value

    return check


def nullable(validator: Any) -> Validator:
    """``null`` (None) or a value passing ``validator``."""
    inner = vol.Schema(validator)

    def check(value: object) -> Any:
        return None if value is None else inner(value)

    return check


def listing_allowed(schema: Any) -> Validator:
    """``schema`` whose "unknown key" errors, however deep, name the keys allowed there.

    The engine names them for the mapping schemas it can walk to; a schema reached through
    :func:`mapping_of` or :func:`sequence_of` (free keys, list items) is wrapped in this instead.
    """
    compiled = vol.Schema(schema)

    def check(value: Any) -> Any:
        try:
            return compiled(value)
        except vol.MultipleInvalid as exc:
            errors: Sequence[vol.Invalid] = exc.errors
        except vol.Invalid as exc:
            errors = [exc]
        raise vol.MultipleInvalid([_naming_allowed(e, compiled) for e in errors])

    return check


def _naming_allowed(error: vol.Invalid, schema: vol.Schema) -> vol.Invalid:
    if str(error.msg) != "extra keys not allowed":
        return error
    allowed = _keys_at(schema, list(error.path)[:-1])
    if not allowed:
        return error
    return vol.Invalid(f"unknown key (allowed: {', '.join(allowed)})", path=list(error.path))
