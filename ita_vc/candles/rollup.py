"""Rollup of canonical candles to a larger timeframe (UTC-aligned buckets), vectorised.

Bucket of a bar = ``ts_utc // T * T`` with ``T`` the target timeframe in ms: buckets are aligned
to the Unix epoch, hence to UTC midnight for 1d and to 00:00/04:00/... for 4h. Per bucket:
open = first open, high = max, low = min, close = last close, volume = sum. Only full buckets
are emitted (``T / t`` source bars, all present): a bucket missing any bar - at either end of
the data or because of a gap - is dropped and counted in the :class:`RollupReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ita_vc.candles.schema import gap_flags, timeframe_ms
from ita_vc.errors import DataValidationError

__all__ = ["RollupReport", "rollup_candles", "rollup_with_report"]


@dataclass(frozen=True, slots=True)
class RollupReport:
    """What a rollup kept and dropped."""

    source_timeframe: str
    timeframe: str
    source_bars: int
    buckets: int
    emitted: int
    dropped: int
    dropped_first: bool
    dropped_last: bool

    def to_dict(self) -> dict[str, object]:
        """Plain-data form."""
        return {
            "source_timeframe": self.source_timeframe,
            "timeframe": self.timeframe,
            "source_bars": self.source_bars,
            "buckets": self.buckets,
            "emitted": self.emitted,
            "dropped_partial_buckets": self.dropped,
            "dropped_first": self.dropped_first,
            "dropped_last": self.dropped_last,
        }


def rollup_with_report(
    candles: pd.DataFrame, timeframe: str, source_timeframe: str = "1m"
) -> tuple[pd.DataFrame, RollupReport]:
    """Roll ``candles`` (canonical, ``source_timeframe``) up to ``timeframe``.

    Raises:
        DataValidationError: unknown timeframes, a target that is not a multiple of the source,
            or timestamps that are not strictly increasing.
    """
    step = timeframe_ms(source_timeframe)
    target = timeframe_ms(timeframe)
    if target % step or target < step:
        raise DataValidationError(
            f"cannot roll {source_timeframe} up to {timeframe}: not a whole multiple"
        )
    ts = candles["ts_utc"].to_numpy(dtype="int64")
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise DataValidationError("candles must be strictly increasing in ts_utc to roll up")
    if len(ts) == 0:
        empty = pd.DataFrame(
            {c: candles[c].iloc[:0] for c in ("ts_utc", "open", "high", "low", "close", "volume")}
        )
        empty["gap_flag"] = np.zeros(0, dtype=bool)
        return empty, RollupReport(source_timeframe, timeframe, 0, 0, 0, 0, False, False)
    per_bucket = target // step
    bucket = ts // target * target
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(ts)])
    full = counts == per_bucket
    o = candles["open"].to_numpy(dtype="float64")
    h = candles["high"].to_numpy(dtype="float64")
    lo = candles["low"].to_numpy(dtype="float64")
    c = candles["close"].to_numpy(dtype="float64")
    v = candles["volume"].to_numpy(dtype="float64")
    ends = np.r_[starts[1:], len(ts)] - 1
    out_ts = bucket[starts][full]
    out = pd.DataFrame(
        {
            "ts_utc": out_ts,
            "open": o[starts][full],
            "high": np.maximum.reduceat(h, starts)[full],
            "low": np.minimum.reduceat(lo, starts)[full],
            "close": c[ends][full],
            "volume": np.add.reduceat(v, starts)[full],
        }
    )
    out["gap_flag"] = gap_flags(out_ts, target)
    report = RollupReport(
        source_timeframe,
        timeframe,
        len(ts),
        len(starts),
        int(full.sum()),
        int((~full).sum()),
        bool(not full[0]),
        bool(not full[-1]),
    )
    return out, report


def rollup_candles(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Roll canonical 1m candles up to ``timeframe`` (5m, 15m, 1h, 4h, 1d, ...).

    Only full buckets are kept; see :func:`rollup_with_report` for the counts of dropped ones.

    Raises:
        DataValidationError: see :func:`rollup_with_report`.
    """
    return rollup_with_report(candles, timeframe)[0]
