"""The human side of a backtest: the metrics table (markdown), report.md and a line chart (PNG).

Charts are drawn by :mod:`ita_vc.charts` (matplotlib's Agg canvas, saved without a timestamp
or version in the PNG metadata), so the same result gives the same bytes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ita_vc.backtest import report_v1
from ita_vc.backtest.format import format_metric

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = [
    "CHART_LINES_MD",
    "format_value",
    "metrics_table_md",
    "render_report_md",
]


def format_value(value: object, name: str | None = None) -> str:
    """A value for a table a person reads. With the metric ``name``: that metric's precision
    and unit (:func:`~ita_vc.backtest.format.format_metric`: percent 2 decimals, ratios 3,
    money 2, durations as ``49 days 22:00:00``); without: null as ``-``, floats with up to 6
    significant digits. NaN and infinities (a missing value) print as ``-``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if name is not None:
        return format_metric(name, value)
    return report_v1.format_value(value)  # unnamed values read as engine 1.0 printed them


def metrics_table_md(metrics: Mapping[str, object]) -> str:
    """``|Metric|Value|`` markdown table, in the documented metric order, each value with its
    metric's precision (durations as timedeltas; metrics.json keeps seconds)."""
    from ita_vc.backtest.metrics import METRIC_NAMES

    names = [n for n in METRIC_NAMES if n in metrics] + [
        n for n in metrics if n not in METRIC_NAMES
    ]
    lines = ["| Metric | Value |", "|---|---:|"]
    lines += [f"| {name} | {format_value(metrics[name], name)} |" for name in names]
    return "\n".join(lines) + "\n"


def settings_text(value: object, first: str | None = None) -> str:
    """A settings mapping in one line: ``all_in`` / ``fixed_fraction (fraction=0.5)`` (the
    ``first`` key's value, then the others) / ``tp_pct=4, sl_pct=-``; anything else as
    :func:`format_value`."""
    if not isinstance(value, dict) or not value:
        return format_value(value)
    head = str(value[first]) if first and first in value else ""
    body = ", ".join(f"{k}={format_value(v)}" for k, v in value.items() if k != first)
    return f"{head} ({body})" if head and body else head or body


def _count(value: object) -> str:
    return format_metric("Num. Trades", value) if isinstance(value, int | float) else "-"


def _money(value: object) -> str:
    return format_metric("Init. Cash", value) if isinstance(value, int | float) else "-"


CHART_LINES_MD = (
    "## Charts",
    "",
    "Interactive (zoom, hover, linked panels; works offline): [report.html](report.html)",
    "",
    "![price and trades](price.png)",
    "",
    "![equity and buy-and-hold](equity.png)",
    "",
    "![drawdown](drawdown.png)",
    "",
)
"""The end of report.md: the charts of the report folder."""


def annualisation_text(summary: Mapping[str, Any]) -> str:
    """``Sharpe/Sortino annualised over 252 days a year (periods_per_year)``: summary.json
    records the key only when it is not 365 (engine 1.1); ``-`` for a value that is no
    number (a damaged summary)."""
    periods = summary.get("periods_per_year", 365)
    if not isinstance(periods, int | float) or isinstance(periods, bool):
        return "-"
    return f"Sharpe/Sortino annualised over {periods:g} days a year (periods_per_year)"


def execution_text(summary: Mapping[str, Any]) -> str:
    """The execution settings of a run in one line (report.md and report.html)."""
    return (
        f"{summary.get('direction')}, sizing {settings_text(summary.get('sizing'), 'mode')}, "
        f"targets {settings_text(summary.get('targets'))}, fee {summary.get('fee_pct')} %, "
        f"slippage {summary.get('slippage_pct')} %, init cash "
        f"{_money(summary.get('init_cash'))}; {annualisation_text(summary)}"
    )


def profit_lock_line(equity: pd.DataFrame) -> str | None:
    """``- profit lock: ...`` for report.md when the equity has the profit-lock balances (the
    ``strategy_compound_profit_lock`` sizing), else None."""
    if not {"strategy_safe_quote", "strategy_available_quote"} <= set(equity.columns):
        return None
    if not len(equity):
        return "- profit lock: no bars"
    safe = float(equity["strategy_safe_quote"].iloc[-1])
    available = float(equity["strategy_available_quote"].iloc[-1])
    return (
        f"- profit lock at the end: locked profit (safe) {_money(safe)}, available for the "
        f"next entry {_money(available)} (per bar in equity.parquet: strategy_safe_quote, "
        "strategy_available_quote)"
    )


def render_report_md(
    summary: Mapping[str, Any],
    metrics: Mapping[str, object],
    extra: Sequence[str] = (),
) -> str:
    """The report.md of a run: identity, data, execution parameters (and the ``extra``
    lines, e.g. :func:`profit_lock_line`) and the metrics table."""
    rng = summary.get("range") or {}
    lines = [
        f"# Backtest: {summary.get('setup_id')} {summary.get('rule_version')}",
        "",
        f"- rule: `{summary.get('setup_id')}` {summary.get('rule_version')} "
        f"(params_hash `{summary.get('params_hash')}`)",
        f"- data: {summary.get('market')} {summary.get('symbol')} {summary.get('timeframe')}, "
        f"bars {rng.get('first_bar')} .. {rng.get('last_bar')} ({_count(rng.get('bars'))} bars, "
        f"{_count(rng.get('warmup_bars'))} warm-up), data_hash `{summary.get('data_hash')}`",
        f"- execution: {execution_text(summary)}",
        f"- conflicting signals: {summary.get('conflicting_signals')}; engine "
        f"{summary.get('engine_version')}; config_hash `{summary.get('config_hash')}`",
        *extra,
        "",
        "## Metrics",
        "",
        metrics_table_md(metrics),
        *CHART_LINES_MD,
    ]
    return "\n".join(lines)
