"""Runs overlaid on one time axis: the renderers of ``ita-vc runs plot``
(:mod:`ita_vc.snapshot.plot` reads the runs and calls them).

Series come normalised so runs of any size compare: ``equity`` as equity / initial cash,
``drawdown`` in % below the running peak, ``returns`` as the cumulative return in %. Lines are
decimated for display (:func:`~ita_vc.charts.decimate.decimate_index`).

The output is HTML (Bokeh, JS inlined, fixed ids: the same runs give the same bytes) or PNG
(matplotlib Agg, no timestamp), chosen by the file's suffix.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure
from matplotlib.figure import Figure

from ita_vc.charts.decimate import decimate_index
from ita_vc.charts.html import standalone_html

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = ["METRICS", "OUT_SUFFIXES", "RunSeries", "render_runs_html", "render_runs_png"]

METRICS = ("equity", "drawdown", "returns")
"""What ``runs plot --metric`` draws."""
OUT_SUFFIXES = (".html", ".png")
_AXIS_LABEL = {
    "equity": "equity / initial cash",
    "drawdown": "drawdown [%]",
    "returns": "cumulative return [%]",
}
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class RunSeries:
    """One run's normalised series, ready to draw."""

    run_id: str
    label: str
    """``run_id setup vX.Y`` (the legend entry)."""
    ts_utc: IntArray
    """Bar times, ms since the epoch (UTC)."""
    values: FloatArray


def _title(metric: str, count: int) -> str:
    label = _AXIS_LABEL[metric]
    return f"{label[0].upper()}{label[1:]}: {count} run(s)"


def render_runs_png(series: Sequence[RunSeries], metric: str) -> bytes:
    """The runs as one matplotlib chart (PNG bytes; the same series give the same bytes)."""
    fig = Figure(figsize=(11, 5), dpi=100)
    ax = fig.subplots()
    for index, run in enumerate(series):
        keep = decimate_index(run.values)
        times = run.ts_utc[keep].astype("datetime64[ms]")
        ax.plot(
            times,
            run.values[keep],
            linewidth=1.1,
            color=_COLORS[index % len(_COLORS)],
            label=run.label,
        )
    baseline = {"equity": 1.0, "returns": 0.0, "drawdown": 0.0}[metric]
    ax.axhline(baseline, color="black", linewidth=0.6, alpha=0.5)
    ax.set_title(_title(metric, len(series)))
    ax.set_ylabel(_AXIS_LABEL[metric])
    ax.set_xlabel("time (UTC)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def render_runs_html(series: Sequence[RunSeries], metric: str) -> bytes:
    """The runs as one interactive Bokeh chart (legend per run - click to hide -, hover
    values, zoom), self-contained, the same series give the same bytes."""

    fig = figure(
        title=_title(metric, len(series)),
        x_axis_type="datetime",
        width=1100,
        height=520,
        x_axis_label="time (UTC)",
        y_axis_label=_AXIS_LABEL[metric],
        tools="pan,xwheel_zoom,box_zoom,reset,save",
        active_scroll="xwheel_zoom",
    )
    renderers = []
    for index, run in enumerate(series):
        keep = decimate_index(run.values)
        source = ColumnDataSource(
            {
                "t": [float(v) for v in run.ts_utc[keep]],
                "v": [float(v) for v in run.values[keep]],
                "run": [run.label] * len(keep),
            }
        )
        renderers.append(
            fig.line(
                "t",
                "v",
                source=source,
                color=_COLORS[index % len(_COLORS)],
                line_width=1.5,
                legend_label=run.label,
            )
        )
    fig.add_tools(
        HoverTool(
            renderers=renderers,  # type: ignore[arg-type]
            tooltips=[("run", "@run"), ("time", "@t{%F %H:%M}"), (metric, "@v{0.0000}")],
            formatters={"@t": "datetime"},
            mode="mouse",
        )
    )
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return standalone_html(fig, _title(metric, len(series)))
