"""The grid report's charts: parameter heatmaps and the distribution of Total Return.

What is drawn comes from a grid's outcome: every Stage A variant the search held (the base
variants, no SL/TP: all of them when there are at most ``preselect``) and the top-K (Stage B's
SL/TP variants among them). Stage B keeps only its top-K, so an SL/TP slice shows the cells whose
variant made the top-K; the plain (no SL, no TP) heatmaps are complete.

Which axes a heatmap maps: the two parameters with the most values (ties: the first in the
rule's order) - x the first, y the second. With more than two parameters a cell shows the best
value over the others (each metric its own best, the cell's variant named on hover). A grid over
one parameter gets line charts instead, a grid of one combination a note.

Outputs (:func:`grid_charts`): ``heatmap.png`` and ``distribution.png`` (matplotlib Agg, no
timestamp in the PNG metadata) and ``report.html`` (Bokeh, JS inlined, fixed ids): the same
outcome gives the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, gridplot, row
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.models.annotations import ColorBar, Span
from bokeh.models.ranges import FactorRange
from bokeh.models.widgets import Div
from bokeh.palettes import RdYlGn11
from bokeh.plotting import figure
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ita_vc.backtest.format import format_metric
from ita_vc.charts.html import standalone_html
from ita_vc.charts.run_png import png_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from bokeh.model import Model
    from matplotlib.axes import Axes


__all__ = [
    "RETURN",
    "SHARPE",
    "GridView",
    "grid_charts",
    "grid_view",
    "heatmap_cells",
    "render_distribution_png",
    "render_grid_html",
    "render_heatmap_png",
]

RETURN = "Total Return [%]"
SHARPE = "Sharpe Ratio"
TRADES = "Num. Trades"
PLAIN = ("none", "none")
"""The (sl, tp) labels of the variants without SL and TP (Stage A's)."""
MAX_SLICES = 16
"""SL/TP slices drawn at most (the first in (sl, tp) order)."""
_ANNOTATE_CELLS = 12
"""Cell values are written into the main heatmaps of at most this many columns and rows (the
SL/TP slices, drawn smaller: 5 columns)."""
_LABELS_MAX = 60
"""HTML heatmaps label at most this many values per axis (more: on hover only)."""
_GREY = "#d9d9d9"
_TOPK = "#ff7f0e"
_BEST = "#d62728"
_STAGE_A = "#7f7f7f"


def _label(value: object) -> str:
    """A parameter value as an axis label: ``none``, ``10``, ``2.5``, ``ema``."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _missing(value: object) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _floats(values: Iterable[Any]) -> list[float | None]:
    """Plain floats for Bokeh's JSON (NaN as null)."""
    return [None if _missing(float(v)) else float(v) for v in values]


def _order(value: object) -> tuple[int, float, str]:
    """Numbers in numeric order, then text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


@dataclass(frozen=True)
class GridView:
    """Every variant the grid report shows, one row each.

    ``table`` columns: ``variant_key``, ``sl``, ``tp`` (labels), one column per parameter
    axis (the raw values), Total Return, Sharpe, trades, ``rank`` (top-K rank, 0 if not in
    it) and ``stage_a`` (a Stage A variant).
    """

    table: pd.DataFrame
    axes: list[str]
    """Every parameter axis, ``indicator.param``, in the rule's order."""
    values: dict[str, list[Any]]
    """Each axis's values, in order."""
    mapped: list[str]
    """The axes the charts map: two (the most values), one, or none."""
    summary: Mapping[str, Any]

    @property
    def stage_a(self) -> pd.DataFrame:
        """The Stage A rows (no SL/TP)."""
        return self.table[self.table["stage_a"]]

    @property
    def topk(self) -> pd.DataFrame:
        """The top-K rows, by rank."""
        return self.table[self.table["rank"] > 0].sort_values("rank")

    def slices(self) -> list[tuple[str, str]]:
        """The (sl, tp) combinations other than the plain one that the top-K holds."""
        combos = {(str(s), str(t)) for s, t in zip(self.table["sl"], self.table["tp"], strict=True)}
        combos.discard(PLAIN)

        def key(combo: tuple[str, str]) -> tuple[tuple[int, float, str], ...]:
            return tuple(_order(None if c == "none" else float(c)) for c in combo)

        return sorted(combos, key=key)

    def title(self) -> str:
        """``Grid: setup vX.Y`` (and PARTIAL)."""
        s = self.summary
        return f"Grid: {s.get('setup_id')} {s.get('rule_version')}" + (
            " (PARTIAL)" if s.get("partial") else ""
        )


def _parse(params_json: str) -> tuple[dict[str, Any], str, str]:
    """A variant's axis values and its sl/tp labels, from its ``params_json``."""
    doc = json.loads(params_json)
    values: dict[str, Any] = {}
    for name, params in doc.get("indicators") or []:
        for param, value in params:
            axis = f"{name}.{param}"
            while axis in values:  # the same indicator twice
                axis += "'"
            values[axis] = value
    return values, _label(doc.get("sl_pct")), _label(doc.get("tp_pct"))


def _rows(frame: pd.DataFrame, *, stage_a: bool) -> list[dict[str, Any]]:
    rows = []
    for record in frame.to_dict("records"):
        values, sl, tp = _parse(str(record["params_json"]))
        sharpe = record.get(SHARPE)
        rows.append(
            {
                "variant_key": str(record["variant_key"]),
                "sl": sl,
                "tp": tp,
                **values,
                RETURN: float(record[RETURN]),
                SHARPE: np.nan if sharpe is None else float(sharpe),
                TRADES: int(record[TRADES]),
                "rank": int(record["rank"]) if "rank" in record else 0,
                "stage_a": stage_a,
            }
        )
    return rows


def grid_view(topk: pd.DataFrame, evaluated: pd.DataFrame, summary: Mapping[str, Any]) -> GridView:
    """The variants of a grid outcome (``topk``, ``evaluated``: see
    :class:`~ita_vc.grid.search.GridOutcome`) as one table, and the axes to map."""
    rows = _rows(evaluated, stage_a=True) if len(evaluated) else []
    seen = {record["variant_key"]: record for record in rows}
    for record in _rows(topk, stage_a=False) if len(topk) else []:
        if record["variant_key"] in seen:
            seen[record["variant_key"]]["rank"] = record["rank"]
        else:
            rows.append(record)
            seen[record["variant_key"]] = record
    axes: list[str] = []
    for record in rows:
        axes += [k for k in record if k not in axes and k not in _FIXED]
    table = pd.DataFrame(rows, columns=[*_FIXED[:3], *axes, *_FIXED[3:]])
    values = {
        axis: sorted({v for v in table[axis] if v is not None and not _missing(v)}, key=_order)
        for axis in axes
    }
    multi = [a for a in axes if len(values[a]) > 1]
    mapped = sorted(multi, key=lambda a: -len(values[a]))[:2]
    return GridView(table, axes, values, mapped, summary)


_FIXED = ["variant_key", "sl", "tp", RETURN, SHARPE, TRADES, "rank", "stage_a"]


def heatmap_cells(
    view: GridView, metric: str, combo: tuple[str, str] = PLAIN, *, axes: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per (x, y) cell of the (sl, tp) slice ``combo``: the variant with the best
    ``metric`` in it (ties: the smaller variant key); columns ``x``, ``y`` (labels),
    ``variant_key``, Total Return, Sharpe, trades. ``axes`` defaults to ``view.mapped``."""
    x, y = list(axes or view.mapped)[:2]
    rows = view.table[(view.table["sl"] == combo[0]) & (view.table["tp"] == combo[1])]
    rows = rows[rows[metric].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["x", "y", "variant_key", RETURN, SHARPE, TRADES])
    best = rows.sort_values([metric, "variant_key"], ascending=[False, True], kind="mergesort")
    best = best.assign(x=best[x].map(_label), y=best[y].map(_label))
    cells = best.drop_duplicates(["x", "y"], keep="first")
    return cells[["x", "y", "variant_key", RETURN, SHARPE, TRADES]].reset_index(drop=True)


def _matrix(view: GridView, cells: pd.DataFrame, metric: str) -> np.ndarray:
    """The cells as a (y, x) array (NaN: no variant), in the axes' value order."""
    x, y = view.mapped
    xs = {_label(v): i for i, v in enumerate(view.values[x])}
    ys = {_label(v): i for i, v in enumerate(view.values[y])}
    grid = np.full((len(ys), len(xs)), np.nan)
    for cx, cy, value in zip(cells["x"], cells["y"], cells[metric], strict=True):
        grid[ys[cy], xs[cx]] = value
    return grid


# --- PNG ------------------------------------------------------------------------------------


def _norm(values: np.ndarray) -> Normalize:
    """Red below zero, green above (centred on 0 when the values straddle it)."""

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (-1.0, 1.0)
    if low == high:
        low, high = low - 1.0, high + 1.0
    if low < 0 < high:
        return TwoSlopeNorm(vcenter=0.0, vmin=low, vmax=high)
    return Normalize(vmin=low, vmax=high)


def _colorbar(fig: Figure, image: Any, ax: Any, norm: Normalize) -> None:
    """A colour bar with ticks on both sides of zero: a scale centred on 0 stretches the
    shorter side, where matplotlib's evenly spaced ticks would leave it unlabelled."""
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    if isinstance(norm, TwoSlopeNorm) and norm.vmin is not None and norm.vmax is not None:
        ticks = np.unique(np.r_[np.linspace(norm.vmin, 0.0, 4), np.linspace(0.0, norm.vmax, 4)])
        bar.set_ticks(ticks.tolist())
        bar.set_ticklabels([f"{t:.3g}" for t in ticks])


def _draw_heatmap(
    ax: Axes,
    view: GridView,
    grid: np.ndarray,
    norm: Normalize,
    metric: str,
    title: str,
    *,
    annotate_up_to: int = _ANNOTATE_CELLS,
) -> Any:
    """One heatmap on ``ax``; returns the image (for a colour bar)."""
    x, y = view.mapped
    ax.set_facecolor(_GREY)
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap="RdYlGn", norm=norm, origin="lower", aspect="auto"
    )
    xs = [_label(v) for v in view.values[x]]
    ys = [_label(v) for v in view.values[y]]
    step_x = max(1, len(xs) // 12)
    step_y = max(1, len(ys) // 12)
    ax.set_xticks(range(0, len(xs), step_x), xs[::step_x])
    ax.set_yticks(range(0, len(ys), step_y), ys[::step_y])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=10)
    if len(xs) <= annotate_up_to and len(ys) <= 2 * annotate_up_to:
        for (row, col), value in np.ndenumerate(grid):
            if np.isfinite(value):
                shade = float(norm(value))
                ax.text(
                    col,
                    row,
                    format_metric(metric, float(value)),
                    ha="center",
                    va="center",
                    fontsize=7 if len(xs) > 8 else 8,
                    color="white" if shade < 0.15 or shade > 0.85 else "black",
                )
    return image


def _others(view: GridView) -> str:
    rest = [a for a in view.axes if a not in view.mapped]
    return f" (best over {', '.join(rest)})" if rest else ""


def _heatmap_figure(view: GridView) -> Any:

    slices = view.slices()[:MAX_SLICES]
    cols = min(4, max(1, len(slices)))
    slice_rows = -(-len(slices) // cols) if slices else 0
    fig = Figure(figsize=(12, 4.6 + 3.2 * slice_rows), dpi=90)
    heights = [4.6] + [3.2] * slice_rows
    spec = fig.add_gridspec(1 + slice_rows, 4, height_ratios=heights)
    plain_r = _matrix(view, heatmap_cells(view, RETURN), RETURN)
    plain_s = _matrix(view, heatmap_cells(view, SHARPE), SHARPE)
    slice_grids = [_matrix(view, heatmap_cells(view, RETURN, c), RETURN) for c in slices]
    norm_r = _norm(np.concatenate([plain_r.ravel(), *(g.ravel() for g in slice_grids)]))
    for col, (grid, metric, norm) in enumerate(
        ((plain_r, RETURN, norm_r), (plain_s, SHARPE, _norm(plain_s)))
    ):
        ax = fig.add_subplot(spec[0, 2 * col : 2 * col + 2])
        image = _draw_heatmap(ax, view, grid, norm, metric, f"{metric}, no SL/TP{_others(view)}")
        _colorbar(fig, image, ax, norm)
    for index, (combo, grid) in enumerate(zip(slices, slice_grids, strict=True)):
        ax = fig.add_subplot(spec[1 + index // cols, index % cols])
        title = f"sl={combo[0]} tp={combo[1]}" + (
            ": top-K cells only" if np.isnan(grid).any() else ""
        )
        _draw_heatmap(ax, view, grid, norm_r, RETURN, title, annotate_up_to=5)
    fig.suptitle(f"{view.title()}: {RETURN} and {SHARPE} over {' x '.join(view.mapped)}")
    return fig


def _line_figure(view: GridView) -> Any:

    (axis,) = view.mapped
    plain = view.stage_a.sort_values(axis, key=lambda s: s.map(_order))
    fig = Figure(figsize=(12, 4.2), dpi=90)
    axs = fig.subplots(1, 2)
    for ax, metric, color in zip(axs, (RETURN, SHARPE), ("#1f77b4", "#2ca02c"), strict=True):
        best = plain.groupby(axis, sort=False)[metric].max()
        xs = [float(v) if _order(v)[0] == 0 else i for i, v in enumerate(best.index)]
        ax.plot(xs, best.to_numpy(dtype=float), marker="o", color=color, linewidth=1.2)
        ax.axhline(0, color="black", linewidth=0.6, alpha=0.5)
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}, no SL/TP{_others(view)}", fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{view.title()}: one parameter swept ({axis})")
    return fig


def _note_figure(view: GridView, text: str) -> Any:

    fig = Figure(figsize=(8, 2.5), dpi=90)
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True)
    fig.suptitle(view.title())
    return fig


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    return png_bytes(fig)


def render_heatmap_png(view: GridView) -> bytes:
    """``heatmap.png``: Total Return and Sharpe over the two mapped axes (no SL/TP), then one
    Total Return heatmap per SL/TP combination (top-K cells); a line chart for one axis."""
    if len(view.mapped) == 2:
        return _png(_heatmap_figure(view))
    if len(view.mapped) == 1:
        return _png(_line_figure(view))
    return _png(_note_figure(view, "one parameter combination: no parameter axis to map"))


def _bins(values: np.ndarray) -> np.ndarray:
    count = int(min(60, max(10, 2 * np.sqrt(max(len(values), 1)))))
    return np.histogram_bin_edges(values, bins=count) if len(values) else np.linspace(-1, 1, 11)


def render_distribution_png(view: GridView) -> bytes:
    """``distribution.png``: a histogram of Total Return over the Stage A variants, the top-K
    over it (its own bars, SL/TP variants included) and the best marked."""

    plain = view.stage_a[RETURN].to_numpy(dtype=float)
    top = view.topk[RETURN].to_numpy(dtype=float)
    edges = _bins(np.concatenate([plain, top]))
    fig = Figure(figsize=(10, 4.2), dpi=90)
    ax = fig.subplots()
    if len(plain):
        ax.hist(plain, bins=edges.tolist(), color=_STAGE_A, alpha=0.55, label=_stage_a_label(view))
    if len(top):
        ax.hist(
            top,
            bins=edges.tolist(),
            histtype="stepfilled",
            facecolor=_TOPK,
            edgecolor=_TOPK,
            alpha=0.5,
            linewidth=1.5,
            label=f"top-K ({len(top):,} variants)",
        )
        best = float(top[0])
        ax.axvline(
            best,
            color=_BEST,
            linestyle="--",
            linewidth=1.5,
            label=f"best: {format_metric(RETURN, best)} %",
        )
        if edges[0] <= 0 <= edges[-1]:
            ax.axvline(0, color="black", linewidth=0.6, alpha=0.5)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend
    ax.margins(x=0.03)
    ax.set_xlabel(RETURN)
    ax.set_ylabel("variants")
    ax.set_title(f"{view.title()}: distribution of {RETURN}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", framealpha=0.9)
    return _png(fig)


def _stage_a_label(view: GridView) -> str:
    counts = view.summary.get("counts") or {}
    held, total = len(view.stage_a), counts.get("stage_a_variants", len(view.stage_a))
    return f"Stage A, no SL/TP ({held:,} variants)" + (
        f", the best {held:,} of {total:,}" if total > held else ""
    )


# --- HTML -----------------------------------------------------------------------------------


def _palette() -> list[str]:

    return list(reversed(RdYlGn11))  # red (low) to green (high)


def _cells_source(cells: pd.DataFrame) -> ColumnDataSource:
    """The cells as plain lists (readable JSON in the file, not base64 arrays)."""

    return ColumnDataSource(
        {
            "x": [str(v) for v in cells["x"]],
            "y": [str(v) for v in cells["y"]],
            "variant": [str(v) for v in cells["variant_key"]],
            "ret": [float(v) for v in cells[RETURN]],
            "sharpe": _floats(cells[SHARPE]),
            "trades": [int(v) for v in cells[TRADES]],
        }
    )


def _mapper(values: Sequence[float]) -> Any:

    finite = [v for v in values if v is not None and np.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (-1.0, 1.0)
    if low < 0 < high:  # centred on 0: red losses, green gains
        bound = max(-low, high)
        low, high = -bound, bound
    elif low == high:
        low, high = low - 1.0, high + 1.0
    return LinearColorMapper(palette=_palette(), low=low, high=high, nan_color=_GREY)


def _heatmap_html(
    view: GridView,
    cells: pd.DataFrame,
    metric: str,
    title: str,
    mapper: Any,
    *,
    size: tuple[int, int] = (520, 420),
) -> Model:

    x, y = view.mapped
    fig = figure(
        title=title,
        x_range=FactorRange(factors=[_label(v) for v in view.values[x]]),
        y_range=FactorRange(factors=[_label(v) for v in view.values[y]]),
        width=size[0],
        height=size[1],
        tools="pan,wheel_zoom,box_zoom,reset,save",
        x_axis_label=x,
        y_axis_label=y,
    )
    fig.background_fill_color = _GREY
    fig.grid.grid_line_color = None
    for axis, count in ((fig.xaxis, len(view.values[x])), (fig.yaxis, len(view.values[y]))):
        if count > _LABELS_MAX:  # unreadable: the values are on hover
            axis.major_label_text_font_size = "0pt"
    field = "ret" if metric == RETURN else "sharpe"
    fig.rect(
        x="x",
        y="y",
        width=1,
        height=1,
        source=_cells_source(cells),
        fill_color={"field": field, "transform": mapper},
        line_color="white",
    )
    fig.add_tools(
        HoverTool(
            tooltips=[
                (x, "@x"),
                (y, "@y"),
                (RETURN, "@ret{0.00}"),
                (SHARPE, "@sharpe{0.000}"),
                (TRADES, "@trades"),
                ("variant", "@variant"),
            ]
        )
    )
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    return fig


def _heatmaps_html(view: GridView) -> list[Model]:

    plain_r, plain_s = heatmap_cells(view, RETURN), heatmap_cells(view, SHARPE)
    slices = [(c, heatmap_cells(view, RETURN, c)) for c in view.slices()[:MAX_SLICES]]
    mapper_r = _mapper([*plain_r[RETURN], *(v for _c, s in slices for v in s[RETURN])])
    mapper_s = _mapper(list(plain_s[SHARPE]))
    parts: list[Model] = [
        row(
            _heatmap_html(view, plain_r, RETURN, f"{RETURN}, no SL/TP{_others(view)}", mapper_r),
            _heatmap_html(view, plain_s, SHARPE, f"{SHARPE}, no SL/TP{_others(view)}", mapper_s),
        )
    ]
    if slices:
        parts.append(
            Div(
                text="<h3>SL/TP slices</h3><p>Total Return per SL/TP combination; Stage B keeps "
                "only the top-K, so a cell is filled when its variant made the top-K.</p>"
            )
        )
        figures = [
            _heatmap_html(view, cells, RETURN, f"sl={c[0]} tp={c[1]}", mapper_r, size=(300, 260))
            for c, cells in slices
        ]
        parts.append(gridplot(figures, ncols=4))  # type: ignore[arg-type]
    return parts


def _lines_html(view: GridView) -> Model:

    (axis,) = view.mapped
    plain = view.stage_a.sort_values(axis, key=lambda s: s.map(_order))
    figures = []
    for metric, color in ((RETURN, "#1f77b4"), (SHARPE, "#2ca02c")):
        best = plain.sort_values([metric, "variant_key"], ascending=[False, True])
        best = best.drop_duplicates(axis).sort_values(axis, key=lambda s: s.map(_order))
        source = ColumnDataSource(
            {
                "x": [float(v) for v in best[axis]],
                "y": _floats(best[metric]),
                "variant": [str(v) for v in best["variant_key"]],
            }
        )
        fig = figure(
            title=f"{metric}, no SL/TP{_others(view)}",
            width=520,
            height=360,
            x_axis_label=axis,
            y_axis_label=metric,
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        fig.line("x", "y", source=source, color=color)
        fig.scatter("x", "y", source=source, color=color, size=7)
        fig.add_tools(HoverTool(tooltips=[(axis, "@x"), (metric, "@y"), ("variant", "@variant")]))
        figures.append(fig)
    return row(*figures)


def _distribution_html(view: GridView) -> Model:

    plain = view.stage_a[RETURN].to_numpy(dtype=float)
    topk = view.topk
    edges = _bins(np.concatenate([plain, topk[RETURN].to_numpy(dtype=float)]))
    fig = figure(
        title=f"Distribution of {RETURN}",
        width=1040,
        height=360,
        x_axis_label=RETURN,
        y_axis_label="variants",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    for values, color, label in (
        (plain, _STAGE_A, _stage_a_label(view)),
        (topk[RETURN].to_numpy(dtype=float), _TOPK, f"top-K ({len(topk):,} variants)"),
    ):
        if len(values):
            counts, _ = np.histogram(values, bins=edges)
            fig.quad(
                left=[float(v) for v in edges[:-1]],
                right=[float(v) for v in edges[1:]],
                bottom=0,
                top=[int(c) for c in counts],
                fill_color=color,
                fill_alpha=0.6,
                line_color="white",
                legend_label=label,
            )
    if len(topk):
        marks = fig.scatter(
            "ret",
            "zero",
            source=ColumnDataSource(
                {
                    "ret": [float(v) for v in topk[RETURN]],
                    "zero": [0.0] * len(topk),
                    "rank": [int(v) for v in topk["rank"]],
                    "variant": [str(v) for v in topk["variant_key"]],
                    "sharpe": _floats(topk[SHARPE]),
                }
            ),
            marker="triangle",
            size=9,
            color=_TOPK,
            line_color="black",
            legend_label="top-K variants",
        )
        fig.add_tools(
            HoverTool(
                renderers=[marks],
                tooltips=[
                    ("rank", "@rank"),
                    ("variant", "@variant"),
                    (RETURN, "@ret{0.00}"),
                    (SHARPE, "@sharpe{0.000}"),
                ],
            )
        )
        fig.add_layout(
            Span(location=float(topk[RETURN].iloc[0]), dimension="height", line_color=_BEST)
        )
    fig.legend.location = "top_left"
    return fig


def _header(view: GridView) -> str:

    s = view.summary
    counts = s.get("counts") or {}
    axes = ", ".join(f"{a} ({len(view.values[a])} values)" for a in view.axes) or "none"
    return (
        f"<h2>{escape(view.title())}</h2><p>variants: Stage A "
        f"{counts.get('stage_a_evaluated', 0):,} of {counts.get('stage_a_variants', 0):,}, "
        f"Stage B {counts.get('stage_b_evaluated', 0):,}, pruned {counts.get('pruned', 0):,}; "
        f"top {counts.get('top_k', 0)}. Parameters: {escape(axes)}; mapped: "
        f"{escape(' x '.join(view.mapped) or 'none')}. data_hash "
        f"<code>{escape(str(s.get('data_hash')))}</code></p>"
    )


def render_grid_html(view: GridView) -> bytes:
    """``report.html``: the heatmaps (hover: cell values and the variant), the SL/TP slices
    and the distribution, one self-contained file (same view, same bytes)."""

    parts: list[Model] = [Div(text=_header(view), width=1040)]
    if len(view.mapped) == 2:
        parts += _heatmaps_html(view)
    elif len(view.mapped) == 1:
        parts.append(_lines_html(view))
    else:
        parts.append(Div(text="<p>one parameter combination: no parameter axis to map</p>"))
    parts.append(_distribution_html(view))
    return standalone_html(column(*parts), view.title())


def grid_charts(
    topk: pd.DataFrame, evaluated: pd.DataFrame, summary: Mapping[str, Any]
) -> dict[str, bytes]:
    """The grid report's chart files by name: ``heatmap.png``, ``distribution.png``,
    ``report.html``."""
    view = grid_view(topk, evaluated, summary)
    return {
        "heatmap.png": render_heatmap_png(view),
        "distribution.png": render_distribution_png(view),
        "report.html": render_grid_html(view),
    }
