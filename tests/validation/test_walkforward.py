"""Walk-forward (issue #16 (4)), first version: boundaries, the chosen variant, chaining."""

from __future__ import annotations

import numpy as np
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import load_rule, prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError
from ita_vc.grid import parse_grid, run_grid
from ita_vc.validation.stats import wfo_windows
from ita_vc.validation.walkforward import annualised, walk_forward, window_frame
from tests.validation.test_permutation import RULE, _candles

GRID = {
    "indicators": [{"name": "ma_cross", "params": {"fast": [3, 5], "slow": [12, 20]}}],
    "top_k": 4,
}


@pytest.fixture(scope="module")
def setup():
    r = np.random.default_rng(2).normal(0.0002, 0.01, 1_400)
    params = parse_params(
        {"data": {"market": "binance-spot", "start": "2025-01-02"}, "backtest": {"warmup_bars": 20}}
    )
    prepared, _ = prepare_candles(_candles(r), params)
    catalog = load_catalog()
    rule = load_rule(RULE, catalog)
    return prepared, params, rule, parse_grid(GRID, catalog, rule)


@pytest.mark.parametrize("mode", ["rolling", "anchored"])
def test_segments_follow_the_windows_and_chain_the_equity(setup, mode):
    prepared, params, rule, request = setup
    n_warm = int(prepared["warmup"].sum())
    result = walk_forward(
        prepared,
        rule,
        params,
        request,
        windows=4,
        in_sample_ratio=3,
        mode=mode,
        objective="Total Return [%]",
        min_bars=20,
    )
    ts = prepared["ts_utc"].to_numpy()[n_warm:]
    windows = wfo_windows(len(ts), 4, 3, mode)
    assert [s.out_sample_start for s in result.segments] == [int(ts[w.out_start]) for w in windows]
    assert [s.in_sample_start for s in result.segments] == [int(ts[w.in_start]) for w in windows]
    assert result.segments[-1].out_sample_end == int(ts[-1]) + 3_600_000  # the range end
    growth = np.prod([1 + s.return_ / 100 for s in result.segments])
    assert result.final_equity == pytest.approx(params.backtest.init_cash * growth)
    # segment 0: the in-sample grid's best by Total Return, backtested out of sample
    w = windows[0]
    grid = run_grid(
        window_frame(prepared, n_warm, w.in_start, w.in_end, 20),
        rule,
        params,
        request,
        keep_partial=False,
    )
    best = grid.topk.sort_values(["Total Return [%]", "variant_key"], ascending=[False, True]).iloc[
        0
    ]
    assert result.segments[0].variant_key == best["variant_key"]
    assert result.segments[0].in_sample_return == best["Total Return [%]"]
    # the stitched out-of-sample run: every out-of-sample bar once, in order, one equity line
    assert result.ts.tolist() == ts[windows[0].out_start :].tolist()
    assert result.equity[-1] == result.final_equity
    assert result.metrics["Total Return [%]"] == pytest.approx(
        (result.final_equity / params.backtest.init_cash - 1) * 100, rel=1e-12
    )
    assert result.metrics["Total Profit"] == pytest.approx(
        result.final_equity - params.backtest.init_cash
    )
    assert result.metrics["Num. Trades"] >= 1


def test_windows_shorter_than_the_rule_are_refused(setup):
    prepared, params, rule, request = setup
    with pytest.raises(DataValidationError, match="shorter than the rule's longest indicator"):
        walk_forward(
            prepared,
            rule,
            params,
            request,
            windows=200,
            in_sample_ratio=3,
            mode="rolling",
            objective="Total Return [%]",
            min_bars=20,
        )


def test_annualised():
    assert annualised(10.0, 365) == pytest.approx(0.1)
    assert annualised(10.0, 0) is None and annualised(-100.0, 10) is None
    assert annualised(21.0, 730) == pytest.approx(0.1)


def test_a_window_frame_is_a_run_starting_there(setup):
    prepared, params, rule, _request = setup
    n_warm = int(prepared["warmup"].sum())
    frame = window_frame(prepared, n_warm, 100, 300, 20)
    assert int(frame["warmup"].sum()) == 20 and len(frame) == 220
    assert frame["ts_utc"].iloc[20] == prepared["ts_utc"].iloc[n_warm + 100]
    run_backtest(frame, rule, params)  # a valid prepared frame
