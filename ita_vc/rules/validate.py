"""Validation of rule version files and lifecycle files, with file, field and line in messages.

Pure functions over bytes: the same code checks the working tree, git's index (the pre-commit
hook) and any commit (``rule check --against``). Nothing here imports dvc, pandas or gitpython,
so the hook stays fast.

Each file's shape (types, required and optional fields, bounds, enums, unknown keys refused) is
declared once as an :mod:`ita_vc.schema` schema (:data:`RULE_SCHEMA`, :data:`LIFECYCLE_SCHEMA`);
the cross-field rules (the version's float trap, indicator parameters against the catalog,
per-mode sizing fields, canonical values, ``params_hash``, the file's location, lifecycle
consistency) are small named checks run after it, adding to the same
:class:`~ita_vc.schema.Problems`. Every problem is reported, in file order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard

import voluptuous as vol

from ita_vc.rules.model import (
    DIRECTIONS,
    HASH_EXCLUDED_FIELDS,
    SETUP_ID_MAX,
    SETUP_ID_PATTERN,
    SIZING_MODES,
    LifecycleEntry,
    Problem,
    Rule,
    RuleVersion,
)
from ita_vc.schema import (
    Invalid,
    Problems,
    boolean,
    mapping_of,
    sequence_of,
    strict,
    text,
    type_name,
)
from ita_vc.utils.hashing import hash_canonical, is_hash
from ita_vc.yaml_read import MAX_BYTES, YamlError, load_yaml_document

if TYPE_CHECKING:
    from ita_vc.catalog import Catalog

__all__ = [
    "LIFECYCLE_FILENAME",
    "LIFECYCLE_SCHEMA",
    "MAX_RULE_BYTES",
    "RULE_FIELDS",
    "RULE_SCHEMA",
    "SCHEMA_VERSION",
    "check_setup_id",
    "compute_params_hash",
    "hash_advice",
    "param_fields",
    "parse_lifecycle",
    "parse_rule",
]

MAX_RULE_BYTES = MAX_BYTES
LIFECYCLE_FILENAME = "lifecycle.yaml"
SCHEMA_VERSION = 1
_REQUIRED = (
    "schema_version",
    "setup_id",
    "version",
    "author",
    "created",
    "direction",
    "sizing",
    "targets",
    "params_hash",
)
RULE_FIELDS = (
    "schema_version",
    "setup_id",
    "version",
    "author",
    "created",
    "components",
    "indicators",
    "rules",
    "targets",
    "direction",
    "sizing",
    "params_hash",
)
_SIZING_KEYS = {
    "all_in": {},
    "fixed_quote": {"amount": "positive"},
    "strategy_compound": {"budget": "positive"},
    "strategy_compound_profit_lock": {"budget": "positive", "safe_profit_percent": "percent"},
}
_SEED_TARGET_NAMES = {"tp": "tp_pct", "sl": "sl_pct"}


def check_setup_id(setup_id: object) -> str | None:
    """None if ``setup_id`` is valid, else the reason."""
    if not isinstance(setup_id, str):
        return f"must be a string, got {setup_id!r}"
    if len(setup_id) > SETUP_ID_MAX:
        return f"{setup_id!r} is {len(setup_id)} characters, the limit is {SETUP_ID_MAX}"
    if not SETUP_ID_PATTERN.fullmatch(setup_id):
        return (
            f"{setup_id!r} is not a valid setup id (letters, digits, '_', '.', '-', "
            "starting with a letter or digit; no '/', spaces or '..')"
        )
    if ".." in setup_id:
        return f"{setup_id!r} may not contain '..'"
    return None


def param_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter fields of a rule document: everything but identity and metadata."""
    return {k: v for k, v in doc.items() if k not in HASH_EXCLUDED_FIELDS}


def compute_params_hash(doc: Mapping[str, Any]) -> str:
    """``sha256:`` of the canonical JSON of the document's parameter fields.

    Raises:
        TypeError, ValueError: a parameter value canonical JSON has no form for.
    """
    return hash_canonical(param_fields(doc))


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- field validators (each raises Invalid with a message quoting the value) -----------------


def _anything(value: object) -> object:
    """Any value: the field is checked by a named check after the schema."""
    return value


def _schema_version(value: object) -> object:
    if isinstance(value, bool) or value != SCHEMA_VERSION:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise Invalid(f"must be {SCHEMA_VERSION}, got {shown}")
    return value


def _setup_id(value: object) -> object:
    if reason := check_setup_id(value):
        raise Invalid(reason)
    return value


def _nonempty_string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"must be a non-empty string, got {value!r}")
    return value


def _created(value: object) -> str:
    """A non-empty ISO date string; a YAML date is taken as its ISO text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    created = _nonempty_string(value)
    try:
        dt.date.fromisoformat(created[:10])
    except ValueError:
        raise Invalid(f"must be an ISO date (YYYY-MM-DD), got {created!r}") from None
    return created


def _mapping(value: object) -> object:
    if not isinstance(value, Mapping):
        raise Invalid(f"must be a mapping, got {value!r}")
    return value


def _mapping_or_empty(value: object) -> object:
    """A mapping; an empty value (null, ``[]``, 0) stands for ``{}``."""
    if value and not isinstance(value, Mapping):
        raise Invalid(f"must be a mapping, got {value!r}")
    return value


def _direction(value: object) -> object:
    if value not in DIRECTIONS:
        raise Invalid(f"must be one of {', '.join(DIRECTIONS)}, got {value!r}")
    return value


def _target_pct(value: object) -> object:
    if value is not None and not (_number(value) and 0 < value < 10_000):
        raise Invalid(f"must be a positive percent or null, got {value!r}")
    return value


def _sizing_mode(value: object) -> object:
    if not isinstance(value, str) or value not in _SIZING_KEYS:
        raise Invalid(f"unknown mode {value!r} (one of {', '.join(SIZING_MODES)})")
    return value


def _params_hash(value: object) -> object:
    if value is not None and not is_hash(value):
        raise Invalid(f"must be 'sha256:<64 lowercase hex>', got {value!r}")
    return value


def _string_or_null(value: object) -> object:
    if value is not None and not isinstance(value, str):
        raise Invalid(f"must be a string, got {value!r}")
    return value


def _reason(value: object) -> object:
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise Invalid("must be a non-empty string or null")
    return value


def _version_key(value: object) -> RuleVersion:
    try:
        return RuleVersion.parse(str(value))
    except ValueError as exc:
        raise Invalid(str(exc)) from None


# --- the shapes, declared once ----------------------------------------------------------------


def _closed(
    fields: Mapping[Any, Any],
    *,
    renamed: Mapping[str, str] | None = None,
) -> vol.Schema:
    """A strict mapping whose unknown keys are reported with the allowed ones, also where the
    mapping sits in a list or a free mapping (an indicator, a lifecycle entry); a ``renamed``
    key (an old name) says what it is called now."""
    allowed = ", ".join(sorted(str(getattr(key, "schema", key)) for key in fields))

    def unknown(hint: str = "") -> Callable[[object], NoReturn]:
        def refuse(_value: object) -> NoReturn:
            raise Invalid(f"unknown key (allowed: {allowed}){hint}")

        return refuse

    old_names = {
        vol.Optional(old): unknown(f"; the seed's '{old}' is named '{new}'")
        for old, new in (renamed or {}).items()
    }
    return strict({**fields, **old_names, vol.Extra: unknown()})


_INDICATOR = _closed(
    {
        vol.Required("name"): text(nonempty=False, what="an indicator name"),
        vol.Optional("params"): _mapping_or_empty,
    }
)
_RULE_FIELD_SCHEMAS: dict[str, object] = {
    "schema_version": _schema_version,
    "setup_id": _setup_id,
    "version": _anything,  # the float trap needs the raw text: _check_version
    "author": _nonempty_string,
    "created": _created,
    "components": sequence_of(text(nonempty=False, what="a name")),
    "indicators": sequence_of(_INDICATOR),
    "rules": _mapping,
    "targets": _closed(
        {vol.Optional("tp_pct"): _target_pct, vol.Optional("sl_pct"): _target_pct},
        renamed=_SEED_TARGET_NAMES,
    ),
    "direction": _direction,
    # the parameters each mode takes: _check_sizing_fields
    "sizing": vol.Schema(
        {vol.Required("mode", msg=f"is required (one of {', '.join(SIZING_MODES)})"): _sizing_mode},
        extra=vol.ALLOW_EXTRA,
    ),
    "params_hash": _params_hash,
}


def _rule_schema(required: tuple[str, ...]) -> vol.Schema:
    return strict(
        {
            (
                vol.Required(name, msg=f"missing required field '{name}'")
                if name in required
                else vol.Optional(name)
            ): _RULE_FIELD_SCHEMAS[name]
            for name in RULE_FIELDS
        }
    )


RULE_SCHEMA = _rule_schema(_REQUIRED)
"""A rule version file in the registry (every identity field and ``params_hash`` required)."""
_LOOSE_RULE_SCHEMA = _rule_schema(("setup_id", "version"))  # a rule file outside the registry

_LIFECYCLE_ENTRY = _closed(
    {
        vol.Optional("active"): boolean(),
        vol.Optional("deprecation_reason"): _reason,
        vol.Optional("changed_at"): _string_or_null,
        vol.Optional("changed_by"): _string_or_null,
        vol.Optional("note"): _string_or_null,
    }
)
LIFECYCLE_SCHEMA = strict(
    {
        vol.Optional("schema_version"): _schema_version,
        vol.Optional("setup_id"): _anything,  # must be the folder's name: _check_lifecycle_setup
        vol.Optional("versions"): mapping_of(_version_key, _LIFECYCLE_ENTRY),
    }
)
"""``rules/<setup_id>/lifecycle.yaml``: ``versions`` maps ``v<X.Y>`` to an entry."""


# --- reading ----------------------------------------------------------------------------------


def _decode(raw: bytes, problems: Problems) -> str | None:
    if len(raw) > MAX_RULE_BYTES:
        problems.add("", f"file is {len(raw):,} bytes, the limit is {MAX_RULE_BYTES:,}")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add("", "not valid UTF-8", line=raw[: exc.start].count(b"\n") + 1)
        return None


def _load(raw: bytes, path: str) -> tuple[dict[Any, Any] | None, Problems]:
    """The document (composed once, under the limits, anchors and aliases refused) and its
    problems, which know the document's key index; no document when it cannot be read."""
    problems = Problems(path)
    text_ = _decode(raw, problems)
    if text_ is None:
        return None, problems
    try:
        loaded = load_yaml_document(text_, path)
    except YamlError as exc:
        problems.add("", exc.problem, line=exc.line)
        return None, problems
    if not isinstance(loaded.data, dict):
        got = "an empty file" if loaded.data is None else type_name(loaded.data)
        problems.add("", f"must be a YAML mapping of fields, got {got}", line=1)
        return None, problems
    return loaded.data, Problems(path, loaded.index)


# --- named cross-field checks of a rule -------------------------------------------------------


def _check_version(doc: Mapping[str, Any], problems: Problems) -> RuleVersion | None:
    """The version, parsed; an unquoted number is the float trap (``1.10`` reads as 1.1)."""
    if "version" not in doc:
        return None
    value = doc["version"]
    if _number(value):
        typed = problems.raw("version") or repr(value)
        problems.add(
            "version",
            f"{typed} is a number to YAML (an unquoted 1.10 reads as 1.1); "
            f'quote it: version: "{typed}"',
        )
        return None
    try:
        return RuleVersion.parse(value)
    except ValueError as exc:
        problems.add("version", str(exc))
        return None


def _check_sizing_fields(doc: Mapping[str, Any], problems: Problems) -> None:
    """Each sizing mode's own parameters: present, known, positive (a percent in (0, 100])."""
    sizing = doc.get("sizing")
    if not isinstance(sizing, Mapping):
        return  # the schema reported it
    mode = sizing.get("mode")
    if not isinstance(mode, str) or mode not in _SIZING_KEYS:
        return  # the schema reported it
    wanted = _SIZING_KEYS[mode]
    for key in sizing:
        if key != "mode" and key not in wanted:
            problems.add(f"sizing.{key}", f"not a parameter of sizing mode {mode}")
    for key, kind in wanted.items():
        if (reason := _sizing_value(mode, key, kind, sizing.get(key))) is not None:
            problems.add(f"sizing.{key}", reason)


def _sizing_value(mode: str, key: str, kind: str, item: object) -> str | None:
    """Why a sizing parameter's value is wrong (None: it is right)."""
    if item is None:
        return f"sizing mode {mode} needs {key}"
    if not _number(item) or item <= 0 or (kind == "percent" and item > 100):
        bound = "a percent in (0, 100]" if kind == "percent" else "a positive number"
        return f"must be {bound}, got {item!r}"
    return None


def _check_indicator_params(doc: Mapping[str, Any], problems: Problems, catalog: Catalog) -> None:
    """Each indicator is in the catalog, with parameters inside its bounds and constraints."""
    indicators = doc.get("indicators")
    if not isinstance(indicators, list):
        return
    for i, item in enumerate(indicators):
        where = f"indicators.{i}"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue  # the schema reported it
        spec = catalog.get(item["name"])
        if spec is None:
            known = ", ".join(catalog.indicators)
            problems.add(f"{where}.name", f"unknown indicator {item['name']!r} (catalog: {known})")
            continue
        params = item.get("params") or {}
        if isinstance(params, Mapping):
            for key, message in spec.check_params(params):
                problems.add(f"{where}.params.{key}" if key else f"{where}.params", message)


def _check_canonical(doc: Mapping[str, Any], problems: Problems) -> bool:
    """True when every parameter value has a canonical JSON form (what params_hash hashes)."""
    found = len(problems)

    def walk(value: object, where: str) -> None:
        if isinstance(value, dt.date | dt.datetime | dt.time) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            problems.add(
                where, "dates, times, NaN and .inf have no canonical form: quote them as strings"
            )
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.add(where, f"keys must be strings, got {key!r}")
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}.{i}")

    walk(param_fields(doc), "")
    return len(problems) == found


def hash_advice(
    setup_id: object, version: RuleVersion | None, path: str, committed: bool | None
) -> str:
    """What to do about a ``params_hash`` that does not match the parameters: ``rule rehash``
    for a version never committed, a new version for a committed one (None: both cases)."""
    setup = setup_id if isinstance(setup_id, str) and not check_setup_id(setup_id) else "SETUP"
    tag = version.tag if version is not None else "vX.Y"
    rehash = f"recompute its hash with `ita-vc rule rehash {setup}@{tag}`"
    bump = (
        f"undo the edit (`git checkout HEAD -- {path}`) and put the change in a new "
        f"version with `ita-vc rule bump {setup}`"
    )
    if committed is None:
        return f"if this version was never committed, {rehash}; if it was, it is immutable: {bump}"
    if committed:
        return f"{tag} of {setup} is committed and immutable: {bump}"
    return f"this version was never committed: {rehash}"


def _check_params_hash(
    doc: Mapping[str, Any],
    computed: str | None,
    version: RuleVersion | None,
    problems: Problems,
    committed: bool | None,
) -> None:
    """A stated ``params_hash`` is the hash of the parameters (else: how to fix it)."""
    stated = doc.get("params_hash")
    if is_hash(stated) and computed is not None and stated != computed:
        advice = hash_advice(doc.get("setup_id"), version, problems.source, committed)
        problems.add("params_hash", f"is {stated} but the parameters hash to {computed}; " + advice)


def _check_location(
    doc: Mapping[str, Any], version: RuleVersion | None, problems: Problems, rules_root: str | None
) -> None:
    """In the registry, the file lives at ``<rules_root>/<setup_id>/v<X.Y>.yaml``."""
    setup_id = doc.get("setup_id")
    if rules_root is None or not isinstance(setup_id, str) or version is None:
        return
    expected = PurePosixPath(rules_root, setup_id, version.filename).as_posix()
    if problems.source != expected:
        problems.add(
            "",
            f"location does not match the content: a rule with setup_id "
            f"{setup_id!r} and version {str(version)!r} lives at {expected}",
        )


def parse_rule(
    raw: bytes,
    path: str,
    *,
    catalog: Catalog,
    rules_root: str | None = "rules",
    require_hash: bool = True,
    committed: bool | None = None,
) -> tuple[Rule | None, list[Problem]]:
    """Parse and validate a rule version file; returns the rule (if valid) and every problem.

    ``rules_root`` set: the file must live at ``<rules_root>/<setup_id>/v<X.Y>.yaml``.
    ``require_hash`` false (a rule file outside the registry): a missing ``params_hash`` is
    computed, a present one must still match. ``committed`` (when the caller knows whether
    the version is in HEAD) picks the advice of a wrong ``params_hash``: ``rule rehash`` for
    an uncommitted version, ``rule bump`` for a committed (immutable) one; None gives both.
    """
    doc, problems = _load(raw, path)
    if doc is None:
        return None, problems.sorted()
    valid = problems.check(RULE_SCHEMA if require_hash else _LOOSE_RULE_SCHEMA, doc)
    version = _check_version(doc, problems)
    _check_sizing_fields(doc, problems)
    _check_indicator_params(doc, problems, catalog)
    computed = compute_params_hash(doc) if _check_canonical(doc, problems) else None
    _check_params_hash(doc, computed, version, problems, committed)
    _check_location(doc, version, problems, rules_root)
    if problems or valid is None or version is None or computed is None:
        return None, problems.sorted()
    return Rule(
        setup_id=str(doc["setup_id"]),
        version=version,
        author=str(valid.get("author", "")),
        created=str(valid.get("created", "")),
        params_hash=str(doc.get("params_hash") or computed),
        params=param_fields(doc),
        schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
        path=path,
    ), []


# --- named cross-field checks of a lifecycle file ---------------------------------------------


def _lifecycle_entries(doc: Mapping[str, Any]) -> list[tuple[str, RuleVersion, LifecycleEntry]]:
    """``(key, version, entry)`` of every entry with a version key and a mapping body; a bad
    field reads as its default (the schema reported it)."""
    versions = doc.get("versions") or {}
    if not isinstance(versions, Mapping):
        return []
    entries: list[tuple[str, RuleVersion, LifecycleEntry]] = []
    for key, body in versions.items():
        try:
            version = RuleVersion.parse(str(key))
        except ValueError:
            continue
        if not isinstance(body, Mapping):
            continue

        def string(field: str, body: Mapping[Any, Any] = body) -> str | None:
            value = body.get(field)
            return value if isinstance(value, str) else None

        active = body.get("active", False)
        reason = string("deprecation_reason")
        entries.append(
            (
                str(key),
                version,
                LifecycleEntry(
                    active=active if isinstance(active, bool) else False,
                    deprecation_reason=reason if reason and reason.strip() else None,
                    changed_at=string("changed_at"),
                    changed_by=string("changed_by"),
                    note=string("note"),
                ),
            )
        )
    return entries


def _check_lifecycle_setup(doc: Mapping[str, Any], setup_id: str, problems: Problems) -> None:
    if doc.get("setup_id") != setup_id:
        problems.add(
            "setup_id", f"must be {setup_id!r} (the folder name), got {doc.get('setup_id')!r}"
        )


def _check_lifecycle_entries(
    entries: list[tuple[str, RuleVersion, LifecycleEntry]],
    setup_id: str,
    problems: Problems,
    version_exists: Callable[[RuleVersion], bool] | None,
) -> None:
    """A deprecated version is not active; every named version exists; one active at most."""
    for key, version, entry in entries:
        if entry.active and entry.deprecation_reason:
            problems.add(f"versions.{key}", "a deprecated version cannot be active")
        if version_exists is not None and not version_exists(version):
            problems.add(
                f"versions.{key}", f"names {version.tag}, which does not exist in {setup_id}"
            )
    final = {version: entry for _key, version, entry in entries}  # a repeated version: the last
    active_versions = sorted(v.tag for v, e in final.items() if e.active)
    if len(active_versions) > 1:
        problems.add(
            "versions",
            f"at most one active version per setup; active: {', '.join(active_versions)}",
        )


def parse_lifecycle(
    raw: bytes,
    path: str,
    *,
    setup_id: str,
    version_exists: Callable[[RuleVersion], bool] | None = None,
) -> tuple[dict[RuleVersion, LifecycleEntry], list[Problem]]:
    """Parse and validate ``rules/<setup_id>/lifecycle.yaml``.

    Checks: the setup id, each entry's fields, a reason for every deprecated version, no
    version both active and deprecated, at most one active version, and (with
    ``version_exists``) that every named version exists.
    """
    doc, problems = _load(raw, path)
    if doc is None:
        return {}, problems.sorted()
    problems.check(
        LIFECYCLE_SCHEMA,
        {**doc, "versions": {} if doc.get("versions") is None else doc["versions"]},
    )
    _check_lifecycle_setup(doc, setup_id, problems)
    entries = _lifecycle_entries(doc)
    _check_lifecycle_entries(entries, setup_id, problems, version_exists)
    return {version: entry for _key, version, entry in entries}, problems.sorted()
