from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ita_vc.candles import rollup_candles, rollup_with_report
from ita_vc.errors import DataValidationError
from tests.candles.conftest import MIN, T0, candles

FIVE = 5 * MIN


def test_hand_computed_5m_with_partial_buckets_at_both_ends_and_a_hole():
    # bars from 00:03 to 00:21 (partial 00:00 and 00:20 buckets), minute 00:12 missing
    minutes = [m for m in range(3, 22) if m != 12]
    df = pd.DataFrame(
        {
            "ts_utc": [T0 + m * MIN for m in minutes],
            "open": [float(m) for m in minutes],
            "high": [m + 0.5 for m in minutes],
            "low": [m - 0.5 for m in minutes],
            "close": [m + 0.25 for m in minutes],
            "volume": [1.0] * len(minutes),
        }
    )
    out, report = rollup_with_report(df, "5m")
    # full buckets: 00:05 (5..9) and 00:15 (15..19); 00:00, 00:10 (hole) and 00:20 dropped
    assert out["ts_utc"].tolist() == [T0 + FIVE, T0 + 3 * FIVE]
    assert out["open"].tolist() == [5.0, 15.0]
    assert out["high"].tolist() == [9.5, 19.5]
    assert out["low"].tolist() == [4.5, 14.5]
    assert out["close"].tolist() == [9.25, 19.25]
    assert out["volume"].tolist() == [5.0, 5.0]
    assert out["gap_flag"].tolist() == [False, True]  # 00:10 is missing between them
    assert (report.buckets, report.emitted, report.dropped) == (5, 2, 3)
    assert report.dropped_first and report.dropped_last
    assert report.to_dict()["dropped_partial_buckets"] == 3


def test_buckets_are_utc_aligned():
    start = T0 - 90 * MIN  # 22:30 the day before
    df = candles(3 * 1440, start=start)
    daily = rollup_candles(df, "1d")
    assert (daily["ts_utc"] % 86_400_000 == 0).all()
    assert daily["ts_utc"].tolist() == [T0, T0 + 86_400_000]  # partial first/last days dropped
    four = rollup_candles(df, "4h")
    assert (four["ts_utc"] % (4 * 3_600_000) == 0).all()
    assert four["ts_utc"].iloc[0] == T0  # 22:30-23:59 is a partial 20:00 bucket


def test_matches_an_independent_pandas_resample():
    df = candles(5000, seed=3)
    df = df.drop(index=[100, 101, 2500, 4999]).reset_index(drop=True)
    ours = rollup_candles(df, "15m")
    idx = pd.to_datetime(df["ts_utc"], unit="ms", utc=True)
    grouped = df.set_index(idx).resample("15min", origin="epoch")
    theirs = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
            "n": grouped["close"].count(),
        }
    )
    theirs = theirs[theirs["n"] == 15]
    assert ours["ts_utc"].tolist() == (theirs.index.as_unit("ms").asi8).tolist()
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(ours[col].to_numpy(), theirs[col].to_numpy())


def test_rollup_of_a_rollup_and_identity():
    df = candles(600)
    assert rollup_with_report(df, "1m")[1].dropped == 0
    five = rollup_candles(df, "5m")
    fifteen_direct = rollup_candles(df, "15m")
    fifteen_via_five, _ = rollup_with_report(five, "15m", source_timeframe="5m")
    pd.testing.assert_frame_equal(fifteen_direct, fifteen_via_five)


def test_empty_input_and_errors():
    out, report = rollup_with_report(candles(0), "1h")
    assert len(out) == 0 and report.emitted == 0 and list(out.columns)[-1] == "gap_flag"
    with pytest.raises(DataValidationError, match="not a whole multiple"):
        rollup_with_report(candles(10), "5m", source_timeframe="3m")
    with pytest.raises(DataValidationError, match="unknown timeframe"):
        rollup_candles(candles(10), "7m")
    shuffled = candles(10).iloc[::-1]
    with pytest.raises(DataValidationError, match="strictly increasing"):
        rollup_candles(shuffled, "5m")


def test_deterministic():
    df = candles(3000, seed=9)
    a, b = rollup_candles(df, "1h"), rollup_candles(df.copy(), "1h")
    pd.testing.assert_frame_equal(a, b)
