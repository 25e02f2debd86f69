from __future__ import annotations

import numpy as np
import pytest

from ita_vc.candles.schema import (
    TIMEFRAMES,
    TS_MAX_MS,
    TS_MIN_MS,
    format_step,
    infer_timeframe,
    median_step,
)
from ita_vc.errors import DataValidationError
from tests.candles.conftest import MIN, T0

DAY = 86_400_000


def test_median_step_is_one_of_the_steps_and_ignores_order_and_repeats():
    assert median_step([]) is None and median_step([T0, T0]) is None
    assert median_step([T0 + 2 * MIN, T0, T0 + MIN, T0 + MIN]) == MIN
    # an even number of steps: the lower median, never an average of two steps
    assert median_step([T0, T0 + MIN, T0 + 3 * MIN]) == MIN
    # weekends and holidays do not move the median of daily bars
    weekdays = [T0 + d * DAY for d in range(60) if d % 7 not in (5, 6)]
    assert median_step(weekdays) == DAY


@pytest.mark.parametrize(
    ("step", "text"),
    [
        (MIN, "1m"),
        (DAY, "1d"),
        (2 * MIN, "2m"),
        (2 * DAY, "2d"),
        (5 * 3_600_000, "5h"),
        (90_000, "90s"),
        (1500, "1500ms"),
    ],
)
def test_format_step(step, text):
    assert format_step(step) == text


@pytest.mark.parametrize("name", list(TIMEFRAMES))
def test_every_known_timeframe_is_inferred(name):
    step = TIMEFRAMES[name]
    assert infer_timeframe(T0 + np.arange(50) * step, "x.csv") == name


def test_inference_refuses_a_single_bar_and_unknown_spacings():
    with pytest.raises(
        DataValidationError,
        match="x.csv: cannot infer the timeframe from a single bar; pass --timeframe",
    ):
        infer_timeframe([T0], "x.csv")
    with pytest.raises(
        DataValidationError,
        match="x.csv: the median spacing of the bars is 2m, which is no known timeframe",
    ):
        infer_timeframe(T0 + np.arange(10) * 2 * MIN, "x.csv")


def test_the_timestamp_range_is_pandas_nanosecond_range():
    import pandas as pd

    assert pd.Timestamp(TS_MIN_MS, unit="ms") >= pd.Timestamp.min
    assert pd.Timestamp(TS_MAX_MS, unit="ms") <= pd.Timestamp.max
    assert pd.Timestamp(TS_MIN_MS - 1, unit="ms").as_unit("ms") < pd.Timestamp.min
    assert pd.Timestamp(TS_MAX_MS + 1, unit="ms").as_unit("ms") > pd.Timestamp.max.as_unit("ms")
