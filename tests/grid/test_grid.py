"""Grid backtests: exact, ordered, guarded, resumable, distributable, memory-bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError
from ita_vc.grid import Variant, parse_grid, run_grid, variant_from_dict, variant_key
from ita_vc.rules.validate import parse_rule
from tests.helpers import walk_candles

CATALOG = load_catalog()
RULE_TEXT = b"""setup_id: g
version: "1.0"
indicators: [{name: ma_cross, params: {fast: 10, slow: 20}}]
direction: long-short
"""


def _candles(n=3000, seed=2):
    return walk_candles(n, step=3_600_000, seed=seed, vol=4e-3, spread=0.1)


@pytest.fixture(scope="module")
def setup():
    rule, problems = parse_rule(
        RULE_TEXT, "g.yaml", catalog=CATALOG, rules_root=None, require_hash=False
    )
    assert not problems
    params = parse_params({"data": {"start": "2025-01-05"}, "backtest": {"warmup_bars": 50}})
    prepared, _ = prepare_candles(_candles(), params)
    return prepared, rule, params


def _request(**overrides):
    raw = {
        "indicators": [
            {
                "name": "ma_cross",
                "params": {"fast": {"min": 4, "max": 16, "step": 4}, "slow": [20, 30, 40]},
            }
        ],
        "targets": {"sl_pct": [None, 1.5], "tp_pct": [None, 3.0]},
        "top_k": 8,
        "top_trades_n": 2,
        "batch_size": 5,
        **overrides,
    }
    return parse_grid(raw, CATALOG)


def test_top_k_rows_equal_single_backtests(setup):
    prepared, rule, params = setup
    outcome = run_grid(prepared, rule, params, _request(), workers=1)
    assert len(outcome.topk) == 8 and not outcome.partial
    for row in outcome.topk.to_dict("records")[:4]:
        variant = variant_from_dict(json.loads(row["params_json"]))
        single = run_backtest(
            prepared,
            variant.rule({"setup_id": "g", "version": "1.0", "direction": "long-short"}),
            params,
        )
        for name, value in single.metrics.items():
            assert row[name] == value or (value is None and pd.isna(row[name])), name
    assert set(outcome.trades["rank"]) == {1, 2}  # trades only for the best top_trades_n
    counts = outcome.summary["counts"]
    assert counts == {
        "stage_a_variants": 12,
        "stage_a_evaluated": 12,
        "stage_b_max": 48,
        "stage_b_evaluated": 48,
        "pruned": 0,
        "top_k": 8,
    }
    assert outcome.summary["grid_request_hash"].startswith("sha256:")


def test_ordering_and_tie_break(setup):
    prepared, rule, params = setup
    # stop-losses this wide never trigger: their variants tie with each other exactly
    request = _request(targets={"sl_pct": [90.0, 95.0, None], "tp_pct": [None]}, top_k=30)
    outcome = run_grid(prepared, rule, params, request, workers=1)
    returns = outcome.topk["Total Return [%]"].tolist()
    keys = outcome.topk["variant_key"].tolist()
    assert returns == sorted(returns, reverse=True)
    for i in range(len(keys) - 1):
        if returns[i] == returns[i + 1]:
            assert keys[i] < keys[i + 1]
    assert any(returns[i] == returns[i + 1] for i in range(len(returns) - 1))


def test_parallel_equals_serial(setup):
    prepared, rule, params = setup
    serial = run_grid(prepared, rule, params, _request(), workers=1)
    parallel = run_grid(prepared, rule, params, _request(), workers=2)
    pd.testing.assert_frame_equal(serial.topk, parallel.topk)


def test_interrupted_and_resumed_equals_uninterrupted(setup, tmp_path):
    prepared, rule, params = setup
    full = run_grid(prepared, rule, params, _request(), workers=1)
    checkpoint = tmp_path / "ckpt.json"
    first = run_grid(
        prepared, rule, params, _request(), workers=1, max_seconds=0, checkpoint=checkpoint
    )
    assert first.partial and first.topk["partial"].all()
    assert first.summary["counts"]["stage_a_evaluated"] == 5  # one batch, then the stop
    resumed = run_grid(
        prepared, rule, params, _request(), workers=1, resume=True, checkpoint=checkpoint
    )
    assert not resumed.partial
    pd.testing.assert_frame_equal(resumed.topk, full.topk)
    with pytest.raises(DataValidationError, match="another grid"):
        run_grid(
            prepared, rule, params, _request(top_k=3), workers=1, resume=True, checkpoint=checkpoint
        )


@pytest.mark.parametrize("stop_after", [2, 7])  # batches: inside Stage A (3), inside B
def test_should_stop_stops_after_the_batch_and_resumes_to_the_same_result(
    setup, tmp_path, stop_after
):
    prepared, rule, params = setup
    full = run_grid(prepared, rule, params, _request(), workers=1)
    checkpoint, polls = tmp_path / "ckpt.json", []

    def should_stop():
        polls.append(1)
        return len(polls) >= stop_after

    first = run_grid(
        prepared,
        rule,
        params,
        _request(),
        workers=1,
        checkpoint=checkpoint,
        should_stop=should_stop,
    )
    assert first.partial and first.summary["stop_reason"] == "interrupted"
    counts = first.summary["counts"]
    evaluated = counts["stage_a_evaluated"] + counts["stage_b_evaluated"]
    assert evaluated < counts["stage_a_variants"] + counts["stage_b_max"]
    if stop_after == 2:
        assert counts["stage_a_evaluated"] == 10 and counts["stage_b_evaluated"] == 0
    else:  # Stage A done (12), Stage B reuses 12 plain results, then 4 batches of 5
        assert counts["stage_a_evaluated"] == 12 and counts["stage_b_evaluated"] == 12 + 20
    resumed = run_grid(
        prepared, rule, params, _request(), workers=1, resume=True, checkpoint=checkpoint
    )
    assert not resumed.partial and resumed.summary["stop_reason"] == "complete"
    pd.testing.assert_frame_equal(resumed.topk, full.topk)


def test_dask_local_cluster_equals_local(setup):
    import distributed

    prepared, rule, params = setup
    local = run_grid(prepared, rule, params, _request(), workers=1)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        remote = run_grid(prepared, rule, params, _request(), scheduler=address)
    pd.testing.assert_frame_equal(local.topk, remote.topk)


def test_guards_refuse_up_front(setup):
    prepared, rule, params = setup
    with pytest.raises(DataValidationError, match=r"has 60 variants .* max_variants = 10"):
        run_grid(prepared, rule, params, _request(max_variants=10), workers=1)
    with pytest.raises(DataValidationError, match="GB of equity values .* max_compute_bytes"):
        run_grid(prepared, rule, params, _request(max_compute_bytes=1000), workers=1)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (
            {"indicators": [{"name": "ma_cross", "params": {"fast": {"min": 0, "max": 5}}}]},
            "never widens",
        ),
        ({"indicators": [{"name": "sma", "params": {"window": [1, 5]}}]}, "never widens"),
        ({"indicators": [{"name": "macd"}]}, "unknown indicator"),
        ({"indicators": [{"name": "sma", "params": {"span": 3}}]}, "unknown parameter"),
        ({"indicators": [{"name": "sma"}], "colour": 1}, "unknown key"),
        ({"indicators": [{"name": "sma"}], "targets": {"sl_pct": [-1]}}, "percent values"),
        ({"indicators": [{"name": "sma"}], "top_k": 0}, "positive"),
        ({"indicators": [{"name": "sma"}], "prune": {"max_dd": 1}}, "grid.prune"),
        ({}, "needs an `indicators` list"),
    ],
)
def test_bad_requests(raw, match):
    with pytest.raises(DataValidationError, match=match):
        parse_grid(raw, CATALOG)


def test_catalog_constraints_and_lazy_generation():
    request = _request()
    keys = [variant_key(v) for v in request.base_variants()]
    assert len(keys) == 12 and all(
        "fast=4" in k or "fast=8" in k or "fast=12" in k or "fast=16" in k for k in keys
    )
    crossed = parse_grid(
        {"indicators": [{"name": "ma_cross", "params": {"fast": [10, 30], "slow": [20, 40]}}]},
        CATALOG,
    )
    assert [v.key for v in crossed.base_variants()] == [  # fast < slow only
        "ma_cross(fast=10,slow=20)|sl=none|tp=none",
        "ma_cross(fast=10,slow=40)|sl=none|tp=none",
        "ma_cross(fast=30,slow=40)|sl=none|tp=none",
    ]
    variant = Variant((("sma", (("window", 5),)),), 1.0, None)
    assert variant.key == "sma(window=5)|sl=1|tp=none"
    assert variant.base.key.endswith("sl=none|tp=none")


def test_pruning(setup):
    prepared, rule, params = setup
    outcome = run_grid(prepared, rule, params, _request(prune={"min_trades": 10_000}), workers=1)
    assert outcome.summary["counts"]["pruned"] == 48 and outcome.topk.empty
    floor = run_grid(
        prepared, rule, params, _request(prune={"max_drawdown_floor": -20.0}), workers=1
    )
    assert 0 < floor.summary["counts"]["pruned"] < 48
    assert (floor.topk["Max. Drawdown [%]"] >= -20.0).all()


_RSS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np, pandas as pd
    from ita_vc.grid import parse_grid
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import prepare_candles
    from ita_vc.catalog import load_catalog
    from ita_vc.grid import run_grid
    from ita_vc.rules.validate import parse_rule
    n = 20000
    rng = np.random.default_rng(1)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 4e-3, n))), 2)
    df = pd.DataFrame({"ts_utc": 1735689600000 + np.arange(n, dtype=np.int64) * 60000,
                       "open": close, "high": close + 0.1, "low": close - 0.1,
                       "close": close, "volume": np.ones(n)})
    params = parse_params({"backtest": {"warmup_bars": 0}})
    prepared, _ = prepare_candles(df, params)
    rule, _ = parse_rule(b"setup_id: g\\nversion: '1.0'\\nindicators: [{name: sma}]\\n", "g",
                         catalog=load_catalog(), rules_root=None, require_hash=False)
    top = int(sys.argv[1])
    request = parse_grid({"indicators": [{"name": "sma", "params": {
        "window": {"min": 2, "max": 1 + top, "step": 1}}}], "top_k": 5, "batch_size": 50},
        load_catalog())
    run_grid(prepared, rule, params, request, workers=1)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def test_memory_does_not_grow_with_the_number_of_variants():
    small = int(
        subprocess.run(
            [sys.executable, "-c", _RSS, "50"], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    large = int(
        subprocess.run(
            [sys.executable, "-c", _RSS, "500"], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    assert large < small * 1.5, (small, large)  # 10x the variants, not 10x the memory


def test_sampled_variants_equal_single_backtests(setup):
    """Any variant (not only the top-K), one and two indicators, with and without SL/TP: the
    grid's evaluation gives the single backtest's numbers exactly."""
    from ita_vc.grid import EngineSettings, evaluate_batch, evaluation_context

    prepared, rule, params = setup
    request = parse_grid(
        {
            "indicators": [
                {"name": "ma_cross", "params": {"fast": [4, 8, 12], "slow": [20, 40]}},
                {"name": "sma", "params": {"window": [10, 50]}},
            ],
            "targets": {"sl_pct": [None, 0.8, 2.0], "tp_pct": [None, 1.5, 4.0]},
        },
        CATALOG,
    )
    single_request = parse_grid(
        {
            "indicators": [{"name": "ma_cross", "params": {"fast": [4, 8, 12], "slow": [20, 40]}}],
            "targets": {"sl_pct": [None, 0.8, 2.0], "tp_pct": [None, 1.5, 4.0]},
        },
        CATALOG,
    )
    variants = [
        v for r in (request, single_request) for b in r.base_variants() for v in r.expand(b)
    ]
    rng = np.random.default_rng(7)
    sample = [variants[i] for i in rng.choice(len(variants), size=30, replace=False)]
    settings = EngineSettings(
        direction=rule.direction,
        sizing=rule.sizing,
        fee_rate=params.backtest.fee_rate,
        slip=params.backtest.slip,
        init_cash=params.backtest.init_cash,
    )
    results = evaluate_batch(sample, evaluation_context(prepared, settings, params))
    base_rule = {"setup_id": "g", "version": "1.0", "direction": rule.direction}
    assert {len(v.indicators) for v in sample} == {1, 2}
    for variant, result in zip(sample, results, strict=True):
        m = run_backtest(prepared, variant.rule(base_rule), params).metrics
        assert (result.total_return, result.max_drawdown, result.trades, result.sharpe) == (
            m["Total Return [%]"],
            m["Max. Drawdown [%]"],
            m["Num. Trades"],
            m["Sharpe Ratio"],
        ), variant.key
