from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import load_rule, prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError, RuleValidationError
from ita_vc.rules.validate import compute_params_hash
from tests.helpers import MIN, walk_candles

RULE = {
    "setup_id": "t",
    "version": "1.0",
    "indicators": [{"name": "ma_cross", "params": {"fast": 3, "slow": 8}}],
}


def candles(n=3000, step=MIN, seed=0):
    return walk_candles(n, step=step, seed=seed, vol=2e-3, spread=0.05)


def test_rule_from_mapping_path_and_rule_agree(tmp_path):
    catalog = load_catalog()
    from_mapping = load_rule(RULE, catalog)
    path = tmp_path / "r.yaml"
    import yaml

    path.write_text(yaml.safe_dump(RULE))
    from_path = load_rule(path, catalog)
    assert from_mapping.params_hash == from_path.params_hash == compute_params_hash(RULE)
    assert load_rule(from_path, catalog) is from_path
    assert from_path.direction == "long-short" and from_path.sizing == {"mode": "all_in"}
    assert from_path.targets == {"tp_pct": None, "sl_pct": None}
    wrong = dict(RULE, params_hash="sha256:" + "0" * 64)
    with pytest.raises(RuleValidationError, match="params_hash"):
        load_rule(wrong, catalog)
    with pytest.raises(RuleValidationError, match="cannot read"):
        load_rule(tmp_path / "missing.yaml", catalog)


def test_result_shapes_and_summary():
    result = run_backtest(candles(), RULE, {"backtest": {"warmup_bars": 0}})
    assert list(result.trades.columns) == [
        "entry_ts",
        "exit_ts",
        "direction",
        "qty",
        "entry_price",
        "exit_price",
        "entry_fee",
        "exit_fee",
        "pnl",
        "return_pct",
        "exit_reason",
        "equity_before",
    ]
    # under an engine 1.0 pin the table keeps 0.3's columns (byte-identical outputs)
    pinned = run_backtest(
        candles(), RULE, parse_params({"backtest": {"warmup_bars": 0}}, engine="1.0")
    )
    assert "equity_before" not in pinned.trades.columns
    assert list(result.fills.columns) == [
        "ts_utc",
        "side",
        "qty",
        "price",
        "fee",
        "slippage",
        "pnl_realized",
        "borrow_cost",
    ]
    assert list(result.equity.columns) == ["ts_utc", "equity"]
    assert list(result.drawdown.columns) == ["ts_utc", "drawdown"]
    assert result.metrics["Num. Trades"] == len(result.trades) > 10
    s = result.summary
    assert s["setup_id"] == "t" and s["rule_version"] == "v1.0"
    assert s["config_hash"].startswith("sha256:") and s["data_hash"].startswith("sha256:")
    assert s["range"]["bars"] == 3000 and s["timeframe"] == "1m"
    assert set(result.trades["exit_reason"]) <= {"signal", "end"}
    assert (result.fills["borrow_cost"] == 0).all()


def test_range_warmup_and_rollup():
    df = candles(6000)
    params = {
        "data": {"timeframe": "5m", "start": "2025-01-01T05:00:00", "end": "2025-01-01T10:00:00"},
        "backtest": {"warmup_bars": 20},
    }
    result = run_backtest(df, RULE, params)
    r = result.summary["range"]
    assert (r["first_bar"], r["last_bar"]) == ("2025-01-01T05:00:00Z", "2025-01-01T09:55:00Z")
    assert r["bars"] == 60 and r["warmup_bars"] == 20
    assert result.summary["rollup"]["timeframe"] == "5m"
    prepared, report = prepare_candles(
        df, __import__("ita_vc.backtest.params", fromlist=["parse_params"]).parse_params(params)
    )
    assert int(prepared["warmup"].sum()) == 20 and report["bars"] == 60
    again = run_backtest(prepared, RULE, params)  # prepared candles give the same result
    assert again.metrics == result.metrics
    assert again.summary["data_hash"] == result.summary["data_hash"]


def _first_edge(close: pd.Series, start: int, prev_known: bool) -> int:
    """Independent: pandas SMAs, sign states, first edge at or after ``start``."""
    state = np.sign(close.rolling(3).mean() - close.rolling(8).mean()).fillna(0).to_numpy()
    prev = state[start - 1] if prev_known and start > 0 else 0
    for t in range(start, len(state)):
        if state[t] != prev and state[t] != 0:
            return t
        prev = state[t]
    raise AssertionError("no edge")


def test_warm_up_states_decide_the_first_edge():
    df = candles(400)
    with_warmup = run_backtest(
        df, RULE, {"data": {"start": "2025-01-01T02:00:00"}, "backtest": {"warmup_bars": 200}}
    )
    without = run_backtest(
        df.iloc[120:].reset_index(drop=True), RULE, {"backtest": {"warmup_bars": 0}}
    )
    assert with_warmup.summary["range"]["warmup_bars"] == 120
    ts = df["ts_utc"].to_numpy()
    assert with_warmup.trades["entry_ts"].iloc[0] == ts[_first_edge(df["close"], 120, True)]
    tail = df["close"].iloc[120:].reset_index(drop=True)
    assert without.trades["entry_ts"].iloc[0] == ts[120 + _first_edge(tail, 0, False)]


def test_same_inputs_same_outputs_bit_for_bit(tmp_path):
    from ita_vc.pipeline.outputs import DirSink, write_backtest, write_report

    paths = []
    for name in ("a", "b"):
        result = run_backtest(candles(), RULE, {"backtest": {"warmup_bars": 0}})
        sink = DirSink(tmp_path / name)
        write_backtest(result, sink, sink)
        write_report(
            result.summary,
            result.metrics,
            result.equity,
            result.drawdown,
            sink,
            trades=result.trades,
            candles=result.candles_used,
        )
        paths.append(tmp_path / name)
    files = sorted(p.name for p in paths[0].iterdir())
    assert files == [
        "drawdown.parquet",
        "drawdown.png",
        "equity.parquet",
        "equity.png",
        "fills.parquet",
        "metrics.json",
        "price.png",
        "report.html",
        "report.md",
        "summary.json",
        "trades.parquet",
    ]
    for name in files:
        assert (paths[0] / name).read_bytes() == (paths[1] / name).read_bytes(), name


def test_empty_range_and_zero_trades_still_report():
    df = candles(100)
    flat = dict(RULE, indicators=[])
    result = run_backtest(df, flat, {"backtest": {"warmup_bars": 0}})
    assert result.metrics["Num. Trades"] == 0 and result.metrics["Total Return [%]"] == 0.0
    gap = pd.concat([df.iloc[:10], df.iloc[60:]])
    empty = run_backtest(
        gap, RULE, {"data": {"start": "2025-01-01T00:20:00", "end": "2025-01-01T00:40:00"}}
    )
    assert empty.summary["range"]["bars"] == 0 and empty.metrics["Start"] is None


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"rule": {"version": 1.1}}, r"is a number .* quote it"),
        ({"rule": {"version": "1"}}, "not a version"),
        ({"bogus": {}}, "unknown section"),
        ({"backtest": {"fee": 1}}, "unknown key"),
        ({"backtest": {"fee_pct": -0.1}}, "fee_pct must be >= 0"),
        ({"backtest": {"init_cash": 0}}, "init_cash must be > 0"),
        ({"backtest": {"warmup_bars": -1}}, "warmup_bars"),
        ({"backtest": {"slippage_pct": "a"}}, "must be a number"),
        ({"data": {"start": "2025-02-01", "end": "2025-01-01"}}, "must be before"),
        ({"data": {"start": "yesterday"}}, "not an ISO date"),
        ({"data": {"timeframe": "7m"}}, "unknown timeframe"),
        ({"data": {"start": "2030-01-01"}}, "outside the data"),
        ({"data": {"end": "2020-01-01"}}, "outside the data"),
        ({"data": {"timeframe": "1m"}}, None),
    ],
)
def test_bad_params_fail_before_any_computation(params, match):
    df = candles(50, step=5 * MIN)
    if match is None:
        with pytest.raises(DataValidationError, match="coarser than the requested 1m"):
            run_backtest(df, RULE, params)
        return
    with pytest.raises(DataValidationError, match=match):
        run_backtest(df, RULE, params)


def test_bad_rules_and_budget():
    df = candles(50)
    with pytest.raises(DataValidationError, match="budget 20000 is larger"):
        run_backtest(df, dict(RULE, sizing={"mode": "strategy_compound", "budget": 20000}), {})
    with pytest.raises(RuleValidationError, match="unknown parameter"):
        run_backtest(df, dict(RULE, indicators=[{"name": "sma", "params": {"span": 3}}]), {})
    with pytest.raises(RuleValidationError, match="unknown indicator"):
        run_backtest(df, dict(RULE, indicators=[{"name": "macd"}]), {})


def test_futures_default_fee():
    result = run_backtest(candles(100), RULE, {"data": {"market": "bybit-futures"}})
    assert result.summary["fee_pct"] == 0.1
    spot = run_backtest(candles(100), RULE, {"data": {"market": "binance-spot"}})
    assert spot.summary["fee_pct"] == 0.075


def test_missing_columns():
    with pytest.raises(DataValidationError, match="missing column"):
        run_backtest(candles(10).drop(columns="close"), RULE, {})
