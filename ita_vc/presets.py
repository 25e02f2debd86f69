"""Presets: named, git-tracked copies of params.yaml's run sections.

A preset holds the ``rule``, ``data``, ``backtest``, ``grid`` and ``validation`` sections of
params.yaml (a section params.yaml lacks is absent) in ``presets/{name}.json``::

    {"schema_version": 1, "name": ..., "created_at": "YYYY-MM-DDTHH:MM:SSZ",
     "source": "params.yaml" | <run id>, "values": {...}, "sha256": hash_canonical(values)}

:func:`apply_preset` writes the sections back into params.yaml (comments and untouched lines
kept) and records ``preset: {name, sha256}`` there; :func:`preset_ref` tells whether a params
mapping still holds the values of the preset it names. The ``preset:`` key is read by no
pipeline stage (dvc.yaml names its params keys one by one), so it changes no output and no
``config_hash``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ita_vc.backtest.params import PRESET_SECTIONS, preset_ref, preset_values
from ita_vc.catalog import load_catalog
from ita_vc.errors import (
    DataValidationError,
    IntegrityError,
    ItaVcError,
    PersistentStoreError,
    UsageError,
)
from ita_vc.pipeline.engine_pin import pinned_engine
from ita_vc.rules.model import RuleVersion
from ita_vc.rules.registry import RuleRegistry
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.atomic import AtomicWriteError, atomic_write_bytes
from ita_vc.utils.hashing import hash_canonical
from ita_vc.utils.mappings import flatten
from ita_vc.validation.params import check_params
from ita_vc.vcs.dvc import check_params_values
from ita_vc.yaml_read import YamlError, load_yaml_document, read_file_bytes
from ita_vc.yaml_rewrite import YamlEditError, dump_rt, load_rt, to_rt

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = [
    "PRESETS_DIR",
    "PRESET_SCHEMA_VERSION",
    "PRESET_SECTIONS",
    "AppliedPreset",
    "Preset",
    "PresetDiff",
    "apply_preset",
    "check_preset_name",
    "diff_presets",
    "list_presets",
    "load_preset",
    "preset_ref",
    "preset_relpath",
    "preset_values",
    "save_preset",
    "scan_presets",
    "sync_presets",
]

PRESET_SCHEMA_VERSION = 1
PRESETS_DIR = "presets"
"""The git-tracked folder of preset files (relative to the workspace root)."""
PARAMS_FILE = "params.yaml"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_KEYS = {"schema_version", "name", "created_at", "source", "values", "sha256"}
_MAX_PRESET_BYTES = 1_000_000


@dataclass(frozen=True)
class Preset:
    """One preset file's content (validated)."""

    name: str
    created_at: str
    source: str
    values: dict[str, Any]
    sha256: str
    file_path: str = field(default="")
    """The repo-relative path of its file (``presets/{name}.json``)."""

    def document(self) -> dict[str, Any]:
        """The JSON object its file holds."""
        return {
            "schema_version": PRESET_SCHEMA_VERSION,
            "name": self.name,
            "created_at": self.created_at,
            "source": self.source,
            "values": self.values,
            "sha256": self.sha256,
        }

    def ref(self) -> dict[str, str]:
        """``{"name", "sha256"}``: what params.yaml's ``preset:`` key records."""
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class PresetDiff:
    """Dotted keys (``backtest.fee_pct``) that differ between two presets' values."""

    changed: dict[str, tuple[object, object]]
    added: dict[str, object]
    removed: dict[str, object]

    @property
    def empty(self) -> bool:
        """True when both presets hold the same values."""
        return not (self.changed or self.added or self.removed)

    def to_json(self) -> dict[str, Any]:
        """The diff as plain JSON data."""
        return {
            "changed": {k: {"old": a, "new": b} for k, (a, b) in self.changed.items()},
            "added": self.added,
            "removed": self.removed,
        }


@dataclass(frozen=True)
class AppliedPreset:
    """What :func:`apply_preset` did (or, with ``dry_run``, would do)."""

    preset: Preset
    before: str
    """params.yaml's text before."""
    after: str
    """params.yaml's text after (written unless ``dry_run``)."""
    written: bool

    @property
    def changed(self) -> bool:
        """True when params.yaml's text changes."""
        return self.before != self.after


# --- names, paths, values ------------------------------------------------------------------


def check_preset_name(name: object) -> str:
    """``name`` when it is a preset name (``^[a-z0-9][a-z0-9_.-]{0,63}$``, no ``..``).

    Raises:
        UsageError: any other value (named in the message).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise UsageError(
            f"preset name {name!r}: use 1-64 characters of a-z, 0-9, '_', '.', '-', starting "
            "with a letter or digit, without '..'"
        )
    return name


def preset_relpath(name: str) -> str:
    """``presets/{name}.json`` (the name checked first).

    Raises:
        UsageError: not a preset name.
    """
    return PurePosixPath(PRESETS_DIR, f"{check_preset_name(name)}.json").as_posix()


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_values(workspace: Workspace, values: Mapping[str, object], where: str) -> None:
    """The checks ``ita-vc run`` makes of params.yaml, on a preset's values."""
    try:
        check_params(
            dict(values), load_catalog(workspace.root), engine=pinned_engine(workspace.root)
        )
    except DataValidationError as exc:
        raise DataValidationError(f"{where}: values are not valid params:\n{exc}") from exc


# --- reading -------------------------------------------------------------------------------


def _bad(rel: str, field_name: str, why: str) -> DataValidationError:
    return DataValidationError(f"{rel}: {field_name}: {why}")


def _parse_preset(rel: str, raw: bytes, stem: str) -> Preset:
    """A preset file's content, every field checked (not the values against params)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataValidationError(f"{rel}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataValidationError(f"{rel}: not a JSON object")
    missing, extra = sorted(_KEYS - set(data)), sorted(set(data) - _KEYS)
    if missing:
        raise _bad(rel, missing[0], "missing")
    if extra:
        raise _bad(rel, extra[0], "unknown key")
    if data["schema_version"] != PRESET_SCHEMA_VERSION:
        raise _bad(rel, "schema_version", f"{data['schema_version']!r} (expected 1)")
    if data["name"] != stem:
        raise _bad(rel, "name", f"{data['name']!r} is not the file's name {stem!r}")
    for key in ("created_at", "source", "sha256"):
        if not isinstance(data[key], str):
            raise _bad(rel, key, f"{data[key]!r} is not text")
    values = data["values"]
    if not isinstance(values, dict):
        raise _bad(rel, "values", "not an object")
    unknown = sorted(set(values) - set(PRESET_SECTIONS))
    if unknown:
        raise _bad(
            rel, f"values.{unknown[0]}", f"not a preset section ({', '.join(PRESET_SECTIONS)})"
        )
    try:
        actual = hash_canonical(values)
    except (TypeError, ValueError) as exc:
        raise _bad(rel, "values", str(exc)) from exc
    if actual != data["sha256"]:
        raise _bad(rel, "sha256", f"{data['sha256']} but the values hash to {actual}")
    return Preset(
        name=stem,
        created_at=data["created_at"],
        source=data["source"],
        values=values,
        sha256=actual,
        file_path=rel,
    )


def _read(workspace: Workspace, name: str) -> Preset:
    rel = preset_relpath(name)
    path = workspace.path(rel)
    if not path.exists():
        have = [p.name for p in scan_presets(workspace)[0]]
        raise UsageError(
            f"no preset {name!r} ({rel} does not exist)"
            + (f"; presets: {', '.join(have)}" if have else "; save one: `ita-vc preset save NAME`")
        )
    try:
        raw = read_file_bytes(path, max_bytes=_MAX_PRESET_BYTES)
    except YamlError as exc:
        raise DataValidationError(f"{rel}: {exc}") from exc
    return _parse_preset(rel, raw, name)


def load_preset(workspace: Workspace, name: str) -> Preset:
    """The preset ``presets/{name}.json``, checked whole: its fields, its sha256 and its values
    (the params checks ``ita-vc run`` makes).

    Raises:
        UsageError: a bad name, or no such preset.
        DataValidationError: a corrupt file (bad JSON, keys, schema_version, name, sha256 or
            values; the message names the file and the field).
    """
    preset = _read(workspace, name)
    _check_values(workspace, preset.values, preset.file_path)
    return preset


def scan_presets(workspace: Workspace) -> tuple[list[Preset], list[str]]:
    """Every readable preset (by name) and one problem line per preset file that is not.

    Values are not checked against params here (:func:`load_preset` does)."""
    folder = workspace.path(PRESETS_DIR)
    presets: list[Preset] = []
    problems: list[str] = []
    if not folder.is_dir():
        return presets, problems
    for path in sorted(folder.glob("*.json")):
        rel = f"{PRESETS_DIR}/{path.name}"
        try:
            check_preset_name(path.stem)
        except UsageError as exc:
            problems.append(f"{rel}: {exc}")
            continue
        try:
            raw = read_file_bytes(path, max_bytes=_MAX_PRESET_BYTES)
            presets.append(_parse_preset(rel, raw, path.stem))
        except YamlError as exc:
            problems.append(f"{rel}: {exc}")
        except DataValidationError as exc:
            problems.append(str(exc))
    return presets, problems


def list_presets(workspace: Workspace) -> list[Preset]:
    """Every preset of the workspace, by name.

    Raises:
        DataValidationError: a preset file is corrupt (each one named).
    """
    presets, problems = scan_presets(workspace)
    if problems:
        raise DataValidationError("\n".join(problems))
    return presets


def diff_presets(a: Preset, b: Preset) -> PresetDiff:
    """The dotted keys whose values differ from ``a`` to ``b`` (lists compare whole)."""
    old = flatten(a.values, lists=False)
    new = flatten(b.values, lists=False)
    return PresetDiff(
        changed={
            k: (old[k], new[k])
            for k in sorted(old.keys() & new.keys())
            if hash_canonical(old[k]) != hash_canonical(new[k])
        },
        added={k: new[k] for k in sorted(new.keys() - old.keys())},
        removed={k: old[k] for k in sorted(old.keys() - new.keys())},
    )


# --- writing -------------------------------------------------------------------------------


def _params_document(text: str, source: str = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml's data, with the DVC value checks ``ita-vc run`` makes."""
    try:
        doc = load_yaml_document(text, source, allow_aliases=True)
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise DataValidationError(f"{source}: must be a mapping of sections")
    check_params_values(doc)
    data: dict[str, Any] = doc.data
    return data


def _read_params(workspace: Workspace) -> str:
    path = workspace.path(PARAMS_FILE)
    try:
        return read_file_bytes(path).decode("utf-8")
    except (YamlError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{PARAMS_FILE}: {exc}") from exc


def _source_values(workspace: Workspace, from_run: str | None) -> tuple[str, dict[str, Any]]:
    if from_run is None:
        return PARAMS_FILE, preset_values(_params_document(_read_params(workspace)))
    from ita_vc.snapshot.capture import SnapshotStore  # lazy: the snapshot modules are heavy
    from ita_vc.snapshot.runs import resolve_run_id

    run_id = resolve_run_id(workspace, from_run)
    try:
        snapshot = SnapshotStore(workspace).load_snapshot(run_id)
    except ItaVcError as exc:
        if type(exc) is not ItaVcError:  # unreadable or not a snapshot: its own exit code
            raise
        raise UsageError(str(exc)) from exc  # no snapshot for that run
    params = snapshot.get("params")
    if not isinstance(params, dict):
        raise DataValidationError(f"run {run_id}: its snapshot records no params")
    return run_id, preset_values(params)


def save_preset(
    workspace: Workspace, name: str, *, from_run: str | None = None, force: bool = False
) -> Preset:
    """Save params.yaml's preset sections (or those of run ``from_run``'s snapshot: an id, a
    unique prefix or ``@latest``) as ``presets/{name}.json``.

    Raises:
        UsageError: a bad name, an unknown run, or the preset exists (without ``force``).
        DataValidationError: the values fail the params checks ``ita-vc run`` makes.
    """
    rel = preset_relpath(name)
    path = workspace.contained(rel)
    if path.exists() and not force:
        raise UsageError(f"preset {name!r} exists ({rel}); pass --force to replace it")
    source, values = _source_values(workspace, from_run)
    _check_values(workspace, values, source if from_run is None else f"run {source}")
    preset = Preset(
        name=name,
        created_at=_utc_now(),
        source=source,
        values=values,
        sha256=hash_canonical(values),
        file_path=rel,
    )
    body = json.dumps(preset.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_bytes(path, body.encode("utf-8"), overwrite=force)
    except AtomicWriteError as exc:
        raise UsageError(f"preset {name!r} exists ({rel}); pass --force to replace it") from exc
    _index_upsert(workspace, [preset])
    return preset


def _plain(node: object) -> object:
    """A round-trip node as plain JSON data (for comparison)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def _same(node: object, value: object) -> bool:
    try:
        return hash_canonical(_plain(node)) == hash_canonical(value)
    except (TypeError, ValueError):
        return False


def _merge(node: Any, value: Any, path: str) -> Any:
    """``value`` as a round-trip node, reusing ``node`` (and its comments) where it agrees."""
    if _same(node, value):
        return node
    if isinstance(node, Mapping) and isinstance(value, Mapping):
        for key in [k for k in node if k not in value]:
            del node[key]  # type: ignore[attr-defined]
        for key, item in value.items():
            where = f"{path}.{key}"
            node[key] = _merge(node[key], item, where) if key in node else _fresh(item, where)  # type: ignore[index]
        return node
    return _fresh(value, path)


def _fresh(value: Any, path: str) -> Any:
    """``value`` as a new round-trip node; ``rule.version`` always double-quoted (1.10
    unquoted would read as the float 1.1)."""
    if path == "rule.version" and isinstance(value, str):
        return DoubleQuotedScalarString(value)
    node = to_rt(value)
    if path == "rule" and isinstance(value, Mapping) and isinstance(value.get("version"), str):
        node["version"] = DoubleQuotedScalarString(value["version"])
    return node


def _render(text: str, preset: Preset) -> str:
    """params.yaml's text with the preset's sections and ``preset:`` key written."""
    try:
        doc = load_rt(text, PARAMS_FILE, allow_aliases=True) if text.strip() else to_rt({})
    except YamlEditError as exc:
        raise DataValidationError(f"{PARAMS_FILE}: {exc}") from exc
    if doc is None:  # comments only
        doc = to_rt({})
    if not isinstance(doc, Mapping):
        raise DataValidationError(f"{PARAMS_FILE}: must be a mapping of sections")
    for section in PRESET_SECTIONS:
        if section in preset.values:
            value = preset.values[section]
            new = _merge(doc[section], value, section) if section in doc else None
            doc[section] = _fresh(value, section) if new is None else new  # type: ignore[index]
        elif section in doc:
            del doc[section]  # type: ignore[attr-defined]
    ref = preset.ref()
    if "preset" not in doc or not _same(doc["preset"], ref):
        doc["preset"] = to_rt(ref)  # type: ignore[index]
    return dump_rt(doc)


def _check_inputs(workspace: Workspace, preset: Preset, params: Mapping[str, object]) -> None:
    """The rule version and the candles the preset names exist in the workspace."""
    parsed, _validation = check_params(
        dict(params), load_catalog(workspace.root), engine=pinned_engine(workspace.root)
    )
    where = preset.file_path
    if "rule" in preset.values and parsed.setup_id and parsed.version:
        registry = RuleRegistry(workspace)
        rel = registry.relpath(parsed.setup_id, RuleVersion.parse(parsed.version))
        if not workspace.path(rel).is_file():
            raise DataValidationError(
                f"{where}: values.rule: {parsed.setup_id} v{parsed.version} is not in the rule "
                f"registry ({rel} does not exist); create it (`ita-vc rule new "
                f"{parsed.setup_id}`) or save the preset again"
            )
    if "data" in preset.values and parsed.data.symbol:
        from ita_vc.candles.dataset import CandleStore  # lazy: imports pandas (~0.5 s)

        data = parsed.data
        candles = CandleStore(workspace)
        if not candles.exists(data.market, data.symbol, data.source_timeframe):
            rel = candles.relpath(data.market, data.symbol, data.source_timeframe)
            raise DataValidationError(
                f"{where}: values.data: no candles for {data.market} {data.symbol} "
                f"{data.source_timeframe} ({rel} does not exist); import them (`ita-vc data "
                f"import FILE --market {data.market} --symbol {data.symbol}`) or `dvc pull`"
            )


def apply_preset(workspace: Workspace, name: str, *, dry_run: bool = False) -> AppliedPreset:
    """Write preset ``name``'s sections into params.yaml (a section it lacks is removed; comments
    and untouched lines are kept) and record ``preset: {name, sha256}``, under the workspace
    lock. Nothing is written when anything fails, nor with ``dry_run``.

    Raises:
        UsageError: a bad name or no such preset.
        DataValidationError: a corrupt preset, values that fail the params checks, a rule
            version missing from the registry or candles missing from the workspace (the
            message names the preset file and the field).
        WorkspaceLockedError: another command holds the workspace lock.
    """
    preset = load_preset(workspace, name)
    with workspace.lock(purpose="ita-vc preset apply"):
        before = _read_params(workspace)
        _params_document(before)
        after = _render(before, preset)
        try:
            params = _params_document(after)
            _check_inputs(workspace, preset, params)
        except DataValidationError as exc:
            message = str(exc)
            if not message.startswith(preset.file_path):
                message = f"{preset.file_path}: applied to {PARAMS_FILE}:\n{message}"
            raise DataValidationError(message) from exc
        if preset_ref(params) != preset.ref():
            raise IntegrityError(
                f"{preset.file_path}: params.yaml would not hold the preset's values after "
                f"writing them (sha256 {hash_canonical(preset_values(params))}, expected "
                f"{preset.sha256}); nothing was written"
            )
        written = False
        if not dry_run and after != before:
            atomic_write_bytes(workspace.contained(PARAMS_FILE), after.encode("utf-8"))
            written = True
    return AppliedPreset(preset=preset, before=before, after=after, written=written)


# --- the index -----------------------------------------------------------------------------


def _row(preset: Preset) -> dict[str, object]:
    return {
        "name": preset.name,
        "file_path": preset.file_path,
        "sha256": preset.sha256,
        "created_at": preset.created_at,
        "source": preset.source,
        "values_json": json.dumps(preset.values, sort_keys=True),
    }


def _index_upsert(workspace: Workspace, presets: list[Preset]) -> None:
    with contextlib.suppress(PersistentStoreError):  # a cache: `index rebuild` refills it
        MetadataIndex(workspace.index_path).upsert_rows("presets", [_row(p) for p in presets])


def sync_presets(workspace: Workspace) -> int:
    """Replace the index table ``presets`` with the workspace's preset files (corrupt files
    are skipped); the number of rows written."""
    presets, _problems = scan_presets(workspace)
    return MetadataIndex(workspace.index_path).replace_rows("presets", [_row(p) for p in presets])
