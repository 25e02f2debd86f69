"""``configs/config.yaml``: loading, defaults and validation.

The file is optional key by key: a key left out takes its default from the embedded template
(``ita_vc/templates/config.yaml``), so a workspace created by an older ita-vc keeps working when
new keys appear. Unknown keys, wrong types and paths that leave the repository are errors that name
the file, the key and its line.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from ita_vc.errors import ConfigError
from ita_vc.yaml_read import YamlError, load_yaml_text, node_lines, read_text_file

__all__ = [
    "CONFIG_RELPATH",
    "SCHEMA_VERSION",
    "CandlesConfig",
    "Config",
    "PathsConfig",
    "StoreConfig",
    "default_config_text",
    "load_config",
    "parse_config",
]

CONFIG_RELPATH = "configs/config.yaml"
SCHEMA_VERSION = 1
_OPEN_MAPPINGS = {"store.kinds"}
_COMPRESSIONS = {"zstd", "snappy", "gzip", "lz4", "brotli", "none"}
_FORBIDDEN_TOPS = {".git", ".dvc"}


def default_config_text() -> str:
    """The embedded default ``configs/config.yaml`` (what ``ita-vc init`` writes)."""
    return resources.files("ita_vc.templates").joinpath("config.yaml").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class PathsConfig:
    """Repo-relative POSIX paths of the workspace layout."""

    data_root: str
    results_root: str
    provenance_root: str
    rules_root: str
    trash_root: str
    index_path: str
    logs_root: str


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Persistent Store settings."""

    parquet_compression: str
    kinds: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CandlesConfig:
    """Where canonical candles live and which markets exist."""

    layout: str
    markets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """A validated workspace configuration."""

    schema_version: int
    paths: PathsConfig
    store: StoreConfig
    candles: CandlesConfig
    raw: Mapping[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The merged configuration as plain data."""
        return copy.deepcopy(dict(self.raw))


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", type(None): "null"}
    return names.get(type(value), "a mapping" if isinstance(value, Mapping) else
                     type(value).__name__)


def _merge(  # noqa: PLR0912 - one branch per value kind
    defaults: Mapping[str, Any], user: Any, prefix: str, fail: Any
) -> dict[str, Any]:
    if not isinstance(user, Mapping):
        fail(prefix.rstrip(".") or "<document>", f"must be a mapping, got {_type_name(user)}")
    merged = copy.deepcopy(dict(defaults))
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            if prefix.rstrip(".") in _OPEN_MAPPINGS:
                merged[key] = value
                continue
            known = ", ".join(sorted(map(str, defaults)))
            fail(dotted, f"unknown key (known keys here: {known})")
        default = defaults[key]
        if isinstance(default, Mapping):
            if dotted in _OPEN_MAPPINGS:
                if not isinstance(value, Mapping):
                    fail(dotted, f"must be a mapping, got {_type_name(value)}")
                merged[key] = dict(value)
            else:
                merged[key] = _merge(default, value, dotted + ".", fail)
        elif isinstance(default, bool) or isinstance(value, bool):
            if type(value) is not type(default):
                fail(dotted, f"must be {_type_name(default)}, got {_type_name(value)}")
            merged[key] = value
        elif isinstance(default, float):
            if not isinstance(value, int | float):
                fail(dotted, f"must be a number, got {_type_name(value)}")
            merged[key] = float(value)
        elif type(value) is not type(default):
            fail(dotted, f"must be {_type_name(default)}, got {_type_name(value)}")
        else:
            merged[key] = value
    return merged


def _check_relpath(value: Any, dotted: str, fail: Any) -> PurePosixPath:
    if not isinstance(value, str) or not value.strip():
        fail(dotted, "must be a non-empty relative path")
    if "\\" in value:
        fail(dotted, f"use '/' as the separator: {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or (len(value) > 1 and value[1] == ":"):
        fail(dotted, f"must be relative to the repository, got absolute {value!r}")
    parts = [p for p in path.parts if p != "."]
    if ".." in parts:
        fail(dotted, f"must not leave the repository ('..' in {value!r})")
    if not parts:
        fail(dotted, f"must name a folder below the repository root, got {value!r}")
    if parts[0] in _FORBIDDEN_TOPS:
        fail(dotted, f"must not point inside {parts[0]}/ ({value!r})")
    return PurePosixPath(*parts)


def _inside(child: PurePosixPath, parent: PurePosixPath) -> bool:
    return child == parent or parent in child.parents


def _validate_layout(merged: dict[str, Any], fail: Any) -> None:  # noqa: PLR0912
    paths = {
        key: _check_relpath(value, f"paths.{key}", fail) for key, value in merged["paths"].items()
    }
    for key, value in paths.items():
        merged["paths"][key] = value.as_posix()
    data = paths["data_root"]
    for key in ("results_root", "provenance_root"):
        if _inside(paths[key], data) or _inside(data, paths[key]):
            fail(
                f"paths.{key}",
                f"{paths[key]} overlaps data_root {data}: DVC forbids pipeline outputs "
                "inside a tracked directory, keep them apart",
            )
    for key in ("trash_root", "index_path", "logs_root"):
        for tracked in ("data_root", "results_root", "provenance_root", "rules_root"):
            if _inside(paths[key], paths[tracked]):
                fail(f"paths.{key}", f"{paths[key]} must not be inside {tracked} {paths[tracked]}")
    kinds = merged["store"]["kinds"]
    if not kinds:
        fail("store.kinds", "must name at least one artifact kind")
    # the purge reports of `ita-vc gc` always have a home (beside the index, git-ignored)
    kinds.setdefault("retention", (PurePosixPath(merged["paths"]["index_path"]).parent
                                   / "retention").as_posix())
    for kind, folder in kinds.items():
        if not isinstance(kind, str) or not kind.isidentifier():
            fail(f"store.kinds.{kind}", "kind names are identifiers (letters, digits, _)")
        kinds[kind] = _check_relpath(folder, f"store.kinds.{kind}", fail).as_posix()
    compression = merged["store"]["parquet_compression"]
    if compression not in _COMPRESSIONS:
        fail("store.parquet_compression", f"must be one of {sorted(_COMPRESSIONS)}")
    if "candles" not in kinds:
        fail("store.kinds", "needs a 'candles' kind (where canonical candles are stored)")
    layout = merged["candles"]["layout"]
    missing = [p for p in ("{market}", "{symbol}", "{timeframe}") if p not in layout]
    if missing or not layout.endswith(".parquet") or layout.startswith("/") or ".." in layout:
        fail("candles.layout", "must be a relative path ending in .parquet that uses "
             f"{{market}}, {{symbol}} and {{timeframe}} (missing: {', '.join(missing) or '-'})")
    markets = merged["candles"]["markets"]
    if not markets or not all(isinstance(m, str) and m.strip() for m in markets):
        fail("candles.markets", "must be a non-empty list of market names")


def parse_config(text: str, source: str = CONFIG_RELPATH) -> Config:
    """Validate config text against the defaults and return the merged :class:`Config`.

    Raises:
        ConfigError: invalid YAML, unknown keys, wrong types, or paths leaving the repository.
    """
    lines = node_lines(text)

    def fail(dotted: str, message: str) -> None:
        line = lines.get(dotted)
        where = f"{source}:{line}" if line else source
        raise ConfigError(f"{where}: {dotted}: {message}")

    try:
        user = load_yaml_text(text, source)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    defaults = load_yaml_text(default_config_text(), "<embedded defaults>")
    merged = _merge(defaults, {} if user is None else user, "", fail)
    if merged["schema_version"] != SCHEMA_VERSION:
        fail("schema_version", f"unsupported version {merged['schema_version']} "
             f"(this ita-vc reads {SCHEMA_VERSION})")
    _validate_layout(merged, fail)
    return Config(
        schema_version=merged["schema_version"],
        paths=PathsConfig(**merged["paths"]),
        store=StoreConfig(
            parquet_compression=merged["store"]["parquet_compression"],
            kinds=dict(merged["store"]["kinds"]),
        ),
        candles=CandlesConfig(
            layout=merged["candles"]["layout"], markets=tuple(merged["candles"]["markets"])
        ),
        raw=merged,
    )


def load_config(root: str | Path) -> Config:
    """Load ``configs/config.yaml`` below ``root``.

    Raises:
        ConfigError: the file is unreadable or invalid.
    """
    path = Path(root) / CONFIG_RELPATH
    try:
        text = read_text_file(path, max_bytes=1 << 20)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    return parse_config(text, CONFIG_RELPATH)
