"""A run's PNG charts (for report.md, ``dvc plots`` and review diffs): the price with every
trade's entry and exit, the equity with the buy-and-hold benchmark, and any one line
(the drawdown).

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend state) and
saved without a timestamp or version in the PNG metadata: the same run gives the same bytes.
Lines are decimated for display (:func:`~ita_vc.charts.decimate.decimate_index`); trade
markers never are.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ita_vc.charts.decimate import decimate_index
from ita_vc.charts.run_series import EXIT_REASONS

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

    from ita_vc.charts.run_series import RunSeries, TradeMarks
    from ita_vc.utils.arrays import BoolArray, IntArray

__all__ = [
    "ENTRY_STYLE",
    "EXIT_STYLE",
    "equity_figure",
    "line_png",
    "png_bytes",
    "price_figure",
    "render_chart_png",
    "render_equity_png",
    "render_price_png",
]

ENTRY_STYLE = {
    "long": ("^", "#2ca02c"),  # up triangle, green
    "short": ("v", "#d62728"),  # down triangle, red
}
"""Entry markers: (matplotlib marker, colour) per direction."""

EXIT_STYLE = {
    "signal": ("o", "#404040"),  # hollow circle, dark grey
    "sl": ("X", "#ff7f0e"),  # cross, orange
    "tp": ("*", "#9467bd"),  # star, purple
    "end": ("s", "#17becf"),  # hollow square, cyan
}
"""Exit markers: (matplotlib marker, colour) per exit reason."""

_HOLLOW = frozenset({"signal", "end"})
_LINE = "#1f77b4"
_BENCHMARK = "#7f7f7f"
_AVAILABLE = "#2ca02c"
_SAFE = "#9467bd"
_TRADE_LINES_MAX = 1_000  # entry-to-exit segments are drawn up to this many trades


def _times(ts: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    return np.asarray(ts, dtype=np.int64).astype("datetime64[ms]")


def _figure(height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(11, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    return fig, ax


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, without a timestamp or version in the metadata: the same
    figure gives the same bytes (every PNG chart of ita-vc is saved through here)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _line(ax: Axes, ts: IntArray, values: npt.ArrayLike, **style: object) -> None:
    """``values`` over ``ts``, decimated for display; one bar shows as a dot."""
    y = np.asarray(values, dtype=np.float64)
    keep = decimate_index(y)
    ax.plot(_times(ts[keep]), y[keep], marker="." if len(y) == 1 else "", **style)  # type: ignore[arg-type]
    if len(y) == 1:  # a day either side, not matplotlib's default of years
        day = np.timedelta64(1, "D")
        ax.set_xlim(_times(ts)[0] - day, _times(ts)[0] + day)


def _no_bars(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no bars", ha="center", va="center", transform=ax.transAxes)


def _marker_size(n: int) -> float:
    """Marker area for ``n`` trades: large for a few, small when thousands overlap."""
    return 64.0 if n <= 100 else 30.0 if n <= 1_000 else 12.0 if n <= 10_000 else 5.0


def _scatter(
    ax: Axes,
    ts: IntArray,
    price: npt.ArrayLike,
    mask: BoolArray,
    style: tuple[str, str],
    *,
    size: float,
    label: str,
    hollow: bool = False,
) -> None:
    count = int(mask.sum())
    if not count:
        return
    marker, colour = style
    ax.scatter(
        _times(ts[mask]),
        np.asarray(price)[mask],
        marker=marker,
        s=size,
        facecolors="none" if hollow else colour,
        edgecolors=colour,
        linewidths=1.2 if hollow else 0.5,
        zorder=3,
        label=f"{label} ({count:,})",
    )


def _trade_lines(ax: Axes, trades: TradeMarks) -> None:
    """Thin entry-to-exit segments, green for a gain and red for a loss (few trades only)."""
    if not 0 < len(trades) <= _TRADE_LINES_MAX:
        return
    x0 = mdates.date2num(_times(trades.entry_ts))  # type: ignore[no-untyped-call]
    x1 = mdates.date2num(_times(trades.exit_ts))  # type: ignore[no-untyped-call]
    segments = np.stack([np.c_[x0, trades.entry_price], np.c_[x1, trades.exit_price]], axis=1)
    colours = np.where(trades.pnl >= 0, "#2ca02c", "#d62728")
    ax.add_collection(
        LineCollection(list(segments), colors=list(colours), linewidths=0.9, alpha=0.6, zorder=2)
    )


def _trade_markers(ax: Axes, trades: TradeMarks) -> None:
    """Every entry (by direction) and every exit (by reason); none is dropped."""
    size = _marker_size(len(trades))
    for direction, mask in (("long", trades.long), ("short", ~trades.long)):
        _scatter(
            ax,
            trades.entry_ts,
            trades.entry_price,
            mask,
            ENTRY_STYLE[direction],
            size=size,
            label=f"{direction} entry",
        )
    reasons = np.asarray(trades.reason, dtype=object)
    known = set(EXIT_REASONS)
    for reason in (*EXIT_REASONS, *sorted(set(trades.reason) - known)):
        _scatter(
            ax,
            trades.exit_ts,
            trades.exit_price,
            reasons == reason,
            EXIT_STYLE.get(reason, ("d", "#000000")),
            size=size,
            hollow=reason in _HOLLOW,
            label=f"exit: {reason}",
        )


def price_figure(series: RunSeries, title: str) -> Figure:
    """The close of every bar (decimated for display) with all trade entries and exits."""
    fig, ax = _figure(5.0)
    if len(series.ts):
        _line(ax, series.ts, series.close, color=_LINE, linewidth=0.9, label="close")
    else:
        _no_bars(ax)
    _trade_lines(ax, series.trades)
    _trade_markers(ax, series.trades)
    ax.set_title(title)
    ax.set_ylabel("price")
    if len(series.ts) or len(series.trades):  # outside the axes: it hides no bar or trade
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.005, 1.0),
            fontsize="small",
            borderaxespad=0,
            markerscale=float(np.sqrt(64.0 / _marker_size(len(series.trades)))),
        )
    return fig


def render_price_png(series: RunSeries, title: str) -> bytes:
    """price.png: :func:`price_figure` as PNG bytes."""
    return png_bytes(price_figure(series, title))


def equity_figure(series: RunSeries, title: str) -> Figure:
    """The equity and the buy-and-hold benchmark (``init_cash * close / close[0]``)."""
    fig, ax = _figure(4.0)
    if len(series.ts):
        _line(ax, series.ts, series.equity, color=_LINE, linewidth=1.0, label="equity")
        _line(
            ax,
            series.ts,
            series.benchmark,
            color=_BENCHMARK,
            linewidth=1.0,
            linestyle="--",
            label="buy and hold",
        )
        if series.safe is not None and series.available is not None:
            _line(
                ax,
                series.ts,
                series.available,
                color=_AVAILABLE,
                linewidth=0.9,
                label="available (profit lock)",
            )
            _line(
                ax, series.ts, series.safe, color=_SAFE, linewidth=0.9, label="locked profit (safe)"
            )
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", borderaxespad=0)
    else:
        _no_bars(ax)
    ax.set_title(title)
    ax.set_ylabel("equity")
    return fig


def render_equity_png(series: RunSeries, title: str) -> bytes:
    """equity.png: :func:`equity_figure` as PNG bytes."""
    return png_bytes(equity_figure(series, title))


def line_png(
    ts: npt.ArrayLike, values: npt.ArrayLike, title: str, ylabel: str, *, fill: bool = False
) -> bytes:
    """One line over time (decimated for display); ``fill`` shades it down to zero (a
    drawdown)."""
    times = np.asarray(ts, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    fig, ax = _figure(4.0)
    if len(times):
        _line(ax, times, y, color=_LINE, linewidth=1.0)
        if fill:
            keep = decimate_index(y)
            ax.fill_between(_times(times[keep]), y[keep], 0, color="#d62728", alpha=0.3)
    else:
        _no_bars(ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return png_bytes(fig)


def render_chart_png(
    series: pd.DataFrame, column: str, title: str, *, percent: bool = False
) -> bytes:
    """A line chart of ``series[column]`` over ``series.ts_utc`` as PNG bytes (decimated for
    display; ``percent`` draws the values times 100, shaded down to zero: a drawdown)."""
    values = series[column].to_numpy(dtype="float64") * (100.0 if percent else 1.0)
    ylabel = f"{column} [%]" if percent else column
    return line_png(series["ts_utc"], values, title, ylabel, fill=percent)
