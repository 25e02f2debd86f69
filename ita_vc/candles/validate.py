"""Validation of candle tables: every rule checked, the first offending rows named.

Nothing is written when validation fails: callers validate the complete merged table before
they hand it to the store.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.candles.schema import PRICE_COLUMNS, infer_timeframe, timeframe_ms
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_LISTED_ROWS", "check_candle_table", "format_ts", "validate_candles"]

MAX_LISTED_ROWS = 5


def format_ts(ms: int) -> str:
    """``2024-01-01T00:00:00Z`` of epoch milliseconds (for messages and reports)."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def _rows(df: pd.DataFrame, mask: np.typing.NDArray[np.bool_], describe: Any) -> str:
    where = np.flatnonzero(mask)
    shown = [describe(df.iloc[i]) for i in where[:MAX_LISTED_ROWS]]
    more = f" (and {len(where) - MAX_LISTED_ROWS} more)" if len(where) > MAX_LISTED_ROWS else ""
    return "; ".join(shown) + more


def _row_label(row: Any) -> str:
    # the file's data row when the reader recorded it, else the position in the table
    number = row["_row"] if "_row" in row.index else row.name + 1
    source = f"row {int(number)}"
    ts = f" ({format_ts(int(row['ts_utc']))})" if row.get("ts_utc") == row.get("ts_utc") else ""
    return source + ts


def validate_candles(df: pd.DataFrame, step_ms: int, source: str) -> None:
    """Check a parsed candle table (``ts_utc`` int ms, OHLCV float, optional ``_row``; rows
    are named by ``_row``, or by position + 1 in a table with a default index).

    Raises:
        DataValidationError: one message listing every failed rule with its first rows.
    """
    problems: list[str] = []

    def check(mask: np.typing.NDArray[np.bool_], what: str, describe: Any = _row_label) -> None:
        if mask.any():
            problems.append(f"{int(mask.sum())} row(s) {what}: {_rows(df, mask, describe)}")

    prices = df[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    volume = df["volume"].to_numpy(dtype="float64")
    check(
        ~np.isfinite(prices).all(axis=1),
        "with a missing, NaN or non-numeric price",
        lambda r: f"{_row_label(r)} { {c: float(r[c]) for c in PRICE_COLUMNS} }",
    )
    finite = np.isfinite(prices).all(axis=1)
    check(
        finite & (prices <= 0).any(axis=1),
        "with a price <= 0",
        lambda r: f"{_row_label(r)} { {c: float(r[c]) for c in PRICE_COLUMNS} }",
    )
    check(
        ~np.isfinite(volume),
        "with a missing or non-numeric volume",
        lambda r: f"{_row_label(r)} volume={r['volume']}",
    )
    check(
        np.isfinite(volume) & (volume < 0),
        "with a negative volume",
        lambda r: f"{_row_label(r)} volume={r['volume']}",
    )
    o, h, lo, c = prices.T
    check(
        finite & (h < np.maximum(o, c)),
        "with high < max(open, close)",
        lambda r: f"{_row_label(r)} open={r['open']} high={r['high']} close={r['close']}",
    )
    check(
        finite & (lo > np.minimum(o, c)),
        "with low > min(open, close)",
        lambda r: f"{_row_label(r)} open={r['open']} low={r['low']} close={r['close']}",
    )
    ts = df["ts_utc"].to_numpy(dtype="int64")
    check(ts % step_ms != 0, f"with a timestamp not aligned to the timeframe ({step_ms} ms)")
    if problems:
        raise DataValidationError(
            f"{source}: invalid candles, nothing was written:\n  " + "\n  ".join(problems)
        )


def check_candle_table(df: pd.DataFrame, source: str) -> str:
    """Validate a table that is used as it is, without an import (``ita-vc backtest run``):
    the timeframe inferred from the bars' spacing, every rule of :func:`validate_candles`, and
    no timestamp twice. Returns the timeframe.

    Raises:
        DataValidationError: naming ``source`` and the first offending rows.
    """

    timeframe = infer_timeframe(df["ts_utc"], source)
    validate_candles(df, timeframe_ms(timeframe), source)
    repeated = df["ts_utc"].duplicated(keep=False).to_numpy()
    if repeated.any():
        raise DataValidationError(
            f"{source}: {int(repeated.sum())} row(s) share a timestamp: "
            f"{_rows(df, repeated, _row_label)}; nothing was written"
        )
    return timeframe
