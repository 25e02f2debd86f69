from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest import indicators as ind


def test_sma_is_pandas_rolling_mean_bit_for_bit():
    rng = np.random.default_rng(3)
    x = np.round(100 + np.cumsum(rng.normal(0, 1, 20_000)), 2)
    x[500:600] = 0.1
    x[900:950] = -3.3
    for n in (1, 2, 7, 20, 200):
        expected = pd.Series(x).rolling(n).mean().to_numpy()
        np.testing.assert_array_equal(ind.sma(x, n), expected)


def test_sma_of_equal_closes_is_exactly_that_close():
    x = np.array([0.1] * 30 + [0.3] * 25)
    out = ind.sma(x, 20)
    assert out[19] == 0.1 and out[29] == 0.1 and out[-1] == 0.3
    assert np.isnan(out[:19]).all()


def test_ema_seeded_with_the_sma():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])
    out = ind.ema(x, 3)
    alpha = 2 / 4
    seed = 2.0  # SMA of 1, 2, 3
    e3 = (4.0 - seed) * alpha + seed
    e4 = (5.0 - e3) * alpha + e3
    e5 = (3.0 - e4) * alpha + e4
    assert np.isnan(out[:2]).all()
    assert out[2:].tolist() == [seed, e3, e4, e5]


def test_rsi_wilder_by_hand():
    x = np.array([10.0, 11.0, 10.5, 12.0, 11.0])
    out = ind.rsi(x, 2)
    gain, loss = (1.0 + 0.0) / 2, (0.0 + 0.5) / 2  # changes +1, -0.5
    assert out[2] == 100 * gain / (gain + loss)
    gain, loss = (gain * 1 + 1.5) / 2, (loss * 1 + 0.0) / 2  # change +1.5
    assert out[3] == 100 * gain / (gain + loss)
    gain, loss = (gain * 1 + 0.0) / 2, (loss * 1 + 1.0) / 2  # change -1
    assert out[4] == 100 * gain / (gain + loss)
    assert np.isnan(out[:2]).all()


def test_rsi_is_50_when_nothing_moves():
    assert ind.rsi(np.full(10, 7.0), 3)[3:].tolist() == [50.0] * 7


def test_atr_by_hand():
    high = np.array([10.0, 11.0, 12.0, 11.5, 13.0])
    low = np.array([9.0, 9.5, 10.5, 10.0, 11.0])
    close = np.array([9.5, 10.5, 11.5, 10.5, 12.5])
    tr1 = max(11.0 - 9.5, abs(11.0 - 9.5), abs(9.5 - 9.5))
    tr2 = max(12.0 - 10.5, abs(12.0 - 10.5), abs(10.5 - 10.5))
    tr3 = max(11.5 - 10.0, abs(11.5 - 11.5), abs(10.0 - 11.5))
    tr4 = max(13.0 - 11.0, abs(13.0 - 10.5), abs(11.0 - 10.5))
    out = ind.atr(high, low, close, 2)
    first = (tr1 + tr2) / 2
    assert np.isnan(out[:2]).all()
    assert out[2] == first
    assert out[3] == (first * 1 + tr3) / 2
    assert out[4] == (out[3] * 1 + tr4) / 2


def test_bbands_population_std_and_equal_windows():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    lower, middle, upper = ind.bbands(x, 3, 2.0)
    std = math.sqrt(((2 - 3) ** 2 + 0 + (4 - 3) ** 2) / 3)
    assert middle[3] == 3.0 and upper[3] == 3.0 + 2 * std and lower[3] == 3.0 - 2 * std
    flat = ind.bbands(np.full(5, 0.1), 3, 2.0)
    assert flat[0][-1] == flat[1][-1] == flat[2][-1] == 0.1
    np.testing.assert_allclose(ind.rolling_std(x, 2)[1:], [0.5, 0.5, 0.5])


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_windows(bad):
    with pytest.raises(ValueError, match="window must be a positive whole number"):
        ind.sma(np.ones(5), bad)


def test_short_series_are_all_nan():
    assert np.isnan(ind.ema(np.ones(2), 5)).all()
    assert np.isnan(ind.rsi(np.ones(3), 5)).all()
    assert np.isnan(ind.atr(np.ones(3), np.ones(3), np.ones(3), 5)).all()
