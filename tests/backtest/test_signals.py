from __future__ import annotations

import numpy as np
import pytest

from ita_vc.backtest.signals import (
    combine_states,
    indicator_state,
    resolve_indicator_params,
    rule_states,
)
from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError


def _state(name, params, close, high=None, low=None):
    close = np.asarray(close, dtype=float)
    return indicator_state(
        name,
        params,
        close if high is None else np.asarray(high, float),
        close if low is None else np.asarray(low, float),
        close,
    ).tolist()


def test_sma_state_with_ties_and_warmup():
    # SMA(2): nan, 1.5, 2.5, 3, 2.5 ; close 1, 2, 3, 3, 2
    assert _state("sma", {"window": 2}, [1, 2, 3, 3, 2]) == [0, 1, 1, 0, -1]


def test_ma_cross_state():
    close = [1, 2, 3, 4, 3, 2, 1]
    fast = [np.nan, 1.5, 2.5, 3.5, 3.5, 2.5, 1.5]
    slow = [np.nan, np.nan, 2, 3, 10 / 3, 3, 2]
    expected = [
        0 if np.isnan(f) or np.isnan(s) or f == s else (1 if f > s else -1)
        for f, s in zip(fast, slow, strict=True)
    ]
    assert _state("ma_cross", {"fast": 2, "slow": 3}, close) == expected


def test_rsi_state_uses_its_bands():
    close = [10, 11, 12, 13, 14, 13, 12, 11, 10, 9]
    state = _state("rsi", {"window": 2, "lower": 30, "upper": 70}, close)
    assert state[:2] == [0, 0]
    assert state[2] == -1 and state[-1] == 1  # overbought after rises, oversold after falls


def test_bbands_state():
    close = [10, 10, 10, 10, 20, 0.5]
    state = _state("bbands", {"window": 3, "k": 1.0}, close)
    assert state[2:4] == [0, 0]  # equal closes: zero width bands, close == band: a tie
    assert state[4] == -1 and state[5] == 1


def test_atr_state_compares_with_the_previous_atr():
    high = [10, 11, 12, 13, 30, 13]
    low = [9, 10, 11, 12, 12, 1]
    close = [9.5, 10.5, 11.5, 12.5, 29, 2]
    state = _state("atr", {"window": 2, "k": 1.0}, close, high, low)
    assert state[:3] == [0, 0, 0]  # ATR[t-1] exists from bar 3
    assert state[4] == 1 and state[5] == -1


def test_combine_and_conflicts():
    long_, short = np.array([1, 1, 0, -1], np.int8), np.array([1, -1, 0, -1], np.int8)
    final, conflicting = combine_states([long_, short], 4)
    assert final.tolist() == [1, 0, 0, -1]
    assert conflicting.tolist() == [False, True, False, False]
    final, conflicting = combine_states([], 3)
    assert final.tolist() == [0, 0, 0] and not conflicting.any()


def test_resolve_params_fills_defaults_and_refuses_bad_ones():
    catalog = load_catalog()
    assert resolve_indicator_params([{"name": "rsi", "params": {"window": 5}}], catalog) == [
        ("rsi", {"window": 5, "lower": 30, "upper": 70})
    ]
    with pytest.raises(DataValidationError, match="unknown indicator 'macd'"):
        resolve_indicator_params([{"name": "macd"}], catalog)
    with pytest.raises(DataValidationError, match="outside the catalog range"):
        resolve_indicator_params([{"name": "sma", "params": {"window": 1}}], catalog)
    with pytest.raises(DataValidationError, match="fast < slow"):
        resolve_indicator_params([{"name": "ma_cross", "params": {"fast": 5, "slow": 5}}], catalog)


def test_rule_states_of_two_indicators():
    close = np.array([1.0, 2, 3, 4, 5, 4, 3])
    final, conflicting = rule_states(
        [("sma", {"window": 2}), ("ema", {"window": 2})], close, close, close
    )
    assert final.tolist()[1:5] == [1, 1, 1, 1] and final[5] == -1
    assert not conflicting.any()


def test_unimplemented_indicator():
    with pytest.raises(DataValidationError, match="no implementation"):
        indicator_state("vwap", {}, np.ones(3), np.ones(3), np.ones(3))
