"""What a person reads in report.md and the grid report: each metric with its precision,
durations as timedeltas; the files (metrics.json) keep the exact values."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import pandas as pd

from ita_vc.backtest.report import (
    CHART_LINES_MD,
    format_value,
    metrics_table_md,
    render_report_md,
)
from ita_vc.pipeline.outputs import DirSink, write_grid

METRICS = {
    "Start": "2025-01-04T00:00:00Z",
    "Duration": 4_312_800.0,
    "Init. Cash": 10_000.0,
    "Total Profit": -736.1043140066286,
    "Total Return [%]": -4.273603338079946,
    "Max. Drawdown Duration": 633_600.0,
    "Avg. Trade Duration": 61_854.545454545456,
    "Num. Trades": 11,
    "SQN": -2.0657660872388455,
    "Sharpe Ratio": -11.927810135150319,
    "Calmar Ratio": None,
}


def _cells(table: str) -> dict[str, str]:
    return dict(re.findall(r"^\| (.+?) \| (.+?) \|$", table, re.M)[1:])


def test_the_metrics_table_formats_each_metric():
    cells = _cells(metrics_table_md(METRICS))
    assert cells == {
        "Start": "2025-01-04T00:00:00Z",
        "Duration": "49 days 22:00:00",
        "Init. Cash": "10,000.00",
        "Total Profit": "-736.10",
        "Total Return [%]": "-4.27",
        "Max. Drawdown Duration": "7 days 08:00:00",
        "Avg. Trade Duration": "0 days 17:10:55",
        "Num. Trades": "11",
        "SQN": "-2.066",
        "Sharpe Ratio": "-11.928",
        "Calmar Ratio": "-",
    }


def test_format_value_with_and_without_a_metric_name():
    assert format_value(-4.273603338079946, "Total Return [%]") == "-4.27"
    assert format_value(86_400.0, "Duration") == "1 days 00:00:00"
    assert format_value(math.nan, "Sharpe Ratio") == "-"
    assert format_value(None) == "-"
    assert format_value(0.123456789) == "0.123457"  # no name: 6 significant digits as before


def test_the_report_reads_without_raw_floats_and_keeps_its_chart_links():
    summary = {
        "setup_id": "s",
        "rule_version": "v1.0",
        "params_hash": "sha256:ab",
        "market": "binance-spot",
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "range": {"first_bar": "a", "last_bar": "b", "bars": 12_000, "warmup_bars": 72},
        "direction": "long-short",
        "sizing": {"mode": "fixed_fraction", "fraction": 0.5},
        "targets": {"tp_pct": 4.0, "sl_pct": None},
        "fee_pct": 0.075,
        "slippage_pct": 0.01,
        "init_cash": 10000.0,
    }
    text = render_report_md(summary, METRICS)
    assert "(12,000 bars, 72 warm-up)" in text
    assert "sizing fixed_fraction (fraction=0.5), targets tp_pct=4, sl_pct=-" in text
    assert "init cash 10,000.00" in text
    assert "| Duration | 49 days 22:00:00 |" in text
    assert "4.273603338079946" not in text and "-11.9278" not in text
    assert text.endswith("\n".join(CHART_LINES_MD))


def test_the_grid_report_rows_use_the_metric_precision(tmp_path):
    params = {
        "indicators": [["ma_cross", [["fast", 5], ["slow", 30]]]],
        "sl_pct": None,
        "tp_pct": None,
    }
    row = {
        "rank": 1,
        "variant_key": "fast=5|slow=30",
        **METRICS,
        "Max. Drawdown [%]": None,
        "params_json": json.dumps(params),
    }
    row["report_table_md"] = metrics_table_md(METRICS)
    outcome = SimpleNamespace(
        evaluated=pd.DataFrame(),
        topk=pd.DataFrame([row]),
        trades=pd.DataFrame({"x": [1]}),
        partial=False,
        summary={
            "setup_id": "s",
            "rule_version": "v1.0",
            "counts": {
                "stage_a_evaluated": 1,
                "stage_a_variants": 1,
                "stage_b_evaluated": 1,
                "pruned": 0,
                "top_k": 1,
            },
            "grid_request_hash": "g",
            "engine_params_hash": "e",
            "data_hash": "d",
            "timings": {"search_s": 1.5},
        },
    )
    write_grid(outcome, DirSink(tmp_path), timings=False)
    report = (tmp_path / "report.md").read_text()
    assert "| 1 | `fast=5\\|slow=30` | -4.27 | - | -11.928 | 11 |" in report
    assert "| Duration | 49 days 22:00:00 |" in report
