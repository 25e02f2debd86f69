"""The reports of engine 1.0, frozen byte for byte.

A dvc.yaml stage pinned to ``--engine 1.0`` writes exactly what ita-vc 0.3 wrote - report.md
with raw numbers, equity.png and drawdown.png, the grid's report.md and its ``report_table_md``
column - so a run recorded under engine 1.0 reproduces bit for bit after an upgrade. Engine 1.1
writes the readable reports (:mod:`ita_vc.backtest.report`, :mod:`ita_vc.charts`). Do not edit:
a change here breaks ``reproduce`` of every run recorded under engine 1.0
(tests/charts/test_report_v1.py compares against outputs of 0.3). The stage writers are
``write_report_v1`` and ``write_grid_report_v1`` in :mod:`ita_vc.pipeline.outputs`.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

__all__ = ["format_value", "metrics_table_md", "render_chart_png", "render_report_md"]


def format_value(value: object) -> str:
    """A metric value for a table: null as ``-``, floats with up to 6 significant decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.6g}"
    return str(value)


def metrics_table_md(metrics: Mapping[str, object]) -> str:
    """``|Metric|Value|`` markdown table, in the documented metric order."""
    from ita_vc.backtest.metrics import METRIC_NAMES

    names = [n for n in METRIC_NAMES if n in metrics] + [
        n for n in metrics if n not in METRIC_NAMES
    ]
    lines = ["| Metric | Value |", "|---|---:|"]
    lines += [f"| {name} | {format_value(metrics[name])} |" for name in names]
    return "\n".join(lines) + "\n"


def render_report_md(summary: Mapping[str, Any], metrics: Mapping[str, object]) -> str:
    """The report.md of a run: identity, data, execution parameters and the metrics table."""
    rng = summary.get("range") or {}
    lines = [
        f"# Backtest: {summary.get('setup_id')} {summary.get('rule_version')}",
        "",
        f"- rule: `{summary.get('setup_id')}` {summary.get('rule_version')} "
        f"(params_hash `{summary.get('params_hash')}`)",
        f"- data: {summary.get('market')} {summary.get('symbol')} {summary.get('timeframe')}, "
        f"bars {rng.get('first_bar')} .. {rng.get('last_bar')} ({rng.get('bars')} bars, "
        f"{rng.get('warmup_bars')} warm-up), data_hash `{summary.get('data_hash')}`",
        f"- execution: {summary.get('direction')}, sizing {json.dumps(summary.get('sizing'))}, "
        f"targets {json.dumps(summary.get('targets'))}, fee {summary.get('fee_pct')} %, "
        f"slippage {summary.get('slippage_pct')} %, init cash {summary.get('init_cash')}",
        f"- conflicting signals: {summary.get('conflicting_signals')}; engine "
        f"{summary.get('engine_version')}; config_hash `{summary.get('config_hash')}`",
        "",
        "## Metrics",
        "",
        metrics_table_md(metrics),
        "![equity](equity.png)",
        "",
        "![drawdown](drawdown.png)",
        "",
    ]
    return "\n".join(lines)


def render_chart_png(
    series: pd.DataFrame, column: str, title: str, *, percent: bool = False
) -> bytes:
    """A line chart of ``series[column]`` over ``series.ts_utc`` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    times = np.asarray(series["ts_utc"], dtype="int64").astype("datetime64[ms]")
    values = np.asarray(series[column], dtype="float64") * (100.0 if percent else 1.0)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        if len(values):
            ax.plot(times, values, linewidth=1.0, color="#1f77b4")
            if percent:
                ax.fill_between(times, values, 0, color="#d62728", alpha=0.3)
        ax.set_title(title)
        ax.set_ylabel(f"{column} [%]" if percent else column)
        ax.grid(True, alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()
