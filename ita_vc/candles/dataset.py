"""Canonical candle datasets of a workspace: import (merge), remove, load, status.

A dataset is one parquet file per ``(market, symbol, timeframe)`` at
``<store.kinds.candles>/<candles.layout>`` (default
``data/candles/{market}/{symbol}/{timeframe}.parquet``), written through the Persistent Store
with its content hash, range, row and gap counts in the file's metadata (so ``data status``
does not read the data). Data is never silently altered: an import that conflicts with what is
stored fails unless told which side wins, and nothing is written on any error.

Imports and removals hold the workspace lock from reading the stored dataset to ``dvc add``
(and the optional commit of ``data.dvc``), so concurrent importers never overwrite each other:
the second one waits (``wait`` seconds) or is refused (exit 10).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from ita_vc.candles.importers import FORMATS, read_candle_rows
from ita_vc.candles.merge import check_conflict_policy, merge_candles
from ita_vc.candles.schema import (
    CANONICAL_COLUMNS,
    TIMEFRAMES,
    check_market,
    check_symbol,
    format_step,
    gap_flags,
    infer_timeframe,
    instrument_key,
    median_step,
    timeframe_ms,
)
from ita_vc.candles.tracking import commit_data_root, data_root_files, track_data_root
from ita_vc.candles.validate import format_ts, validate_candles
from ita_vc.errors import DataValidationError, ItaVcError, UsageError
from ita_vc.store.artifacts import PersistentStore
from ita_vc.utils.tablehash import hash_dataframe
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import data_source_changes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ita_vc.store.artifacts import ArtifactRef
    from ita_vc.workspace import Workspace

__all__ = ["CandleStore", "DatasetInfo", "ImportReport", "RemoveReport", "merge_candles"]


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What ``ita-vc data status`` shows for one dataset."""

    market: str
    symbol: str
    timeframe: str
    path: str
    rows: int
    first_ts: int | None
    last_ts: int | None
    gaps: int
    data_hash: str
    file_sha256: str
    size: int

    @property
    def instrument_key(self) -> str:
        """``exchange:market_type:symbol``."""
        return instrument_key(self.market, self.symbol)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (times as ISO-8601 UTC)."""
        return {
            "market": self.market,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "instrument_key": self.instrument_key,
            "path": self.path,
            "rows": self.rows,
            "first": format_ts(self.first_ts) if self.first_ts is not None else None,
            "last": format_ts(self.last_ts) if self.last_ts is not None else None,
            "gaps": self.gaps,
            "data_hash": self.data_hash,
            "file_sha256": self.file_sha256,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import read, merged and wrote."""

    dataset: DatasetInfo
    files: tuple[tuple[str, str, int], ...]  # (path, format, rows read)
    added: int
    duplicates: int
    conflicts_resolved: int
    tracked: bool
    unchanged: bool
    timeframe_inferred: bool = False
    committed: str | None = None  # the commit of data.dvc (``commit=True``)


@dataclass(frozen=True, slots=True)
class RemoveReport:
    """What ``data rm`` removed."""

    path: str
    dataset: DatasetInfo | None  # None when the file was unreadable
    tracked: bool
    committed: str | None = None


def _check_options(track: bool, commit: bool, wait: float) -> None:
    if commit and not track:
        raise UsageError(
            "--commit commits the data.dvc that tracking writes: it cannot be "
            "combined with --no-track"
        )
    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not math.isfinite(wait)
        or wait < 0
    ):
        raise UsageError(f"--wait must be a number of seconds >= 0, got {wait!r}")


def _resolve_timeframe(ts: pd.Series[int], timeframe: str | None, source: str) -> tuple[str, bool]:
    """The given timeframe, checked against the bars' median spacing, or the inferred one."""
    if timeframe is None:
        return infer_timeframe(ts, source), True
    step = median_step(ts)
    if step is not None and step != timeframe_ms(timeframe):
        seen = format_step(step)
        hint = (
            f"pass --timeframe {seen} or leave it out to infer it"
            if seen in TIMEFRAMES
            else "which is no known timeframe"
        )
        raise DataValidationError(
            f"{source}: --timeframe {timeframe} contradicts the data: the median spacing of its "
            f"bars is {seen} ({hint}); nothing was written"
        )
    return timeframe, False


class CandleStore:
    """The candle datasets of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = PersistentStore(workspace)
        self.config = workspace.config.candles

    def relpath(self, market: str, symbol: str, timeframe: str) -> str:
        """Repo-relative path of a dataset.

        Raises:
            DataValidationError: unknown market or timeframe, or a bad symbol.
        """
        check_market(market, self.config.markets)
        check_symbol(symbol)
        timeframe_ms(timeframe)
        inner = self.config.layout.format(market=market, symbol=symbol, timeframe=timeframe)
        return PurePosixPath(self.workspace.config.store.kinds["candles"], inner).as_posix()

    def exists(self, market: str, symbol: str, timeframe: str) -> bool:
        """True if the dataset file is present in the workspace."""
        return self.workspace.path(self.relpath(market, symbol, timeframe)).is_file()

    def load(self, market: str, symbol: str, timeframe: str) -> pd.DataFrame:
        """The canonical table of a dataset.

        Raises:
            DataValidationError: no such dataset (with a hint to import or ``dvc pull``).
        """
        rel = self.relpath(market, symbol, timeframe)
        if not self.workspace.path(rel).is_file():
            raise DataValidationError(
                f"no candles for {market} {symbol} {timeframe} at {rel}: import them with "
                "`ita-vc data import`, or restore them with `dvc pull` (the sample data: "
                "`dvc pull -r sample data.dvc`)"
            )
        return self.store.load_dataframe(rel)

    def _read(
        self,
        paths: list[Path],
        fmt: str,
    ) -> tuple[pd.DataFrame, list[pd.DataFrame], list[tuple[str, str, int]]]:
        parsed, read = [], []
        for number, path in enumerate(paths):
            frame, used = read_candle_rows(path, fmt)
            if len(paths) > 1:
                frame["_file"] = number
            parsed.append(frame)
            read.append((str(path), used, len(frame)))
        return pd.concat(parsed, ignore_index=True), parsed, read

    def import_files(
        self,
        files: Iterable[str | Path],
        *,
        market: str,
        symbol: str,
        timeframe: str | None = None,
        fmt: str = "auto",
        on_conflict: str = "error",
        track: bool = True,
        commit: bool = False,
        wait: float = 0,
    ) -> ImportReport:
        """Read, validate and merge files into the dataset; write it; ``dvc add`` the data root
        (``track``); commit ``data.dvc`` and the ``.gitignore`` DVC edited (``commit``, a
        path-limited commit: nothing else staged goes in).

        ``timeframe=None`` infers it from the median spacing of the bars; a given timeframe
        the spacing contradicts is refused. The files are parsed and validated first; reading
        the stored dataset, merging, writing, tracking and committing happen under the
        workspace lock (``wait`` seconds to get it).

        Raises:
            DataValidationError: bad arguments, unreadable files, invalid candles, a timeframe
                that cannot be inferred or is contradicted, conflicts. Nothing is written then.
            UsageError: ``commit`` without ``track``, a negative or NaN ``wait``.
            WorkspaceLockedError: another command holds the workspace after ``wait`` seconds.
            VcsError: DVC tracking or the commit failed (the dataset file itself is written).
        """
        check_market(market, self.config.markets)
        check_symbol(symbol)
        if timeframe is not None:
            timeframe_ms(timeframe)
        check_conflict_policy(on_conflict)
        if fmt not in FORMATS:
            raise DataValidationError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        _check_options(track, commit, wait)
        paths = [Path(f) for f in files]
        if not paths:
            raise DataValidationError("no files to import")
        incoming, parsed, read = self._read(paths, fmt)
        source = ", ".join(str(p) for p in paths)
        timeframe, inferred = _resolve_timeframe(incoming["ts_utc"], timeframe, source)
        step = timeframe_ms(timeframe)
        for path, frame in zip(paths, parsed, strict=True):
            validate_candles(frame, step, str(path))
        rel = self.relpath(market, symbol, timeframe)
        with self.workspace.lock(
            timeout=wait, purpose=f"data import {market} {symbol} {timeframe}"
        ):
            old = (
                self.load(market, symbol, timeframe)
                if self.exists(market, symbol, timeframe)
                else None
            )
            merged, duplicates, resolved = merge_candles(
                old,
                incoming,
                on_conflict=on_conflict,
                source=source,
                files=[str(p) for p in paths],
            )
            merged["gap_flag"] = gap_flags(merged["ts_utc"], step)
            merged = merged[list(CANONICAL_COLUMNS)].astype(
                {
                    "ts_utc": "int64",
                    "open": "float64",
                    "high": "float64",
                    "low": "float64",
                    "close": "float64",
                    "volume": "float64",
                    "gap_flag": "bool",
                }
            )
            data_hash = hash_dataframe(merged)
            unchanged = old is not None and data_hash == hash_dataframe(old)
            added = len(merged) - (0 if old is None else len(old))
            tracked, committed = False, None
            if not unchanged:
                self._save(
                    merged,
                    rel,
                    market=market,
                    symbol=symbol,
                    timeframe=timeframe,
                    data_hash=data_hash,
                )
                if track:
                    tracked, committed = (
                        True,
                        self._track(
                            commit,
                            f"ita-vc data import: {market} {symbol} {timeframe} ({added:+,} rows)",
                        ),
                    )
            elif track:  # nothing new, but an earlier import may have left data/ untracked
                tracked, committed = self._track_if_stale(
                    commit, f"ita-vc data import: track {market} {symbol} {timeframe}"
                )
            return ImportReport(
                self.info(rel),
                tuple(read),
                added,
                duplicates,
                resolved,
                tracked,
                unchanged,
                inferred,
                committed,
            )

    def remove(
        self,
        market: str,
        symbol: str,
        timeframe: str,
        *,
        track: bool = True,
        commit: bool = False,
        wait: float = 0,
    ) -> RemoveReport:
        """Delete a dataset: its file, its index row, and (``track``) update ``data.dvc`` with
        ``dvc add`` of the data root, as an import does; ``commit`` commits that. Under the
        workspace lock (``wait`` seconds to get it).

        Raises:
            DataValidationError: bad arguments, or no such dataset in the workspace.
            UsageError: ``commit`` without ``track``, a negative or NaN ``wait``.
            WorkspaceLockedError: another command holds the workspace after ``wait`` seconds.
            PersistentStoreError: the dataset path leads outside the workspace.
            VcsError: DVC tracking or the commit failed (the dataset is removed).
        """
        _check_options(track, commit, wait)
        rel = self.relpath(market, symbol, timeframe)
        with self.workspace.lock(timeout=wait, purpose=f"data rm {market} {symbol} {timeframe}"):
            path = self.workspace.contained(rel)
            if not os.path.lexists(path) or path.is_dir():
                raise DataValidationError(
                    f"no dataset {market} {symbol} {timeframe}: {rel} does not exist "
                    "(`ita-vc data status` lists the datasets); nothing was removed"
                )
            info: DatasetInfo | None
            try:
                info = self.info(rel)
            except ItaVcError:
                info = None  # an unreadable file can still be removed
            path.unlink()
            self._prune(path.parent)
            self.store.index.delete(rel)
            tracked, committed = False, None
            if track:
                rows = f" (-{info.rows:,} rows)" if info is not None else ""
                tracked, committed = (
                    True,
                    self._track(commit, f"ita-vc data rm: {market} {symbol} {timeframe}{rows}"),
                )
            return RemoveReport(rel, info, tracked, committed)

    def _prune(self, folder: Path) -> None:
        """Remove the folders a removal left empty, up to the candles root (kept)."""
        top = self.workspace.path(self.workspace.config.store.kinds["candles"])
        while folder != top and folder.is_relative_to(top):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _track_if_stale(self, commit: bool, message: str) -> tuple[bool, str | None]:
        """``dvc add`` the data root when its content differs from its ``.dvc`` file (a killed
        or ``--no-track`` import); with ``commit``, also commit a ``.dvc`` file that is not
        committed yet. Returns ``(tracked, commit id)``."""
        data_root = self.workspace.config.paths.data_root
        if any(
            entry.startswith(f"{data_root} (") for entry in data_source_changes(self.workspace.root)
        ):
            return True, self._track(commit, message)
        if commit:
            pending = [
                p
                for p in data_root_files(self.workspace)
                if p in gitcli.status_paths(self.workspace.root)
            ]
            if pending:
                return False, commit_data_root(self.workspace, pending, message)
        return False, None

    def _track(self, commit: bool, message: str) -> str | None:
        changed = track_data_root(self.workspace)
        return commit_data_root(self.workspace, changed, message) if commit else None

    def _save(
        self,
        frame: pd.DataFrame,
        rel: str,
        *,
        market: str,
        symbol: str,
        timeframe: str,
        data_hash: str,
    ) -> ArtifactRef:
        ts = frame["ts_utc"]
        meta = {
            "market": market,
            "symbol": symbol,
            "timeframe": timeframe,
            "instrument_key": instrument_key(market, symbol),
            "rows": len(frame),
            "first_ts": int(ts.iloc[0]) if len(frame) else None,
            "last_ts": int(ts.iloc[-1]) if len(frame) else None,
            "gaps": int(frame["gap_flag"].sum()),
            "data_hash": data_hash,
        }
        root = PurePosixPath(self.workspace.config.store.kinds["candles"])
        inner = PurePosixPath(rel).relative_to(root)
        return self.store._save_dataframe(
            frame,
            "candles",
            inner.name,
            subdir=inner.parent.as_posix(),
            meta=meta,
            reserved_ok=True,
        )

    def info(self, rel: str) -> DatasetInfo:
        """Status of one dataset file (from its metadata; hashed again when it has none).

        Raises:
            PersistentStoreError: the file is missing or unreadable.
        """
        ref = self.store.ref_for(rel)
        meta = dict(ref.meta)
        if "data_hash" not in meta:
            frame = self.store.load_dataframe(rel)
            meta.update(
                rows=len(frame),
                data_hash=hash_dataframe(frame),
                first_ts=int(frame["ts_utc"].iloc[0]) if len(frame) else None,
                last_ts=int(frame["ts_utc"].iloc[-1]) if len(frame) else None,
                gaps=int(frame["gap_flag"].sum()) if "gap_flag" in frame else 0,
            )
        parts = PurePosixPath(rel).parts
        return DatasetInfo(
            market=str(meta.get("market", parts[-3] if len(parts) >= 3 else "")),
            symbol=str(meta.get("symbol", parts[-2] if len(parts) >= 2 else "")),
            timeframe=str(meta.get("timeframe", PurePosixPath(rel).stem)),
            path=rel,
            rows=int(meta["rows"]),
            first_ts=meta.get("first_ts"),
            last_ts=meta.get("last_ts"),
            gaps=int(meta.get("gaps", 0)),
            data_hash=str(meta["data_hash"]),
            file_sha256=ref.sha256,
            size=ref.size,
        )

    def status(self) -> list[DatasetInfo]:
        """Every dataset present in the workspace, by path."""
        root = self.workspace.path(self.workspace.config.store.kinds["candles"])
        if not root.is_dir():
            return []
        found = sorted(
            self.workspace.relpath(p) for p in root.rglob("*.parquet") if not p.name.startswith(".")
        )
        return [self.info(rel) for rel in found]
