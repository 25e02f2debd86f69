"""What a person reads: durations as timedeltas, each metric with its precision."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ita_vc.backtest.format import format_duration, format_metric, format_number, metric_unit
from ita_vc.backtest.metrics import METRIC_NAMES


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 days 00:00:00"),
        (0.5, "0 days 00:00:00.500000"),
        (1.5, "0 days 00:00:02"),
        (2.5, "0 days 00:00:03"),
        (59.6, "0 days 00:01:00"),
        (64_854.545455, "0 days 18:00:55"),
        (49 * 86_400 + 22 * 3_600, "49 days 22:00:00"),
        (-90_061, "-1 days 01:01:01"),
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "-"),
    ],
)
def test_durations_read_as_timedeltas(seconds, text):
    if seconds is not None and seconds < 0:
        assert format_duration(seconds) == "-" + format_duration(-seconds)
        return
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_whole_seconds_print_as_pandas_timedelta(seconds):
    """backtesting.py prints pandas Timedeltas: for whole seconds the text is the same."""
    assert format_duration(seconds) == str(pd.Timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("Sharpe Ratio", -4.273603338079946, "-4.274"),
        ("Sortino Ratio", 0.1, "0.100"),
        ("Total Return [%]", -53.47358, "-53.47"),
        ("Total Return [%]", -0.0001, "0.00"),  # never "-0.00"
        ("Win Rate [%]", 100.0, "100.00"),
        ("Total Profit", -5347.356, "-5,347.36"),
        ("Init. Cash", 10_000.0, "10,000.00"),
        ("Expectancy", 1e-9, "0.00"),
        ("Num. Trades", 1234, "1,234"),
        ("Duration", 4_312_800.0, "49 days 22:00:00"),
        ("Start", "2025-01-10T00:00:00Z", "2025-01-10T00:00:00Z"),
        ("Calmar Ratio", None, "-"),
        ("Gross Exposure", 0.99401, "0.994"),
        ("Some Other", 12.3456789, "12.35"),
        ("Some Other", 7, "7"),
    ],
)
def test_each_metric_has_its_precision(name, value, text):
    assert format_metric(name, value) == text


def test_every_documented_metric_has_a_unit():
    units = {name: metric_unit(name) for name in METRIC_NAMES}
    assert "number" not in units.values(), units
    assert units["Max. Drawdown Duration"] == "duration" and units["SQN"] == "ratio"


@given(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(0, 6))
def test_format_number_round_trips_to_the_precision(value, decimals):
    text = format_number(value, decimals)
    assert not text.startswith("-0") or text.strip("-0.,") != ""
    if abs(value) < 1e15:
        assert float(text.replace(",", "")) == pytest.approx(
            round(value, decimals), abs=10**-decimals
        )
