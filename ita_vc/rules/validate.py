"""Validation of rule version files and lifecycle files, with file, field and line in messages.

Pure functions over bytes: the same code checks the working tree, git's index (the pre-commit
hook) and any commit (``rule check --against``). Nothing here imports dvc, pandas or gitpython,
so the hook stays fast.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

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
from ita_vc.utils.hashing import hash_canonical, is_hash
from ita_vc.yaml_read import MAX_BYTES, YamlError, load_yaml_document

if TYPE_CHECKING:
    from ita_vc.catalog import Catalog

__all__ = [
    "LIFECYCLE_FILENAME",
    "MAX_RULE_BYTES",
    "RULE_FIELDS",
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
_REQUIRED = ("schema_version", "setup_id", "version", "author", "created", "direction",
             "sizing", "targets", "params_hash")
RULE_FIELDS = (
    "schema_version", "setup_id", "version", "author", "created", "components", "indicators",
    "rules", "targets", "direction", "sizing", "params_hash",
)
_SIZING_KEYS = {
    "all_in": {},
    "fixed_quote": {"amount": "positive"},
    "strategy_compound": {"budget": "positive"},
    "strategy_compound_profit_lock": {"budget": "positive", "safe_profit_percent": "percent"},
}
_LIFECYCLE_ENTRY_KEYS = {"active", "deprecation_reason", "changed_at", "changed_by", "note"}


def check_setup_id(setup_id: object) -> str | None:
    """None if ``setup_id`` is valid, else the reason."""
    if not isinstance(setup_id, str):
        return f"must be a string, got {setup_id!r}"
    if len(setup_id) > SETUP_ID_MAX:
        return f"{setup_id!r} is {len(setup_id)} characters, the limit is {SETUP_ID_MAX}"
    if not SETUP_ID_PATTERN.fullmatch(setup_id):
        return (f"{setup_id!r} is not a valid setup id (letters, digits, '_', '.', '-', "
                "starting with a letter or digit; no '/', spaces or '..')")
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Collector:
    def __init__(self, path: str, index: Mapping[str, tuple[int, str | None]]) -> None:
        self.path = path
        self.index = index
        self.problems: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        line = self.index.get(field, (None, None))[0] if field else None
        if line is None and field:
            parent = field.rsplit(".", 1)[0]
            line = self.index.get(parent, (None, None))[0]
        self.problems.append(Problem(self.path, message, field, line))

    def raw(self, field: str) -> str | None:
        return self.index.get(field, (None, None))[1]


def _decode(raw: bytes, path: str, problems: list[Problem]) -> str | None:
    if len(raw) > MAX_RULE_BYTES:
        problems.append(Problem(path, f"file is {len(raw):,} bytes, the limit is "
                                      f"{MAX_RULE_BYTES:,}"))
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(path, "not valid UTF-8", line=line))
        return None


def _load(raw: bytes, path: str) -> tuple[Any, _Collector | None, list[Problem]]:
    """The document (composed once, under the limits, anchors and aliases refused) and a
    collector holding its key index; problems instead when it cannot be read."""
    problems: list[Problem] = []
    text = _decode(raw, path, problems)
    if text is None:
        return None, None, problems
    try:
        loaded = load_yaml_document(text, path)
    except YamlError as exc:
        problems.append(Problem(path, exc.problem, line=exc.line))
        return None, None, problems
    doc = loaded.data
    if not isinstance(doc, dict):
        problems.append(Problem(path, f"must be a YAML mapping, got {type(doc).__name__}"))
        return None, None, problems
    return doc, _Collector(path, loaded.index), problems


def _check_version_field(doc: Mapping[str, Any], c: _Collector) -> RuleVersion | None:
    value = doc.get("version")
    if isinstance(value, float | int) and not isinstance(value, bool):
        typed = c.raw("version") or repr(value)
        c.add("version", f"{typed} is a number to YAML (an unquoted 1.10 reads as 1.1); "
                         f'quote it: version: "{typed}"')
        return None
    try:
        return RuleVersion.parse(value)  # type: ignore[arg-type] # parse checks the type
    except ValueError as exc:
        c.add("version", str(exc))
        return None


def _check_targets(value: Any, c: _Collector) -> None:
    if not isinstance(value, Mapping):
        c.add("targets", "must be a mapping {tp_pct, sl_pct}")
        return
    for key in value:
        if key not in ("tp_pct", "sl_pct"):
            hint = f" (the seed's '{key}' is named '{key}_pct')" if key in ("tp", "sl") else ""
            c.add(f"targets.{key}", f"unknown key; targets has tp_pct and sl_pct{hint}")
    for key in ("tp_pct", "sl_pct"):
        item = value.get(key)
        if item is not None and not (_number(item) and 0 < item < 10_000):
            c.add(f"targets.{key}", f"must be a positive percent or null, got {item!r}")


def _check_sizing(value: Any, c: _Collector) -> None:
    if not isinstance(value, Mapping) or "mode" not in value:
        c.add("sizing", f"must be a mapping with a mode (one of {', '.join(SIZING_MODES)})")
        return
    mode = value["mode"]
    if not isinstance(mode, str) or mode not in _SIZING_KEYS:
        c.add("sizing.mode", f"unknown mode {mode!r} (one of {', '.join(SIZING_MODES)})")
        return
    wanted = _SIZING_KEYS[mode]
    for key in value:
        if key != "mode" and key not in wanted:
            c.add(f"sizing.{key}", f"not a parameter of sizing mode {mode}")
    for key, kind in wanted.items():
        item = value.get(key)
        if item is None:
            c.add(f"sizing.{key}", f"sizing mode {mode} needs {key}")
        elif not _number(item) or item <= 0 or (kind == "percent" and item > 100):
            bound = "a percent in (0, 100]" if kind == "percent" else "a positive number"
            c.add(f"sizing.{key}", f"must be {bound}, got {item!r}")


def _check_indicators(value: Any, c: _Collector, catalog: Catalog) -> None:
    if not isinstance(value, list):
        c.add("indicators", "must be a list of {name, params}")
        return
    for i, item in enumerate(value):
        where = f"indicators.{i}"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            c.add(where, "must be a mapping {name, params}")
            continue
        for key in item:
            if key not in ("name", "params"):
                c.add(f"{where}.{key}", "unknown key (an indicator has name and params)")
        spec = catalog.get(item["name"])
        if spec is None:
            known = ", ".join(catalog.indicators)
            c.add(f"{where}.name", f"unknown indicator {item['name']!r} (catalog: {known})")
            continue
        params = item.get("params") or {}
        if not isinstance(params, Mapping):
            c.add(f"{where}.params", "must be a mapping")
            continue
        for key, message in spec.check_params(params):
            c.add(f"{where}.params.{key}" if key else f"{where}.params", message)


def _check_canonical(doc: Mapping[str, Any], c: _Collector) -> bool:
    bad: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dt.date | dt.datetime | dt.time) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            bad.append(where)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    c.add(where, f"keys must be strings, got {key!r}")
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}.{i}")

    walk(param_fields(doc), "")
    for where in bad:
        c.add(where, "dates, times, NaN and .inf have no canonical form: quote them as strings")
    return not bad and not any(p.message.startswith("keys must be") for p in c.problems)


def hash_advice(setup_id: object, version: RuleVersion | None, path: str,
                committed: bool | None) -> str:
    """What to do about a ``params_hash`` that does not match the parameters: ``rule rehash``
    for a version never committed, a new version for a committed one (None: both cases)."""
    setup = setup_id if isinstance(setup_id, str) and not check_setup_id(setup_id) else "SETUP"
    tag = version.tag if version is not None else "vX.Y"
    rehash = f"recompute its hash with `ita-vc rule rehash {setup}@{tag}`"
    bump = (f"undo the edit (`git checkout HEAD -- {path}`) and put the change in a new "
            f"version with `ita-vc rule bump {setup}`")
    if committed is None:
        return (f"if this version was never committed, {rehash}; if it was, it is immutable: "
                f"{bump}")
    if committed:
        return f"{tag} of {setup} is committed and immutable: {bump}"
    return f"this version was never committed: {rehash}"


def parse_rule(  # noqa: PLR0912 - one branch per field
    raw: bytes, path: str, *, catalog: Catalog, rules_root: str | None = "rules",
    require_hash: bool = True, committed: bool | None = None,
) -> tuple[Rule | None, list[Problem]]:
    """Parse and validate a rule version file; returns the rule (if valid) and every problem.

    ``rules_root`` set: the file must live at ``<rules_root>/<setup_id>/v<X.Y>.yaml``.
    ``require_hash`` false (a rule file outside the registry): a missing ``params_hash`` is
    computed, a present one must still match. ``committed`` (when the caller knows whether
    the version is in HEAD) picks the advice of a wrong ``params_hash``: ``rule rehash`` for
    an uncommitted version, ``rule bump`` for a committed (immutable) one; None gives both.
    """
    doc, c, problems = _load(raw, path)
    if doc is None or c is None:
        return None, problems
    required = _REQUIRED if require_hash else ("setup_id", "version")
    for key in required:
        if key not in doc:
            c.add("", f"missing required field '{key}'")
    for key in doc:
        if key not in RULE_FIELDS:
            c.add(str(key), f"unknown field (a rule has: {', '.join(RULE_FIELDS)})")
    if "schema_version" in doc and doc["schema_version"] != SCHEMA_VERSION:
        c.add("schema_version", f"must be {SCHEMA_VERSION}, got {doc['schema_version']!r}")
    setup_id = doc.get("setup_id")
    if "setup_id" in doc and (reason := check_setup_id(setup_id)):
        c.add("setup_id", reason)
    version = _check_version_field(doc, c) if "version" in doc else None
    for key in ("author", "created"):
        if key in doc and not (isinstance(doc[key], str) and doc[key].strip()):
            if key == "created" and isinstance(doc[key], dt.date):
                doc[key] = doc[key].isoformat()
                continue
            c.add(key, f"must be a non-empty string, got {doc[key]!r}")
    created = doc.get("created")
    if isinstance(created, str):
        try:
            dt.date.fromisoformat(created[:10])
        except ValueError:
            c.add("created", f"must be an ISO date (YYYY-MM-DD), got {created!r}")
    if "components" in doc and not (
        isinstance(doc["components"], list) and all(isinstance(x, str) for x in doc["components"])
    ):
        c.add("components", "must be a list of names")
    if "rules" in doc and not isinstance(doc["rules"], Mapping):
        c.add("rules", "must be a mapping")
    if "direction" in doc and doc["direction"] not in DIRECTIONS:
        c.add("direction", f"must be one of {', '.join(DIRECTIONS)}, got {doc['direction']!r}")
    if "targets" in doc:
        _check_targets(doc["targets"], c)
    if "sizing" in doc:
        _check_sizing(doc["sizing"], c)
    if "indicators" in doc:
        _check_indicators(doc["indicators"], c, catalog)
    computed = compute_params_hash(doc) if _check_canonical(doc, c) else None
    stated = doc.get("params_hash")
    if stated is not None and not is_hash(stated):
        c.add("params_hash", f"must be 'sha256:<64 lowercase hex>', got {stated!r}")
    elif stated is not None and computed is not None and stated != computed:
        c.add("params_hash", f"is {stated} but the parameters hash to {computed}; "
                             + hash_advice(setup_id, version, path, committed))
    if rules_root is not None and isinstance(setup_id, str) and version is not None:
        expected = PurePosixPath(rules_root, setup_id, version.filename).as_posix()
        if path != expected:
            c.add("", f"location does not match the content: a rule with setup_id {setup_id!r} "
                      f"and version {str(version)!r} lives at {expected}")
    problems.extend(c.problems)
    if problems or version is None or computed is None:
        return None, problems
    return Rule(
        setup_id=str(setup_id), version=version, author=str(doc.get("author", "")),
        created=str(doc.get("created", "")), params_hash=str(stated or computed),
        params=param_fields(doc), schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
        path=path,
    ), problems


def parse_lifecycle(  # noqa: PLR0912 - one branch per field
    raw: bytes, path: str, *, setup_id: str,
    version_exists: Callable[[RuleVersion], bool] | None = None,
) -> tuple[dict[RuleVersion, LifecycleEntry], list[Problem]]:
    """Parse and validate ``rules/<setup_id>/lifecycle.yaml``.

    Checks: the setup id, each entry's fields, a reason for every deprecated version, no
    version both active and deprecated, at most one active version, and (with
    ``version_exists``) that every named version exists.
    """
    doc, c, problems = _load(raw, path)
    if doc is None or c is None:
        return {}, problems
    for key in doc:
        if key not in ("schema_version", "setup_id", "versions"):
            c.add(str(key), "unknown field (a lifecycle file has schema_version, setup_id, "
                            "versions)")
    if doc.get("setup_id") != setup_id:
        c.add("setup_id", f"must be {setup_id!r} (the folder name), got {doc.get('setup_id')!r}")
    versions = doc.get("versions") or {}
    entries: dict[RuleVersion, LifecycleEntry] = {}
    if not isinstance(versions, Mapping):
        c.add("versions", "must be a mapping of v<X.Y> -> {active, deprecation_reason, ...}")
        versions = {}
    for key, body in versions.items():
        where = f"versions.{key}"
        try:
            version = RuleVersion.parse(str(key))
        except ValueError as exc:
            c.add(where, str(exc))
            continue
        if not isinstance(body, Mapping):
            c.add(where, "must be a mapping {active, deprecation_reason, changed_at, changed_by}")
            continue
        for field in body:
            if field not in _LIFECYCLE_ENTRY_KEYS:
                c.add(f"{where}.{field}", f"unknown field (known: "
                                          f"{', '.join(sorted(_LIFECYCLE_ENTRY_KEYS))})")
        active = body.get("active", False)
        if not isinstance(active, bool):
            c.add(f"{where}.active", f"must be true or false, got {active!r}")
            active = False
        reason = body.get("deprecation_reason")
        if reason is not None and not (isinstance(reason, str) and reason.strip()):
            c.add(f"{where}.deprecation_reason", "must be a non-empty string or null")
            reason = None
        if active and reason:
            c.add(where, "a deprecated version cannot be active")
        for field in ("changed_at", "changed_by", "note"):
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                c.add(f"{where}.{field}", f"must be a string, got {value!r}")
        if version_exists is not None and not version_exists(version):
            c.add(where, f"names {version.tag}, which does not exist in {setup_id}")
        entries[version] = LifecycleEntry(
            active=active, deprecation_reason=reason,
            changed_at=body.get("changed_at") if isinstance(body.get("changed_at"), str) else None,
            changed_by=body.get("changed_by") if isinstance(body.get("changed_by"), str) else None,
            note=body.get("note") if isinstance(body.get("note"), str) else None,
        )
    active_versions = sorted(v.tag for v, e in entries.items() if e.active)
    if len(active_versions) > 1:
        c.add("versions", f"at most one active version per setup; active: "
                          f"{', '.join(active_versions)}")
    problems.extend(c.problems)
    return entries, problems
