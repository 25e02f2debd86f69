"""Merging new candle rows into a stored dataset: duplicates dropped, conflicts refused or
resolved by an explicit policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ita_vc.candles.validate import MAX_LISTED_ROWS, format_ts
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = ["CONFLICT_POLICIES", "check_conflict_policy", "merge_candles"]

CONFLICT_POLICIES = ("error", "keep-new", "keep-old")
_VALUE_COLUMNS = ["open", "high", "low", "close", "volume"]


def check_conflict_policy(on_conflict: str) -> str:
    """Return ``on_conflict`` if it is one of :data:`CONFLICT_POLICIES`.

    Raises:
        DataValidationError: another value.
    """
    if on_conflict not in CONFLICT_POLICIES:
        raise DataValidationError(f"--on-conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    return on_conflict


def _raise_conflicts(clashing: pd.DataFrame, source: str, files: Sequence[str]) -> None:
    def label(r: Any) -> str:
        if r.src_side == 0:
            return "stored"
        return f"{files[r.file_no]} row {r.row_no}" if len(files) > 1 else f"row {r.row_no}"

    lines = []
    for ts, group in list(clashing.groupby("ts_utc", sort=True))[:MAX_LISTED_ROWS]:
        values = "; ".join(
            label(r) + ": " + " ".join(f"{c}={getattr(r, c)}" for c in _VALUE_COLUMNS)
            for r in group.itertuples()
        )
        lines.append(f"{format_ts(ts)}: {values}")  # type: ignore[arg-type]
    count = clashing["ts_utc"].nunique()
    more = f"\n  (and {count - MAX_LISTED_ROWS} more)" if count > MAX_LISTED_ROWS else ""
    raise DataValidationError(
        f"{source}: {count} timestamp(s) with different values; nothing was written "
        "(choose with --on-conflict keep-new|keep-old):\n  " + "\n  ".join(lines) + more
    )


def merge_candles(
    old: pd.DataFrame | None,
    new: pd.DataFrame,
    *,
    on_conflict: str = "error",
    source: str = "import",
    files: Sequence[str] = (),
) -> tuple[pd.DataFrame, int, int]:
    """Merge ``new`` rows into ``old``: exact duplicates dropped; the same ``ts_utc`` with other
    values is a conflict (an error listing the rows, or ``keep-new``/``keep-old``).

    ``new`` may carry ``_row`` (the file's data row) and ``_file`` (an index into ``files``), so
    that a conflict names the row and, with several files, the file.

    Returns ``(merged sorted frame without gap_flag, duplicates dropped, conflicts resolved)``.

    Raises:
        DataValidationError: conflicts with ``on_conflict="error"``, or a bad policy.
    """
    check_conflict_policy(on_conflict)
    cols = ["ts_utc", *_VALUE_COLUMNS]
    frames = []
    if old is not None and len(old):
        frames.append(old[cols].assign(src_side=0, row_no=-1, file_no=0))
    rows = new["_row"].to_numpy() if "_row" in new else np.arange(1, len(new) + 1)
    file_no = new["_file"].to_numpy() if "_file" in new and files else 0
    frames.append(new[cols].assign(src_side=1, row_no=rows, file_no=file_no))
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
                _raise_conflicts(clashing, source, files)
            keep_side = 1 if on_conflict == "keep-new" else 0
            resolved = clashing["ts_utc"].nunique()
            unique = unique[~(clash & (unique["src_side"].to_numpy() != keep_side))]
            # several rows of one side for one timestamp (within new files): the last one read
            unique = unique.drop_duplicates(subset=["ts_utc"], keep="last")
        both = pd.concat([both[~shared], unique], ignore_index=True)
    merged = both.sort_values("ts_utc", kind="stable").reset_index(drop=True)
    return merged[cols], duplicates, resolved
