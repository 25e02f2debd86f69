from __future__ import annotations

import numpy as np
import pytest

from ita_vc.candles.validate import format_ts, validate_candles
from ita_vc.errors import DataValidationError
from tests.candles.conftest import MIN, T0, candles


def _with_rows(df):
    return df.assign(_row=np.arange(1, len(df) + 1))


def test_a_valid_table_passes():
    validate_candles(_with_rows(candles(20)), MIN, "x.csv")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: d.assign(open=[np.nan, *d["open"].tolist()[1:]]),
            r"1 row\(s\) with a missing, NaN or non-numeric price: row 1 \(2025-01-01T00:00:00Z\)",
        ),
        (lambda d: d.assign(low=[-1.0, *d["low"].tolist()[1:]]), r"with a price <= 0: row 1"),
        (
            lambda d: d.assign(volume=[-1.0, *d["volume"].tolist()[1:]]),
            r"with a negative volume: row 1 \(2025-01-01T00:00:00Z\) volume=-1.0",
        ),
        (
            lambda d: d.assign(volume=[np.nan, *d["volume"].tolist()[1:]]),
            r"missing or non-numeric volume",
        ),
        (lambda d: d.assign(high=d["low"]), r"10 row\(s\) with high < max\(open, close\)"),
        (lambda d: d.assign(low=d["high"]), r"with low > min\(open, close\)"),
        (lambda d: d.assign(ts_utc=d["ts_utc"] + 1), r"not aligned to the timeframe \(60000 ms\)"),
    ],
)
def test_each_rule_names_its_first_rows(mutate, match):
    with pytest.raises(DataValidationError, match=match) as info:
        validate_candles(_with_rows(mutate(candles(10))), MIN, "x.csv")
    assert str(info.value).startswith("x.csv: invalid candles, nothing was written")


def test_only_the_first_rows_are_listed_and_all_rules_reported():
    df = candles(12)
    df = df.assign(high=df["low"], volume=-df["volume"] - 1)
    with pytest.raises(DataValidationError) as info:
        validate_candles(_with_rows(df), MIN, "x.csv")
    message = str(info.value)
    assert "(and 7 more)" in message
    assert "negative volume" in message and "high < max" in message


def test_format_ts():
    assert format_ts(T0) == "2025-01-01T00:00:00Z"
    assert format_ts(T0 + 5) == "2025-01-01T00:00:00.005Z"
