"""The permutation test through the run's own compiled code (issue #16 (1))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import load_rule, prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.validation.permutation import (
    bar_arrays,
    draw_permutations,
    iter_permutation_batches,
    perm_context,
    permutation_test,
    permuted_hlc,
    permuted_returns,
    total_return_of,
)
from ita_vc.validation.stats import permute_bars

H = 3_600_000
RULE = {
    "setup_id": "t",
    "version": "1.0",
    "direction": "long-short",
    "indicators": [{"name": "ma_cross", "params": {"fast": 3, "slow": 12}}],
}
PARAMS = {
    "data": {"market": "binance-spot"},
    "backtest": {"warmup_bars": 20, "fee_pct": 0.0, "slippage_pct": 0.0},
}


def _candles(returns: np.ndarray) -> pd.DataFrame:
    close = 100.0 * np.exp(np.cumsum(np.r_[0.0, returns]))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "ts_utc": 1_735_689_600_000 + H * np.arange(len(close), dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": np.arange(len(close), dtype=np.float64),
        }
    )


def _prepared(frame: pd.DataFrame):
    params = parse_params({**PARAMS, "data": {"market": "binance-spot", "start": "2025-01-02"}})
    prepared, _ = prepare_candles(frame, params)
    return prepared, params


def test_the_array_path_is_the_runs_total_return_bit_for_bit():
    rng = np.random.default_rng(0)
    prepared, params = _prepared(_candles(rng.normal(0, 0.01, 600)))
    catalog = load_catalog()
    rule = load_rule(RULE, catalog)
    n_warm = int(prepared["warmup"].sum())
    context = perm_context(prepared, rule, params, catalog)
    ours = total_return_of(bar_arrays(prepared), context)
    assert ours == run_backtest(prepared, rule, params).metrics["Total Return [%]"]
    # a permuted series: the same through a whole run on its table
    perm = draw_permutations(5, 1, len(prepared) - n_warm - 1)[0]
    bars = permute_bars(bar_arrays(prepared), n_warm, perm)
    table = prepared.assign(
        open=bars.open, high=bars.high, low=bars.low, close=bars.close, volume=bars.volume
    )
    assert (
        total_return_of(bars, context)
        == (run_backtest(table, rule, params).metrics["Total Return [%]"])
    )


def test_permutations_are_drawn_in_order_from_the_seed():
    first = draw_permutations(3, 4, 10)
    rng = np.random.default_rng(3)
    assert first.tolist() == [rng.permutation(10).tolist() for _ in range(4)]
    assert draw_permutations(3, 4, 10).tolist() == first.tolist()
    # lazily in batches of any size: the same rows in the same order
    for size in (1, 3, 4, 10):
        rows = np.concatenate(list(iter_permutation_batches(3, 4, 10, size)))
        assert rows.tolist() == first.tolist()


def test_the_same_values_on_one_process_and_on_a_pool():
    rng = np.random.default_rng(2)
    prepared, params = _prepared(_candles(rng.normal(0, 0.01, 400)))
    catalog = load_catalog()
    rule = load_rule(RULE, catalog)
    one, values_one = permutation_test(prepared, rule, params, catalog, n=21, seed=4, workers=1)
    two, values_two = permutation_test(prepared, rule, params, catalog, n=21, seed=4, workers=2)
    assert one == two and values_one.tobytes() == values_two.tobytes()
    assert len(values_one) == 21


@pytest.mark.parametrize(("phi", "expect_edge"), [(0.0, False), (0.3, True)])
def test_a_trend_rule_finds_an_edge_only_where_returns_trend(phi, expect_edge):
    """Statistical sanity with fixed seeds: driftless random walk -> p > 0.2; AR(1) returns with
    phi = 0.3 -> p < 0.05."""
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 0.01, 3000)
    r = np.empty_like(noise)
    r[0] = noise[0]
    for k in range(1, len(r)):
        r[k] = phi * r[k - 1] + noise[k]
    prepared, params = _prepared(_candles(r))
    catalog = load_catalog()
    result, _values = permutation_test(
        prepared, load_rule(RULE, catalog), params, catalog, n=199, seed=0
    )
    if expect_edge:
        assert result.p_value < 0.05, result
    else:
        assert result.p_value > 0.2, result


@pytest.mark.parametrize("indicator", ["ma_cross", "atr"])
def test_the_workers_fast_path_is_permute_bars_bit_for_bit(indicator):
    rng = np.random.default_rng(9)
    prepared, params = _prepared(_candles(rng.normal(0, 0.01, 500)))
    catalog = load_catalog()
    params_of = {"ma_cross": {"fast": 3, "slow": 12}, "atr": {"window": 5, "k": 1.0}}
    rule = load_rule(
        {**RULE, "indicators": [{"name": indicator, "params": params_of[indicator]}]}, catalog
    )
    context = perm_context(prepared, rule, params, catalog)
    n_warm = context.n_warm
    for perm in draw_permutations(1, 3, len(prepared) - n_warm - 1):
        full = permute_bars(context.bars, n_warm, perm)
        fast = permuted_hlc(context.bars, n_warm, context.moves, perm)
        assert fast.close.tobytes() == full.close.tobytes()
        if indicator == "atr":
            assert fast.high.tobytes() == full.high.tobytes()
            assert fast.low.tobytes() == full.low.tobytes()
        assert permuted_returns(perm[None, :], context) == [total_return_of(full, context)]
