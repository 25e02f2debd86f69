"""The feature cache: indicator state series as parquet files, named by their feature hash.

An entry is ``<cache_root>/features/<hh>/<hex>.parquet`` (``hh`` = the first two hex digits
of the feature hash; the series as runs of equal states, columns ``start`` and ``state``),
with a row of the metadata index's ``feature_cache`` table holding the sha256 and size of the
file's bytes. A read checks both and the series' length; an entry that fails (truncated, a
flipped byte, another length, unreadable) is deleted and recomputed, never used. Writes go to
a temp file, are fsynced and published with ``os.replace`` (:func:`_write_entry`): concurrent
writers of one entry write the same bytes, and a reader sees the old file, the new one or
none.

What is cached (measured in docs/cache.md): a series whose computation took longer than loading
it would (:func:`worth_caching`); entries are written after a batch, never between variants.
The cache is bounded by ``cache.max_bytes``: after writing, the least recently used entries
(``last_used_at``, updated on hits in one transaction per batch) are evicted until the total
fits. Evicting deletes the row first, then the file; a reader that loses the race sees a miss.

The cache changes no output: a hit is the exact array a computation returns (int8 states round
trip bit for bit), and it is keyed by every input of that computation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ita_vc.config import load_config
from ita_vc.errors import ItaVcError
from ita_vc.features.hashing import candle_hash, code_version, feature_hash
from ita_vc.store.index import MetadataIndex, utc_now_iso
from ita_vc.utils.atomic import TEMP_SUFFIX
from ita_vc.utils.hashing import hash_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import numpy.typing as npt

    from ita_vc.workspace import Workspace

    States = npt.NDArray[np.int8]

__all__ = [
    "LOAD_FIXED_S",
    "LOAD_S_PER_BAR",
    "CacheInfo",
    "FeatureCache",
    "FeatureCacheSettings",
    "FeatureSession",
    "FeatureSource",
    "activate",
    "active_settings",
    "cache_settings",
    "feature_source",
    "sync_feature_cache",
    "worth_caching",
]

TABLE = "feature_cache"
LOAD_FIXED_S = 0.001
"""The fixed cost of loading an entry (index lookup amortised, open, parquet footer)."""
LOAD_S_PER_BAR = 5e-9
"""The cost per bar of loading an entry (read, sha256, decode): ~5 ms per 1M bars measured."""
_COMPRESSION = "zstd"


def worth_caching(compute_s: float, n_bars: int) -> bool:
    """The write rule: cache a series when computing it took longer than loading it would
    (``LOAD_FIXED_S + n_bars * LOAD_S_PER_BAR``)."""
    return compute_s > LOAD_FIXED_S + n_bars * LOAD_S_PER_BAR


@dataclass(frozen=True)
class FeatureCacheSettings:
    """Where the cache lives and its budget (absolute paths: they travel to worker
    processes)."""

    root: Path
    """``<workspace>/<paths.cache_root>``."""
    index_path: Path
    max_bytes: int


@dataclass(frozen=True)
class FeatureSource:
    """The cache settings plus the identity of one candle series and the code version."""

    settings: FeatureCacheSettings
    candle_hash: str
    code_version: str


@dataclass(frozen=True)
class CacheInfo:
    """What ``ita-vc cache info`` shows."""

    root: Path
    entries: int
    bytes: int
    max_bytes: int
    files_without_row: int = 0


_ACTIVE: list[FeatureCacheSettings] = []


@contextlib.contextmanager
def activate(settings: FeatureCacheSettings | None) -> Iterator[None]:
    """Use the feature cache ``settings`` in this process's grids (None: no cache) while the
    block runs; what :func:`active_settings` returns."""
    if settings is not None:
        _ACTIVE.append(settings)
    try:
        yield
    finally:
        if settings is not None:
            _ACTIVE.pop()


def active_settings() -> FeatureCacheSettings | None:
    """The settings of the innermost :func:`activate` block, None outside any."""
    return _ACTIVE[-1] if _ACTIVE else None


def cache_settings(
    workspace: str | Path, *, even_disabled: bool = False
) -> FeatureCacheSettings | None:
    """The workspace's feature cache settings from ``configs/config.yaml``; None when
    ``cache.enabled`` is false (unless ``even_disabled``: ``cache info``/``clear``).

    Raises:
        ConfigError: the configuration is invalid.
    """
    root = Path(workspace).resolve()
    config = load_config(root)
    if not config.cache.enabled and not even_disabled:
        return None
    return FeatureCacheSettings(
        root=root / config.paths.cache_root,
        index_path=root / config.paths.index_path,
        max_bytes=config.cache.max_bytes,
    )


def feature_source(
    settings: FeatureCacheSettings | None,
    *,
    market: str,
    symbol: str,
    timeframe: str | None,
    ts: npt.NDArray[np.int64],
    data_hash: str,
    engine_version: str,
) -> FeatureSource | None:
    """The :class:`FeatureSource` of a candle series (None without settings or bars)."""
    if settings is None or not len(ts):
        return None
    candle = candle_hash(market, symbol, timeframe, int(ts[0]), int(ts[-1]), data_hash)
    return FeatureSource(settings, candle, code_version(engine_version))


def _params_json(params: Mapping[str, float]) -> str:
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True)


_META_KEY = b"ita_vc.feature"
_LEN_KEY = b"ita_vc.n_bars"


def _encode(states: States, meta: Mapping[str, str]) -> bytes:
    """The parquet bytes of an entry: the series as runs, one row per run of equal states
    (``start``: int64 bar index of the run's first bar, ``state``: int8); ``meta`` (the row's
    identity columns) and the series' length ``n_bars`` ride in the schema metadata."""
    starts = np.concatenate(([0], np.flatnonzero(np.diff(states)) + 1)).astype(np.int64)
    table = pa.table({"start": starts, "state": states[starts]}).replace_schema_metadata(
        {
            _META_KEY: json.dumps(dict(meta), sort_keys=True).encode(),
            _LEN_KEY: str(len(states)).encode(),
        }
    )
    buf = io.BytesIO()
    pq.write_table(
        table, buf, compression=_COMPRESSION, use_dictionary=False, write_statistics=False
    )
    return buf.getvalue()


def _write_entry(target: Path, data: bytes) -> tuple[str, int]:
    """Write ``data`` to a temp file beside ``target``, fsync it, ``os.replace`` it onto
    ``target``; ``(sha256, size)``. Unlike :func:`~ita_vc.utils.atomic.atomic_write_bytes` the
    folder is not fsynced: a rename lost in a crash is a cache miss, and each fsync of a folder
    cost about 4 ms, a third of a cold grid's cache overhead (docs/cache.md)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return hash_bytes(data), len(data)


def _runs_to_states(table: pa.Table, n_bars: int) -> States | None:
    """The series of an entry's runs, None unless they describe exactly ``n_bars`` int8
    states (first run at bar 0, starts strictly increasing and below ``n_bars``)."""
    meta = table.schema.metadata or {}
    if meta.get(_LEN_KEY) != str(n_bars).encode() or table.num_columns != 2:
        return None
    start, state = table.column("start"), table.column("state")
    if start.type != pa.int64() or state.type != pa.int8() or start.null_count + state.null_count:
        return None
    starts, values = start.to_numpy(), state.to_numpy()
    ends = np.append(starts[1:], n_bars)
    if not len(starts) or starts[0] != 0 or (ends <= starts).any():
        return None
    states: States = np.repeat(values, ends - starts).astype(np.int8)  # a fresh, writable array
    return states


def _file_meta(data: bytes) -> dict[str, str] | None:
    """The identity columns stored in an entry's parquet metadata, None if unreadable."""
    try:
        meta = pq.read_schema(pa.BufferReader(data)).metadata or {}
        found = json.loads(meta[_META_KEY])
    except (pa.ArrowException, KeyError, OSError, ValueError):
        return None
    keys = ("candle_hash", "indicator", "params_json", "code_version")
    if not isinstance(found, dict) or any(not isinstance(found.get(k), str) for k in keys):
        return None
    return {k: found[k] for k in keys}


class FeatureCache:
    """The entries below ``settings.root`` and their rows in the metadata index."""

    def __init__(self, settings: FeatureCacheSettings) -> None:
        self.settings = settings
        self.index = MetadataIndex(settings.index_path)

    def path(self, fhash: str) -> Path:
        """The file of the entry ``fhash`` (``sha256:<hex>``)."""
        hexd = fhash.split(":", 1)[-1]
        return self.settings.root / "features" / hexd[:2] / f"{hexd}.parquet"

    def rows(self, candle: str | None = None) -> dict[str, dict[str, Any]]:
        """The index rows by feature hash (of one candle hash, or all)."""
        return {r["feature_hash"]: r for r in self.index.rows(TABLE, candle_hash=candle)}

    def load(self, row: Mapping[str, Any], n_bars: int) -> States | None:
        """The entry of ``row`` verified (sha256, size, length, dtype); None when it is gone
        or corrupt (a corrupt entry is deleted: its row, then its file)."""
        path = self.path(str(row["feature_hash"]))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.index.delete_rows(TABLE, feature_hash=str(row["feature_hash"]))
            return None
        states = self._decode(data, row, n_bars)
        if states is None:
            self.remove(str(row["feature_hash"]))
        return states

    @staticmethod
    def _decode(data: bytes, row: Mapping[str, Any], n_bars: int) -> States | None:
        if len(data) != int(row["size"]) or hash_bytes(data) != row["sha256"]:
            return None
        try:
            table = pq.read_table(pa.BufferReader(data))
            return _runs_to_states(table, n_bars)
        except (pa.ArrowException, KeyError, OSError, ValueError):
            return None

    def remove(self, fhash: str) -> None:
        """Delete one entry (its row first, then its file)."""
        self.index.delete_rows(TABLE, feature_hash=fhash)
        self.path(fhash).unlink(missing_ok=True)

    def write(self, entries: list[tuple[str, str, Mapping[str, float], str, str, States]]) -> int:
        """Write ``(feature_hash, indicator, params, candle_hash, code_version, states)``
        entries, then evict to the budget; how many were written."""
        rows = []
        now = utc_now_iso()
        for fhash, name, params, candle, version, states in entries:
            target = self.path(fhash)
            target.parent.mkdir(parents=True, exist_ok=True)
            meta = {
                "candle_hash": candle,
                "indicator": name,
                "params_json": _params_json(params),
                "code_version": version,
            }
            sha, size = _write_entry(target, _encode(states, meta))
            rows.append(
                {
                    "feature_hash": fhash,
                    **meta,
                    "path": target.relative_to(self.settings.root).as_posix(),
                    "sha256": sha,
                    "size": size,
                    "created_at": now,
                    "last_used_at": now,
                }
            )
        if rows:
            self.index.upsert_rows(TABLE, rows)
            self.evict(self.settings.max_bytes)
        return len(rows)

    def touch(self, rows: list[dict[str, Any]]) -> None:
        """Set ``last_used_at`` of the entries of ``rows`` (hits) in one transaction; an
        entry evicted meanwhile (file gone) is not brought back."""
        now = utc_now_iso()
        alive = [{**r, "last_used_at": now} for r in rows if self.path(r["feature_hash"]).exists()]
        if alive:
            self.index.upsert_rows(TABLE, alive)

    def evict(self, max_bytes: int) -> int:
        """Delete the least recently used entries until the total size is at most
        ``max_bytes``; how many were deleted."""
        rows = self.index.rows(TABLE, order="last_used_at")
        total = sum(int(r["size"]) for r in rows)
        removed = 0
        for row in rows:
            if total <= max_bytes:
                break
            self.remove(str(row["feature_hash"]))
            total -= int(row["size"])
            removed += 1
        return removed

    def info(self) -> CacheInfo:
        """Entries and bytes (from the index), and files the index does not know."""
        rows = self.rows()
        known = {self.path(h) for h in rows}
        folder = self.settings.root / "features"
        files = set(folder.glob("*/*.parquet")) if folder.is_dir() else set()
        return CacheInfo(
            self.settings.root,
            len(rows),
            sum(int(r["size"]) for r in rows.values()),
            self.settings.max_bytes,
            len(files - known),
        )

    def clear(self) -> int:
        """Delete every entry (rows, then files, temp files included); how many rows."""
        n = len(self.rows())
        self.index.replace_rows(TABLE, [])
        folder = self.settings.root / "features"
        if folder.is_dir():
            for path in sorted(folder.glob("*/*"), reverse=True):
                path.unlink(missing_ok=True)
        return n


@dataclass
class FeatureSession:
    """One evaluator's view of the cache for one candle series: hits served from the entries
    known when it started, misses offered for writing, both flushed after a batch."""

    source: FeatureSource
    n_bars: int
    cache: FeatureCache = field(init=False)
    known: dict[str, dict[str, Any]] = field(init=False)
    pending: list[tuple[str, str, Mapping[str, float], str, str, States]] = field(
        init=False, default_factory=list
    )
    hits: list[dict[str, Any]] = field(init=False, default_factory=list)

    broken: str | None = field(init=False, default=None)
    """Why the cache stopped being used in this session (an unreadable index, a folder that
    cannot be written): the grid then computes every series, as without a cache."""

    def __post_init__(self) -> None:
        self.cache = FeatureCache(self.source.settings)
        try:
            self.known = self.cache.rows(self.source.candle_hash)
        except (OSError, ItaVcError) as exc:
            self.known, self.broken = {}, str(exc)

    def key(self, name: str, params: Mapping[str, float]) -> str:
        """The feature hash of ``name(params)`` on this session's candles."""
        return feature_hash(name, params, self.source.candle_hash, self.source.code_version)

    def get(self, name: str, params: Mapping[str, float]) -> States | None:
        """The cached, verified series, or None (a miss)."""
        fhash = self.key(name, params)
        row = self.known.get(fhash)
        if row is None or self.broken:
            return None
        try:
            states = self.cache.load(row, self.n_bars)
        except (OSError, ItaVcError) as exc:
            self.broken = str(exc)
            return None
        if states is None:  # gone or corrupt (and deleted): computed from now on
            del self.known[fhash]
        else:
            self.hits.append(row)
        return states

    def offer(
        self, name: str, params: Mapping[str, float], states: States, compute_s: float
    ) -> None:
        """Queue a computed series for writing when :func:`worth_caching` says so."""
        if not self.broken and worth_caching(compute_s, self.n_bars):
            src = self.source
            fhash = self.key(name, params)
            self.pending.append(
                (fhash, name, dict(params), src.candle_hash, src.code_version, states)
            )

    def flush(self) -> None:
        """Write the queued entries and record the hits (after a batch); an I/O or index
        error turns the cache off for the rest of the session instead of failing the grid."""
        pending, hits = self.pending, self.hits
        self.pending, self.hits = [], []
        try:
            if pending:
                self.cache.write(pending)
            if hits:
                self.cache.touch(hits)
        except (OSError, ItaVcError) as exc:  # a cache never fails the work that uses it
            self.broken = str(exc)


def sync_feature_cache(workspace: Workspace | str | Path) -> int:
    """Re-register the entries on disk after ``index rebuild`` (each row rebuilt from its
    file: the name, the bytes' sha256 and size, the identity in the parquet metadata); a file
    that is not a readable entry is deleted. How many rows."""
    settings = cache_settings(workspace if isinstance(workspace, str | Path) else workspace.root)
    if settings is None:
        return 0
    cache = FeatureCache(settings)
    folder = settings.root / "features"
    rows = []
    now = utc_now_iso()
    for path in sorted(folder.glob("*/*.parquet")) if folder.is_dir() else []:
        hexd = path.stem
        data = path.read_bytes()
        meta = _file_meta(data)
        if meta is None or len(hexd) != 64 or path.parent.name != hexd[:2]:
            path.unlink(missing_ok=True)
            continue
        rows.append(
            {
                "feature_hash": f"sha256:{hexd}",
                **meta,
                "path": path.relative_to(settings.root).as_posix(),
                "sha256": hash_bytes(data),
                "size": len(data),
                "created_at": now,
                "last_used_at": now,
            }
        )
    return cache.index.replace_rows(TABLE, rows)
