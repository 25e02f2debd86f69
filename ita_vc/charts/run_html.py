"""A run's interactive report (``results/report/report.html``), as backtesting.py's plot: the
price with every trade (hover for its entry, exit, P&L and exit reason), the equity with the
buy-and-hold benchmark, and the drawdown; the panels share one x-axis (pan or zoom one, all
follow), under a header with the rule, the data and the metrics.

One self-contained file: Bokeh's JS is inlined and the ids are fixed
(:func:`ita_vc.charts.html.standalone_html`), so it works offline and the same run renders to
the same bytes. Lines are decimated for display; trade markers never are.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
from bokeh.models.widgets.markups import Div
from bokeh.plotting import figure

from ita_vc.backtest.format import format_metric
from ita_vc.backtest.metrics import METRIC_NAMES
from ita_vc.backtest.report import execution_text
from ita_vc.charts.decimate import decimate_index
from ita_vc.charts.html import standalone_html
from ita_vc.charts.run_series import EXIT_REASONS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bokeh.models import Column, Range
    from bokeh.models.renderers import DataRenderer

    from ita_vc.charts.run_series import RunSeries, TradeMarks
    from ita_vc.utils.arrays import BoolArray, FloatArray, IntArray

__all__ = [
    "HEADLINE_METRICS",
    "HTML_ENTRY_STYLE",
    "HTML_EXIT_STYLE",
    "render_run_html",
    "run_layout",
]

HTML_ENTRY_STYLE = {"long": ("triangle", "#2ca02c"), "short": ("inverted_triangle", "#d62728")}
"""Entry markers: (Bokeh marker, colour) per direction (as the PNG's)."""

HTML_EXIT_STYLE = {
    "signal": ("circle", "#404040"),
    "sl": ("x", "#ff7f0e"),
    "tp": ("star", "#9467bd"),
    "end": ("square", "#17becf"),
}
"""Exit markers: (Bokeh marker, colour) per exit reason (as the PNG's)."""

HEADLINE_METRICS = (
    "Total Return [%]",
    "Benchmark Return [%]",
    "Max. Drawdown [%]",
    "Sharpe Ratio",
    "Win Rate [%]",
    "Num. Trades",
)
"""The metrics the header shows in one line (all of them are in its table)."""

_HOLLOW = frozenset({"signal", "end"})
_TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"
_TIME = "%F %T"
_TRADE_TIPS = [
    ("trade", "#@n @direction"),
    ("entry", f"@entry_ts{{{_TIME}}} at @entry_price{{0,0.00[00]}}"),
    ("exit", f"@exit_ts{{{_TIME}}} at @exit_price{{0,0.00[00]}} (@reason)"),
    ("P&L", "@pnl{0,0.00} (@return_pct{0.00} %)"),
]


def _panel(title: str, height: int, x_range: Range | None = None) -> figure:
    fig = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        x_axis_type="datetime",
        tools=_TOOLS,
        active_drag="xpan",
        active_scroll="xwheel_zoom",
    )
    if x_range is not None:  # shared with the price panel: pan or zoom one, all follow
        fig.x_range = x_range
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0.[00]")
    return fig


def _bars(ts: IntArray, keep: IntArray, **columns: FloatArray) -> ColumnDataSource:
    data = {"x": ts[keep].astype(np.float64)}
    data.update({name: np.asarray(v, dtype=np.float64)[keep] for name, v in columns.items()})
    return ColumnDataSource(data=data)


def _line_hover(fig: figure, renderer: DataRenderer, tips: list[tuple[str, str]]) -> None:
    fig.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=[("time", f"@x{{{_TIME}}}"), *tips],
            formatters={"@x": "datetime"},
            mode="vline",
        )
    )


def _trade_source(trades: TradeMarks, mask: BoolArray, at_exit: bool) -> ColumnDataSource:
    index = np.flatnonzero(mask)
    x = trades.exit_ts if at_exit else trades.entry_ts
    y = trades.exit_price if at_exit else trades.entry_price
    return ColumnDataSource(
        data={
            "x": x[index].astype(np.float64),
            "y": y[index],
            "n": index + 1,
            "direction": np.where(trades.long[index], "long", "short").tolist(),
            "entry_ts": trades.entry_ts[index].astype(np.float64),
            "exit_ts": trades.exit_ts[index].astype(np.float64),
            "entry_price": trades.entry_price[index],
            "exit_price": trades.exit_price[index],
            "reason": [trades.reason[i] for i in index],
            "pnl": trades.pnl[index],
            "return_pct": trades.return_pct[index],
        }
    )


def _marker_size(n: int) -> int:
    return 11 if n <= 100 else 8 if n <= 1_000 else 6


def _trade_markers(fig: figure, trades: TradeMarks) -> None:
    """Every entry (by direction) and every exit (by reason), each with its trade's hover."""
    size = _marker_size(len(trades))
    reasons = np.asarray(trades.reason, dtype=object)
    groups: list[tuple[str, BoolArray, bool, tuple[str, str], bool]] = [
        (f"{d} entry", trades.long if d == "long" else ~trades.long, False, style, False)
        for d, style in HTML_ENTRY_STYLE.items()
    ]
    for reason in (*EXIT_REASONS, *sorted(set(trades.reason) - set(EXIT_REASONS))):
        style = HTML_EXIT_STYLE.get(reason, ("diamond", "#000000"))
        groups.append((f"exit: {reason}", reasons == reason, True, style, reason in _HOLLOW))
    renderers: list[DataRenderer] = []
    for label, mask, at_exit, (marker, colour), hollow in groups:
        count = int(np.count_nonzero(mask))
        if not count:
            continue
        renderers.append(
            fig.scatter(
                "x",
                "y",
                source=_trade_source(trades, mask, at_exit),
                marker=marker,
                size=size,
                fill_color=colour,
                fill_alpha=0.0 if hollow else 0.9,
                line_color=colour,
                line_width=2 if hollow or marker == "x" else 1,
                legend_label=f"{label} ({count:,})",
            )
        )
    if renderers:
        fig.add_tools(
            HoverTool(
                renderers=renderers,
                tooltips=_TRADE_TIPS,
                formatters={
                    "@entry_ts": "datetime",
                    "@exit_ts": "datetime",
                },
            )
        )


def _price_panel(series: RunSeries) -> figure:
    fig = _panel("Price and trades", 380)
    keep = decimate_index(series.close)
    line = fig.line(
        "x",
        "close",
        source=_bars(series.ts, keep, close=series.close),
        color="#1f77b4",
        line_width=1,
        legend_label="close",
    )
    _line_hover(fig, line, [("close", "@close{0,0.00[00]}")])
    _trade_markers(fig, series.trades)
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _equity_panel(series: RunSeries, x_range: Range) -> figure:
    fig = _panel("Equity and buy-and-hold", 260, x_range)
    keep = np.union1d(decimate_index(series.equity), decimate_index(series.benchmark))
    source = _bars(series.ts, keep, equity=series.equity, benchmark=series.benchmark)
    line = fig.line(
        "x", "equity", source=source, color="#1f77b4", line_width=1.5, legend_label="equity"
    )
    fig.line(
        "x",
        "benchmark",
        source=source,
        color="#7f7f7f",
        line_dash="dashed",
        line_width=1,
        legend_label="buy and hold",
    )
    tips = [("equity", "@equity{0,0.00}"), ("buy and hold", "@benchmark{0,0.00}")]
    if series.safe is not None and series.available is not None:
        keep = np.union1d(
            keep, np.union1d(decimate_index(series.safe), decimate_index(series.available))
        )
        lock = _bars(series.ts, keep, safe=series.safe, available=series.available)
        fig.line(
            "x",
            "available",
            source=lock,
            color="#2ca02c",
            line_width=1,
            legend_label="available (profit lock)",
        )
        fig.line(
            "x",
            "safe",
            source=lock,
            color="#9467bd",
            line_width=1,
            legend_label="locked profit (safe)",
        )
    _line_hover(fig, line, tips)
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _drawdown_panel(series: RunSeries, x_range: Range) -> figure:
    fig = _panel("Drawdown [%]", 200, x_range)
    percent = series.drawdown * 100.0
    source = _bars(series.ts, decimate_index(percent), drawdown=percent)
    fig.varea("x", y1=0.0, y2="drawdown", source=source, fill_color="#d62728", fill_alpha=0.3)
    line = fig.line("x", "drawdown", source=source, color="#d62728", line_width=1)
    _line_hover(fig, line, [("drawdown", "@drawdown{0.00} %")])
    return fig


def _in_order(metrics: Mapping[str, object]) -> list[tuple[str, object]]:
    """The metrics in the documented order (as report.md's table), unknown names last."""
    names = [n for n in METRIC_NAMES if n in metrics] + [
        n for n in metrics if n not in METRIC_NAMES
    ]
    return [(name, metrics[name]) for name in names]


def _header(summary: Mapping[str, Any], metrics: Mapping[str, object]) -> Div:
    def esc(value: object) -> str:
        return html.escape(str(value))

    rng = summary.get("range") or {}
    facts = [
        ("rule", f"{summary.get('setup_id')} {summary.get('rule_version')}"),
        ("data", f"{summary.get('market')} {summary.get('symbol')} {summary.get('timeframe')}"),
        (
            "bars",
            f"{rng.get('first_bar')} .. {rng.get('last_bar')} "
            f"({format_metric('Num. Trades', rng.get('bars'))} bars)",
        ),
        ("execution", execution_text(summary)),
    ]
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{esc(name)}</th>"
        f"<td style='text-align:right'>{esc(format_metric(name, value))}</td></tr>"
        for name, value in _in_order(metrics)
    )
    text = (
        f"<h2 style='margin:0.2em 0'>Backtest: {esc(summary.get('setup_id'))} "
        f"{esc(summary.get('rule_version'))}</h2>"
        + "".join(f"<div><b>{esc(k)}</b>: {esc(v)}</div>" for k, v in facts)
        + "<div style='margin-top:0.3em'>"
        + " &middot; ".join(
            f"<b>{esc(name)}</b> {esc(format_metric(name, metrics[name]))}"
            for name in HEADLINE_METRICS
            if name in metrics
        )
        + "</div>"
        + "<details><summary>metrics</summary>"
        + f"<table style='font-size:90%;border-spacing:0.6em 0.1em'>{cells}</table></details>"
    )
    return Div(text=text, sizing_mode="stretch_width")


def run_layout(
    series: RunSeries, summary: Mapping[str, Any], metrics: Mapping[str, object]
) -> Column:
    """The Bokeh layout of one run: header, price, equity and drawdown panels (one x-range)."""
    price = _price_panel(series)
    return column(
        _header(summary, metrics),
        price,
        _equity_panel(series, price.x_range),
        _drawdown_panel(series, price.x_range),
        sizing_mode="stretch_width",
    )


def render_run_html(
    series: RunSeries, summary: Mapping[str, Any], metrics: Mapping[str, object]
) -> bytes:
    """report.html of one run: self-contained (JS inlined), byte-identical for the same run."""
    title = f"Backtest {summary.get('setup_id')} {summary.get('rule_version')}"
    return standalone_html(run_layout(series, summary, metrics), title)
