"""Engine 1.0's reports are frozen: a stage pinned to ``--engine 1.0`` writes what ita-vc 0.3
wrote, byte for byte, so runs recorded before the readable reports still reproduce.

``tests/fixtures/report_v1_0.3.0.md`` was written by ita-vc 0.3.0's ``render_report_md`` (commit
31e38d0) for the backtest below; it is the reference, not a value this code produced.
"""

from __future__ import annotations

from pathlib import Path

from ita_vc.backtest import report_v1
from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import load_rule, prepare_candles, run_backtest
from ita_vc.catalog import load_catalog
from ita_vc.grid import parse_grid, run_grid
from ita_vc.pipeline.outputs import DirSink, write_grid
from tests.helpers import MIN, walk_candles

FIXTURE = Path(__file__).parent.parent / "fixtures" / "report_v1_0.3.0.md"
RULE = {
    "setup_id": "t",
    "version": "1.0",
    "indicators": [{"name": "ma_cross", "params": {"fast": 3, "slow": 8}}],
    "targets": {"sl_pct": 2.0, "tp_pct": None},
}
PARAMS = {"data": {"market": "binance-spot", "symbol": "BTCUSDT"}, "backtest": {"warmup_bars": 0}}


def _result():
    candles = walk_candles(3000, step=MIN, seed=0, vol=2e-3, spread=0.05)
    return run_backtest(candles, RULE, parse_params(PARAMS, engine="1.0"))


def test_report_md_of_engine_10_is_0_3_0s_byte_for_byte():
    result = _result()
    assert result.summary["engine_version"] == "1.0"
    text = report_v1.render_report_md(result.summary, result.metrics)
    assert text == FIXTURE.read_text(encoding="utf-8")
    # raw values: the readable format is engine 1.1's
    assert "| Duration | 179,940 |" in text and "| Sharpe Ratio | -14.3746 |" in text


def test_the_grid_under_engine_10_writes_0_3_0s_report_table(tmp_path):
    candles = walk_candles(3000, step=MIN, seed=0, vol=2e-3, spread=0.05)
    catalog = load_catalog()
    rule = load_rule(RULE, catalog)
    grid = {
        "indicators": [{"name": "ma_cross", "params": {"fast": [3, 4], "slow": [8]}}],
        "top_k": 2,
        "top_trades_n": 1,
    }
    outcomes = {}
    for engine in ("1.0", None):
        params = parse_params(PARAMS, engine=engine)
        prepared, _ = prepare_candles(candles, params)
        outcome = run_grid(prepared, rule, params, parse_grid(grid, catalog, rule), workers=1)
        out = tmp_path / str(engine)
        write_grid(outcome, DirSink(out), timings=False, engine=params.engine)
        outcomes[engine] = (outcome, out)
    old, old_dir = outcomes["1.0"]
    new, new_dir = outcomes[None]
    # each row's 1.0 table is 0.3.0's table of that variant's single backtest
    row = old.topk.set_index("variant_key").loc["ma_cross(fast=3,slow=8)|sl=none|tp=none"]
    no_targets = {**RULE, "targets": {"sl_pct": None, "tp_pct": None}}
    single = run_backtest(candles, no_targets, parse_params(PARAMS, engine="1.0"))
    assert row["report_table_md"] == report_v1.metrics_table_md(single.metrics)
    assert "| Duration | " in old.topk.iloc[0]["report_table_md"]
    assert " days " not in old.topk.iloc[0]["report_table_md"]
    assert " days " in new.topk.iloc[0]["report_table_md"]
    # engine 1.0 writes no charts; 1.1 adds them
    assert sorted(p.name for p in old_dir.iterdir()) == [
        "report.md",
        "summary.json",
        "topk.parquet",
        "trades.parquet",
    ]
    assert {"heatmap.png", "distribution.png", "report.html"} <= {p.name for p in new_dir.iterdir()}
    # the numbers are the same
    assert old.topk["Total Return [%]"].tolist() == new.topk["Total Return [%]"].tolist()
