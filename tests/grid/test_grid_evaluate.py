"""One process, several searches: each evaluation context gets its own evaluator and results.

A long-lived worker (a Dask worker serving one grid after another, or this process calling
``run_grid`` twice) must never evaluate with a previous search's candles: evaluators are keyed
by the context's ``engine_params_hash``, not by where the context happens to live in memory.
"""

from __future__ import annotations

import gc
import pickle

import pandas as pd
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.grid import (
    EngineSettings,
    EvalContext,
    evaluate_batch,
    evaluation_context,
    init_worker,
    parse_grid,
    run_grid,
)
from ita_vc.grid import evaluate as evaluate_module
from ita_vc.grid.evaluate import evaluate_in_worker
from ita_vc.rules.validate import parse_rule
from tests.helpers import walk_candles

CATALOG = load_catalog()
RULE_TEXT = b"""setup_id: g
version: "1.0"
indicators: [{name: ma_cross, params: {fast: 10, slow: 20}}]
direction: long-short
"""
BASE_RULE = {"setup_id": "g", "version": "1.0", "direction": "long-short"}


@pytest.fixture(scope="module")
def two_markets():
    """The rule, run params and two different sets of prepared candles."""
    rule, problems = parse_rule(
        RULE_TEXT, "g.yaml", catalog=CATALOG, rules_root=None, require_hash=False
    )
    assert not problems
    params = parse_params({"data": {"start": "2025-01-05"}, "backtest": {"warmup_bars": 50}})
    markets = [
        prepare_candles(
            walk_candles(2000, step=3_600_000, seed=seed, vol=4e-3, spread=0.1), params
        )[0]
        for seed in (3, 11)
    ]
    return rule, params, markets


def _request():
    return parse_grid(
        {
            "indicators": [{"name": "ma_cross", "params": {"fast": [4, 8, 12], "slow": [20, 40]}}],
            "targets": {"sl_pct": [None, 1.5], "tp_pct": [None, 3.0]},
            "top_k": 6,
            "top_trades_n": 1,
            "batch_size": 4,
        },
        CATALOG,
    )


def _variants():
    request = _request()
    return [v for b in request.base_variants() for v in request.expand(b)]


def _settings(rule, params):
    return EngineSettings(
        direction=rule.direction,
        sizing=rule.sizing,
        fee_rate=params.backtest.fee_rate,
        slip=params.backtest.slip,
        init_cash=params.backtest.init_cash,
    )


def _single(prepared, params, variants):
    """Each variant's numbers as a single backtest gives them."""
    out = []
    for variant in variants:
        m = run_backtest(prepared, variant.rule(BASE_RULE), params).metrics
        out.append(
            (m["Total Return [%]"], m["Max. Drawdown [%]"], m["Num. Trades"], m["Sharpe Ratio"])
        )
    return out


def _shipped(context):
    """A copy of ``context`` as a worker receives it (pickled, unpickled: another object)."""
    return pickle.loads(pickle.dumps(context))  # noqa: S301 - bytes made just above


def _numbers(results):
    return [(r.total_return, r.max_drawdown, r.trades, r.sharpe) for r in results]


def test_two_contexts_in_one_process_each_get_their_own_results(two_markets):
    rule, params, (first, second) = two_markets
    variants = _variants()
    a = evaluation_context(first, _settings(rule, params), params)
    b = evaluation_context(second, _settings(rule, params), params)
    assert a.key != b.key  # other candles: another engine_params_hash
    got_a = _numbers(evaluate_batch(variants, a))
    got_b = _numbers(evaluate_batch(variants, b))
    again_a = _numbers(evaluate_batch(variants, a))
    assert got_a == again_a == _single(first, params, variants)
    assert got_b == _single(second, params, variants)
    assert got_a != got_b


def test_a_freed_context_is_not_reused_for_the_next_one(two_markets):
    """The Dask scenario: a worker frees one search's context and receives the next one,
    possibly at the same address. Each is evaluated on its own candles."""
    rule, params, markets = two_markets
    variants = _variants()
    got = []
    for prepared in markets:
        # a fresh copy, as a worker unpickles it; the previous one is gone
        context = _shipped(evaluation_context(prepared, _settings(rule, params), params))
        got.append(_numbers(evaluate_batch(variants, context)))
        del context
        gc.collect()
    assert got == [_single(prepared, params, variants) for prepared in markets]


def test_the_same_key_reuses_the_evaluator_and_its_cache(two_markets):
    rule, params, (first, _second) = two_markets
    context = evaluation_context(first, _settings(rule, params), params)
    evaluate_batch(_variants()[:2], context)
    evaluator = evaluate_module._EVALUATORS[context.key]
    copy = _shipped(context)  # another object, the same key
    evaluate_batch(_variants()[2:], copy)
    assert {context.key: evaluator} == evaluate_module._EVALUATORS  # one, reused
    assert evaluator.cache  # indicator states computed once, kept across batches


def test_a_pool_worker_evaluates_only_the_context_it_was_set_up_with(two_markets):
    rule, params, (first, second) = two_markets
    variants = _variants()
    a = evaluation_context(first, _settings(rule, params), params)
    b = evaluation_context(second, _settings(rule, params), params)
    init_worker(a)
    assert _numbers(evaluate_in_worker(variants, a.key)) == _single(first, params, variants)
    with pytest.raises(RuntimeError, match=rf"no grid evaluator for {b.key}"):
        evaluate_in_worker(variants, b.key)
    init_worker(b)
    assert _numbers(evaluate_in_worker(variants, b.key)) == _single(second, params, variants)


def test_context_is_typed_and_names_its_key(two_markets):
    rule, params, (first, _second) = two_markets
    context = evaluation_context(first, _settings(rule, params), params)
    assert isinstance(context, EvalContext)
    assert context.key.startswith("sha256:") and context.data_hash.startswith("sha256:")
    assert context.arrays.n_warm == int(first["warmup"].sum())
    assert context.settings.to_dict() == {
        "direction": rule.direction,
        "sizing": dict(rule.sizing),
        "fee_rate": params.backtest.fee_rate,
        "slip": params.backtest.slip,
        "init_cash": params.backtest.init_cash,
    }


def test_one_dask_worker_serves_two_grids_each_on_its_own_candles(two_markets):
    """The real scenario: a long-lived Dask worker (in this process) runs one grid, then
    another on other candles; each equals the same grid run locally."""
    import distributed

    rule, params, markets = two_markets
    local = [run_grid(prepared, rule, params, _request(), workers=1) for prepared in markets]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = [
            run_grid(prepared, rule, params, _request(), scheduler=cluster.scheduler_address)
            for prepared in markets
        ]
    for here, there in zip(local, remote, strict=True):
        pd.testing.assert_frame_equal(here.topk, there.topk)
        assert here.summary["engine_params_hash"] == there.summary["engine_params_hash"]
    assert not local[0].topk["Total Return [%]"].equals(local[1].topk["Total Return [%]"])
