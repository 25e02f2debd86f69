"""``configs/config.yaml``: loading, defaults and validation.

The file is optional key by key: a key left out takes its default from the embedded template
(``ita_vc/templates/config.yaml``), so a workspace created by an older ita-vc keeps working when
new keys appear. The file's shape is declared once (:data:`SCHEMA`, on :mod:`ita_vc.schema`);
path overlaps and the artifact kinds are named checks run after it. Unknown keys, wrong types and
paths that leave the repository are errors that name the file, the key and its line, all of them
at once.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import voluptuous as vol

from ita_vc.errors import ConfigError
from ita_vc.schema import (
    Invalid,
    Problems,
    choice,
    integer,
    mapping_of,
    sequence_of,
    strict,
    text,
    type_name,
)
from ita_vc.yaml_read import YamlError, load_yaml_document, load_yaml_text, read_text_file

__all__ = [
    "CONFIG_RELPATH",
    "SCHEMA",
    "SCHEMA_VERSION",
    "CacheConfig",
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
_COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")
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
    cache_root: str = ".ita/cache"
    """The feature cache (``<cache_root>/features/``): local, git-ignored, rebuildable."""


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
class CacheConfig:
    """The feature cache (docs/cache.md): on or off, and its size budget (LRU eviction)."""

    enabled: bool = True
    max_bytes: int = 1 << 30


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """``jobs:`` - the job queue (docs/jobs.md; seed 003's ``backtest.jobs.*`` keys)."""

    enabled: bool = True
    url: str | None = None
    """None: ``.ita/jobs.sqlite``; else ``postgresql://user@host:port/database``, never with a
    password (it comes from ``PGPASSWORD``, ``~/.pgpass`` or ``.ita/jobs.local.yaml``)."""
    top_k_persisted_default: int = 500
    max_active_jobs: int = 2
    max_attempts: int = 3
    claim_poll_seconds: float = 1.0
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Config:
    """A validated workspace configuration."""

    schema_version: int
    paths: PathsConfig
    store: StoreConfig
    candles: CandlesConfig
    raw: Mapping[str, Any] = field(repr=False)
    cache: CacheConfig = field(default_factory=CacheConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)

    def to_dict(self) -> dict[str, Any]:
        """The merged configuration as plain data."""
        return copy.deepcopy(dict(self.raw))


def _relpath(value: object) -> str:
    """A repo-relative POSIX path (normalised: no ``.`` parts) that stays in the repository."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"must be a non-empty relative path, got {value!r} ({type_name(value)})")
    if "\\" in value:
        raise Invalid(f"use '/' as the separator: {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or (len(value) > 1 and value[1] == ":"):
        raise Invalid(f"must be relative to the repository, got absolute {value!r}")
    parts = [p for p in path.parts if p != "."]
    if ".." in parts:
        raise Invalid(f"must not leave the repository ('..' in {value!r})")
    if not parts:
        raise Invalid(f"must name a folder below the repository root, got {value!r}")
    if parts[0] in _FORBIDDEN_TOPS:
        raise Invalid(f"must not point inside {parts[0]}/ ({value!r})")
    return PurePosixPath(*parts).as_posix()


def _kind_name(value: object) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise Invalid(f"kind names are identifiers (letters, digits, _), got {value!r}")
    return value


def _layout(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {value!r} ({type_name(value)})")
    missing = [p for p in ("{market}", "{symbol}", "{timeframe}") if p not in value]
    if missing or not value.endswith(".parquet") or value.startswith("/") or ".." in value:
        raise Invalid(
            "must be a relative path ending in .parquet that uses {market}, {symbol} "
            f"and {{timeframe}} (missing: {', '.join(missing) or '-'}), got {value!r}"
        )
    return value


def _markets(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise Invalid(
            f"must be a non-empty list of market names, got {value!r} ({type_name(value)})"
        )
    markets: list[str] = sequence_of(text(what="a market name"))(value)
    return markets


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {value!r} ({type_name(value)})")
    return value


def _max_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"must be a whole number of bytes >= 0, got {value!r} ({type_name(value)})")
    return value


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"must be a whole number >= 1, got {value!r} ({type_name(value)})")
    return value


def _seconds(low: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= 86_400
        ):
            raise Invalid(
                f"must be a number of seconds >= {low:g} and <= 86400, got {value!r} "
                f"({type_name(value)})"
            )
        return float(value)

    return check


def _jobs_url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("postgresql://", "postgres://")):
        raise Invalid(
            "must be postgresql://user@host:port/database (or null for .ita/jobs.sqlite), "
            f"got {value!r}"
        )
    if re.search(r"://[^/@]*:[^/@]*@", value) or "password=" in value:
        raise Invalid(
            "must not hold a password (this file is committed): set PGPASSWORD, use "
            "~/.pgpass, or put the whole URL in .ita/jobs.local.yaml (url: ...)"
        )
    return value


def _schema_version(value: object) -> int:
    version: int = integer()(value)
    if version != SCHEMA_VERSION:
        raise Invalid(f"unsupported version {version} (this ita-vc reads {SCHEMA_VERSION})")
    return version


SCHEMA = strict(
    {
        vol.Optional("schema_version"): _schema_version,
        vol.Optional("paths"): strict(
            {vol.Optional(f.name): _relpath for f in fields(PathsConfig)}
        ),
        vol.Optional("store"): strict(
            {
                vol.Optional("parquet_compression"): choice(_COMPRESSIONS, what="one of"),
                vol.Optional("kinds"): mapping_of(
                    _kind_name, _relpath
                ),  # replaces the default kinds
            }
        ),
        vol.Optional("candles"): strict(
            {
                vol.Optional("layout"): _layout,
                vol.Optional("markets"): _markets,
            }
        ),
        vol.Optional("cache"): strict(
            {
                vol.Optional("enabled"): _bool,
                vol.Optional("max_bytes"): _max_bytes,
            }
        ),
        vol.Optional("jobs"): strict(
            {
                vol.Optional("enabled"): _bool,
                vol.Optional("url"): _jobs_url,
                vol.Optional("top_k_persisted_default"): _positive_int,
                vol.Optional("max_active_jobs"): _positive_int,
                vol.Optional("max_attempts"): _positive_int,
                vol.Optional("claim_poll_seconds"): _seconds(0.05),
                vol.Optional("lease_seconds"): _seconds(1),
                vol.Optional("heartbeat_seconds"): _seconds(0.1),
            }
        ),
    }
)
"""The shape of ``configs/config.yaml``. Every key is optional: a key left out takes its value
from the embedded defaults; the path overlaps and the kinds are checked after the merge."""


def _merge(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """``user`` (validated) over ``defaults``, section by section: a key of a section replaces
    the default's, and ``store.kinds`` (a free mapping) replaces the default kinds whole."""
    merged = copy.deepcopy(dict(defaults))
    for section, value in user.items():
        merged[section] = {**merged[section], **value} if isinstance(value, Mapping) else value
    return merged


def _inside(child: PurePosixPath, parent: PurePosixPath) -> bool:
    return child == parent or parent in child.parents


def _check_overlaps(paths: Mapping[str, str], problems: Problems) -> None:
    """Outputs never inside the DVC-tracked data; local state never inside tracked folders."""
    posix = {key: PurePosixPath(value) for key, value in paths.items()}
    data = posix["data_root"]
    for key in ("results_root", "provenance_root"):
        if _inside(posix[key], data) or _inside(data, posix[key]):
            problems.add(
                f"paths.{key}",
                f"{posix[key]} overlaps data_root {data}: DVC forbids "
                "pipeline outputs inside a tracked directory, keep them apart",
            )
    for key in ("trash_root", "index_path", "logs_root", "cache_root"):
        for tracked in ("data_root", "results_root", "provenance_root", "rules_root"):
            if _inside(posix[key], posix[tracked]):
                problems.add(
                    f"paths.{key}", f"{posix[key]} must not be inside {tracked} {posix[tracked]}"
                )


def _check_kinds(merged: dict[str, Any], problems: Problems) -> None:
    """At least one kind, a ``candles`` kind, and always a home for gc's purge reports."""
    kinds = merged["store"]["kinds"] = dict(merged["store"]["kinds"])
    if not kinds:
        problems.add("store.kinds", "must name at least one artifact kind")
    # the purge reports of `ita-vc gc` always have a home (beside the index, git-ignored)
    kinds.setdefault(
        "retention", (PurePosixPath(merged["paths"]["index_path"]).parent / "retention").as_posix()
    )
    if "candles" not in kinds:
        problems.add("store.kinds", "needs a 'candles' kind (where canonical candles are stored)")


def _jobs_config(section: Mapping[str, Any], problems: Problems) -> JobsConfig:
    """The ``jobs:`` section; a heartbeat must come well within the lease."""
    values: dict[str, Any] = {
        k: float(v) if k.endswith("_seconds") else v for k, v in section.items()
    }
    jobs = JobsConfig(**values)
    if jobs.heartbeat_seconds * 2 > jobs.lease_seconds:
        problems.add(
            "jobs.heartbeat_seconds",
            f"{jobs.heartbeat_seconds:g} s must be at most half of lease_seconds "
            f"({jobs.lease_seconds:g} s): a worker must renew its lease before it expires",
        )
        problems.raise_for(ConfigError)
    return jobs


def parse_config(text: str, source: str = CONFIG_RELPATH) -> Config:
    """Validate config text against :data:`SCHEMA`, merge it over the embedded defaults and
    return the :class:`Config`.

    Raises:
        ConfigError: invalid YAML, or every problem found (unknown keys, wrong types, paths
            leaving the repository or overlapping), each with file, line and key.
    """
    try:
        document = load_yaml_document(text, source)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    problems = Problems(source, document.index)
    user = problems.check(SCHEMA, {} if document.data is None else document.data)
    if user is None:
        problems.fail(ConfigError)
    merged = _merge(load_yaml_text(default_config_text(), "<embedded defaults>"), user)
    _check_overlaps(merged["paths"], problems)
    _check_kinds(merged, problems)
    problems.raise_for(ConfigError)
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
        cache=CacheConfig(**merged["cache"]),
        jobs=_jobs_config(merged.get("jobs") or {}, problems),
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
