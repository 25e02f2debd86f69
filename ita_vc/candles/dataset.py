"""Canonical candle datasets of a workspace: import (merge), load, status.

A dataset is one parquet file per ``(market, symbol, timeframe)`` at
``<store.kinds.candles>/<candles.layout>`` (default
``data/candles/{market}/{symbol}/{timeframe}.parquet``), written through the Persistent Store
with its content hash, range, row and gap counts in the file's metadata (so ``data status``
does not read the data). Data is never silently altered: an import that conflicts with what is
stored fails unless told which side wins, and nothing is written on any error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.candles.schema import (
    CANONICAL_COLUMNS,
    check_market,
    check_symbol,
    gap_flags,
    instrument_key,
    timeframe_ms,
)
from ita_vc.candles.validate import MAX_LISTED_ROWS, format_ts, validate_candles
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from ita_vc.store.artifacts import ArtifactRef
    from ita_vc.workspace import Workspace

__all__ = ["CONFLICT_POLICIES", "CandleStore", "DatasetInfo", "ImportReport", "merge_candles"]

CONFLICT_POLICIES = ("error", "keep-new", "keep-old")
_VALUE_COLUMNS = ["open", "high", "low", "close", "volume"]


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
            "market": self.market, "symbol": self.symbol, "timeframe": self.timeframe,
            "instrument_key": self.instrument_key, "path": self.path, "rows": self.rows,
            "first": format_ts(self.first_ts) if self.first_ts is not None else None,
            "last": format_ts(self.last_ts) if self.last_ts is not None else None,
            "gaps": self.gaps, "data_hash": self.data_hash, "file_sha256": self.file_sha256,
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


def _raise_conflicts(clashing: pd.DataFrame, source: str) -> None:
    lines = []
    for ts, group in list(clashing.groupby("ts_utc", sort=True))[:MAX_LISTED_ROWS]:
        values = "; ".join(
            ("stored" if r.src_side == 0 else f"row {r.row_no}") + ": " +
            " ".join(f"{c}={getattr(r, c)}" for c in _VALUE_COLUMNS)
            for r in group.itertuples()
        )
        lines.append(f"{format_ts(ts)}: {values}")  # type: ignore[arg-type]
    count = clashing["ts_utc"].nunique()
    more = f"\n  (and {count - MAX_LISTED_ROWS} more)" if count > MAX_LISTED_ROWS else ""
    raise DataValidationError(
        f"{source}: {count} timestamp(s) with different values; nothing was written "
        "(choose with --on-conflict keep-new|keep-old):\n  " + "\n  ".join(lines) + more
    )


def merge_candles(old: pd.DataFrame | None, new: pd.DataFrame, *, on_conflict: str = "error",
                  source: str = "import") -> tuple[pd.DataFrame, int, int]:
    """Merge ``new`` rows into ``old``: exact duplicates dropped; the same ``ts_utc`` with other
    values is a conflict (an error listing the rows, or ``keep-new``/``keep-old``).

    Returns ``(merged sorted frame without gap_flag, duplicates dropped, conflicts resolved)``.

    Raises:
        DataValidationError: conflicts with ``on_conflict="error"``, or a bad policy.
    """
    import pandas as pd

    if on_conflict not in CONFLICT_POLICIES:
        raise DataValidationError(f"--on-conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    cols = ["ts_utc", *_VALUE_COLUMNS]
    frames = []
    if old is not None and len(old):
        frames.append(old[cols].assign(src_side=0, row_no=-1))
    frames.append(new[cols].assign(src_side=1, row_no=new["_row"].to_numpy()))
    both = pd.concat(frames, ignore_index=True)
    shared = both["ts_utc"].duplicated(keep=False).to_numpy()
    duplicates = resolved = 0
    if shared.any():  # only rows whose timestamp occurs twice need a closer look
        sub = both[shared]
        unique = sub.drop_duplicates(subset=cols, keep="first")
        duplicates = len(sub) - len(unique)
        clash = unique["ts_utc"].duplicated(keep=False).to_numpy()
        if clash.any():
            clashing = unique[clash].sort_values(["ts_utc", "src_side"], kind="stable")
            if on_conflict == "error":
                _raise_conflicts(clashing, source)
            keep_side = 1 if on_conflict == "keep-new" else 0
            resolved = clashing["ts_utc"].nunique()
            unique = unique[~(clash & (unique["src_side"].to_numpy() != keep_side))]
            # several rows of one side for one timestamp (within new files): the last one read
            unique = unique.drop_duplicates(subset=["ts_utc"], keep="last")
        both = pd.concat([both[~shared], unique], ignore_index=True)
    merged = both.sort_values("ts_utc", kind="stable").reset_index(drop=True)
    return merged[cols], duplicates, resolved


class CandleStore:
    """The candle datasets of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        from ita_vc.store.artifacts import PersistentStore

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

    def import_files(
        self, files: Iterable[str | Path], *, market: str, symbol: str, timeframe: str = "1m",
        fmt: str = "auto", on_conflict: str = "error", track: bool = True,
    ) -> ImportReport:
        """Read, validate and merge files into the dataset; write it; ``dvc add`` the data root.

        Raises:
            DataValidationError: unreadable files, invalid candles, conflicts. Nothing is
                written then.
            VcsError: DVC tracking failed (the dataset file itself is written).
        """
        import pandas as pd

        from ita_vc.candles.importers import read_candle_file
        from ita_vc.store.tablehash import hash_dataframe

        rel = self.relpath(market, symbol, timeframe)
        step = timeframe_ms(timeframe)
        paths = [Path(f) for f in files]
        if not paths:
            raise DataValidationError("no files to import")
        parsed, read = [], []
        for path in paths:
            frame, used = read_candle_file(path, fmt)
            validate_candles(frame, step, str(path))
            parsed.append(frame)
            read.append((str(path), used, len(frame)))
        incoming = pd.concat(parsed, ignore_index=True)
        old = self.load(market, symbol, timeframe) if self.exists(market, symbol, timeframe) \
            else None
        merged, duplicates, resolved = merge_candles(
            old, incoming, on_conflict=on_conflict, source=", ".join(str(p) for p in paths)
        )
        merged["gap_flag"] = gap_flags(merged["ts_utc"], step)
        merged = merged[list(CANONICAL_COLUMNS)].astype({
            "ts_utc": "int64", "open": "float64", "high": "float64", "low": "float64",
            "close": "float64", "volume": "float64", "gap_flag": "bool"})
        data_hash = hash_dataframe(merged)
        unchanged = old is not None and data_hash == hash_dataframe(old)
        added = len(merged) - (0 if old is None else len(old))
        if not unchanged:
            self._save(merged, rel, market=market, symbol=symbol, timeframe=timeframe,
                       data_hash=data_hash)
        tracked = False
        if track and not unchanged:
            from ita_vc.vcs.dvc import track_path

            track_path(self.workspace.root, self.workspace.config.paths.data_root)
            tracked = True
        return ImportReport(self.info(rel), tuple(read), added, duplicates, resolved, tracked,
                            unchanged)

    def _save(self, frame: pd.DataFrame, rel: str, *, market: str, symbol: str,
              timeframe: str, data_hash: str) -> ArtifactRef:
        ts = frame["ts_utc"]
        meta = {
            "market": market, "symbol": symbol, "timeframe": timeframe,
            "instrument_key": instrument_key(market, symbol), "rows": len(frame),
            "first_ts": int(ts.iloc[0]) if len(frame) else None,
            "last_ts": int(ts.iloc[-1]) if len(frame) else None,
            "gaps": int(frame["gap_flag"].sum()), "data_hash": data_hash,
        }
        root = PurePosixPath(self.workspace.config.store.kinds["candles"])
        inner = PurePosixPath(rel).relative_to(root)
        return self.store._save_dataframe(
            frame, "candles", inner.name, subdir=inner.parent.as_posix(), meta=meta,
            reserved_ok=True)

    def info(self, rel: str) -> DatasetInfo:
        """Status of one dataset file (from its metadata; hashed again when it has none).

        Raises:
            PersistentStoreError: the file is missing or unreadable.
        """
        ref = self.store.ref_for(rel)
        meta = dict(ref.meta)
        if "data_hash" not in meta:
            from ita_vc.store.tablehash import hash_dataframe

            frame = self.store.load_dataframe(rel)
            meta.update(rows=len(frame), data_hash=hash_dataframe(frame),
                        first_ts=int(frame["ts_utc"].iloc[0]) if len(frame) else None,
                        last_ts=int(frame["ts_utc"].iloc[-1]) if len(frame) else None,
                        gaps=int(frame["gap_flag"].sum()) if "gap_flag" in frame else 0)
        parts = PurePosixPath(rel).parts
        return DatasetInfo(
            market=str(meta.get("market", parts[-3] if len(parts) >= 3 else "")),
            symbol=str(meta.get("symbol", parts[-2] if len(parts) >= 2 else "")),
            timeframe=str(meta.get("timeframe", PurePosixPath(rel).stem)),
            path=rel, rows=int(meta["rows"]), first_ts=meta.get("first_ts"),
            last_ts=meta.get("last_ts"), gaps=int(meta.get("gaps", 0)),
            data_hash=str(meta["data_hash"]), file_sha256=ref.sha256, size=ref.size,
        )

    def status(self) -> list[DatasetInfo]:
        """Every dataset present in the workspace, by path."""
        root = self.workspace.path(self.workspace.config.store.kinds["candles"])
        if not root.is_dir():
            return []
        found = sorted(self.workspace.relpath(p) for p in root.rglob("*.parquet")
                       if not p.name.startswith("."))
        return [self.info(rel) for rel in found]
