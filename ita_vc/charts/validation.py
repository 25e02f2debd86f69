"""The validation report's charts (docs/validation.md): one PNG per test that ran.

* ``permutation.png``: the permuted Total Returns, the actual one marked, the p-value;
* ``bootstrap.png``: the bootstrap replicates' total return, the confidence interval shaded;
* ``monte_carlo.png``: the equity fan (p5..p95 band, p50 line) over the trade number;
* ``walk_forward.png``: the stitched out-of-sample equity, each segment's start marked;
* ``pbo.png``: the CSCV logits, lambda <= 0 (overfit) shaded, the PBO.

matplotlib Agg, no timestamp in the PNG metadata: the same outcome gives the same bytes.
Values that are not finite are left out (and counted in the title).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ita_vc.backtest.format import format_fixed as _f
from ita_vc.charts.run_png import png_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy.typing as npt
    from matplotlib.axes import Axes

    from ita_vc.validation.outcome import ValidationOutcome

__all__ = [
    "CHART_FILES",
    "placeholder_png",
    "render_bootstrap_png",
    "render_monte_carlo_png",
    "render_pbo_png",
    "render_permutation_png",
    "render_wfo_png",
    "validation_charts",
]

_MAIN = "#1f77b4"
_MARK = "#d62728"
_BAND = "#9ecae1"
_GREY = "#7f7f7f"


def _figure(height: float = 4.2, *, counts: bool = False) -> tuple[Figure, Axes]:
    """A figure; ``counts``: the y axis counts things (whole-number ticks)."""
    fig = Figure(figsize=(10, height), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    if counts:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _finite(values: npt.ArrayLike | None) -> tuple[npt.NDArray[np.float64], int]:
    """The finite values and how many were dropped."""
    x = np.asarray(values if values is not None else [], dtype=np.float64)
    keep = np.isfinite(x)
    return x[keep], int((~keep).sum())


def _dropped(count: int) -> str:
    return f" ({count:,} non-finite values left out)" if count else ""


def _hist(ax: Axes, values: npt.NDArray[np.float64], **style: Any) -> None:
    """A histogram that also draws one value or all-equal values (one narrow bar)."""
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * max(1.0, abs(low)):
        width = max(abs(low) * 0.01, 0.01)
        edges = np.array([low - width, low + width])
    else:
        bins = int(min(60, max(10, 2 * np.sqrt(len(values)))))
        edges = np.histogram_bin_edges(values, bins=bins)
    ax.hist(values, bins=edges.tolist(), **style)


def _mark_actual(ax: Axes, actual: object) -> None:
    """The run's own value as a dashed line, in the legend."""
    if isinstance(actual, int | float):
        label = f"actual: {_f(actual, 2)} %"
        ax.axvline(actual, color=_MARK, linestyle="--", linewidth=2, label=label)


def _histogram_png(fig: Figure, ax: Axes, xlabel: str, ylabel: str, title: str) -> bytes:
    """A histogram's labels and title, room above the bars for the legend, the PNG."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
    ax.legend(loc="upper left", framealpha=0.9)
    return png_bytes(fig)


def _title(summary: Mapping[str, Any]) -> str:
    return (
        f"{summary.get('setup_id')} {summary.get('rule_version')} on {summary.get('symbol')} "
        f"{summary.get('timeframe')}"
    )


def render_permutation_png(outcome: ValidationOutcome) -> bytes:
    """The permuted Total Returns [%] with the actual one marked."""
    s = outcome.summary
    perm = s["permutation"]
    values, dropped = _finite(outcome.permuted_returns)
    fig, ax = _figure(counts=True)
    if len(values):
        _hist(ax, values, color=_MAIN, alpha=0.7, label=f"permuted price paths ({len(values):,})")
    actual = perm.get("actual")
    _mark_actual(ax, actual)
    title = f"{_title(s)}: permutation test, n = {perm['n']:,}, p = {_f(perm.get('p_value'), 4)}"
    return _histogram_png(fig, ax, "Total Return [%]", "permutations", title + _dropped(dropped))


def render_bootstrap_png(outcome: ValidationOutcome) -> bytes:
    """The replicates' total return [%] with the confidence interval shaded."""
    s = outcome.summary
    boot = s["block_bootstrap"]
    values, dropped = _finite(outcome.bootstrap_returns)
    fig, ax = _figure(counts=True)
    ci = boot.get("return_ci") or {}
    lower, upper = ci.get("lower"), ci.get("upper")
    level = f"{_f(100 * boot['confidence'], 0)} %"
    if isinstance(lower, int | float) and isinstance(upper, int | float):
        ax.axvspan(
            lower,
            upper,
            color=_BAND,
            alpha=0.5,
            label=f"{level} CI [{_f(lower, 2)}, {_f(upper, 2)}] %",
        )
    if len(values):
        _hist(ax, values, color=_MAIN, alpha=0.7, label=f"replicates ({len(values):,})")
    actual = (s.get("actual") or {}).get("Total Return [%]")
    _mark_actual(ax, actual)
    title = (
        f"{_title(s)}: circular block bootstrap, n = {boot['n']:,}, block "
        f"{boot['block_size']} days, {level}"
    )
    xlabel = "total return [%] of a replicate"
    return _histogram_png(fig, ax, xlabel, "replicates", title + _dropped(dropped))


def render_monte_carlo_png(outcome: ValidationOutcome) -> bytes:
    """The equity fan over the trade number: p5..p95 band, p50 line, the initial cash."""
    s = outcome.summary
    mc = s["monte_carlo"]
    fan = np.asarray(outcome.mc_fan, dtype=np.float64)
    fig, ax = _figure()
    steps, p5, p50, p95 = fan
    ax.fill_between(steps, p5, p95, color=_BAND, alpha=0.6, label="p5 .. p95")
    ax.plot(steps, p50, color=_MAIN, linewidth=1.8, label="p50")
    ax.axhline(mc["init_cash"], color=_GREY, linestyle="--", linewidth=1, label="initial cash")
    ax.set_xlabel("trade")
    ax.set_ylabel("equity")
    ax.set_title(
        f"{_title(s)}: Monte Carlo over {mc['trades']:,} trades, n = {mc['n']:,}, "
        f"P(loss) = {_f(mc.get('prob_loss'), 4)}"
    )
    ax.legend(loc="upper left", framealpha=0.9)
    return png_bytes(fig)


def render_wfo_png(outcome: ValidationOutcome) -> bytes:
    """The stitched out-of-sample equity, a dashed line where each segment starts."""
    s = outcome.summary
    wfo = s["wfo"]
    series = outcome.wfo
    if series is None:
        raise ValueError("the outcome has no walk-forward series to draw")
    fig, ax = _figure()
    times = np.asarray(series.ts, dtype=np.int64).astype("datetime64[ms]")
    equity, _dropped_n = _finite(series.equity)
    if len(equity) == len(times):
        ax.plot(times, equity, color=_MAIN, linewidth=1.4, label="out-of-sample equity")
    ax.axhline(series.init_cash, color=_GREY, linestyle=":", linewidth=1, label="initial cash")
    segments = wfo.get("segments") or []
    for i, start in enumerate(series.boundaries):
        at: Any = np.datetime64(int(start), "ms")
        ax.axvline(at, color=_MARK, linestyle="--", linewidth=0.9, alpha=0.7)
        if len(segments) <= 8 and i < len(segments):
            ax.annotate(
                str(segments[i]["variant_key"]),
                (at, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                fontsize=7,
                rotation=90,
                va="top",
                color=_MARK,
            )
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ret = (wfo.get("metrics") or {}).get("Total Return [%]")
    ax.set_ylabel("equity")
    ax.set_title(
        f"{_title(s)}: walk-forward ({wfo['mode']}, {len(segments)} segments)\n"
        f"out of sample {_f(ret, 2)} %, WFE = {_f(wfo.get('wfe'), 3)}; dashed: a segment "
        "starts (its variant)"
    )
    ax.legend(loc="lower left", framealpha=0.9)
    return png_bytes(fig)


def render_pbo_png(outcome: ValidationOutcome) -> bytes:
    """The CSCV logits; lambda <= 0 (the in-sample best below the median out of sample)
    shaded."""
    s = outcome.summary
    over = s["overfitting"]
    values, dropped = _finite(outcome.lambdas)
    fig, ax = _figure(counts=True)
    if len(values):
        _hist(ax, values, color=_MAIN, alpha=0.7, label=f"combinations ({len(values):,})")
        low = min(float(values.min()), 0.0)
        ax.axvspan(
            low - 0.05 * (abs(low) + 1), 0, color=_MARK, alpha=0.08, label="overfit (lambda <= 0)"
        )
    ax.axvline(0, color=_MARK, linestyle="--", linewidth=1.5)
    title = (
        f"{_title(s)}: CSCV, S = {over['partitions']}, {over['n_variants']:,} variants, "
        f"PBO = {_f(over.get('pbo'), 4)}, DSR = {_f(over.get('dsr'), 4)}"
    )
    xlabel = "lambda = logit of the in-sample best's out-of-sample rank"
    return _histogram_png(fig, ax, xlabel, "combinations", title + _dropped(dropped))


CHART_FILES = {
    "permutation.png": "permutation",
    "bootstrap.png": "block_bootstrap",
    "monte_carlo.png": "monte_carlo",
    "walk_forward.png": "wfo",
    "pbo.png": "overfitting",
}
"""Every chart file of a validation and the summary key of its test."""


def placeholder_png(name: str, outcome: ValidationOutcome) -> bytes:
    """A small chart saying why ``name`` draws nothing this time (the test was skipped, or had
    nothing to draw): a folder of outputs never keeps an earlier validation's chart."""
    key = CHART_FILES[name]
    fig = Figure(figsize=(6, 1.2), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    why = (
        f"skipped: params.yaml validation.{key} is not set"
        if outcome.summary.get(key) is None
        else "nothing to draw (see report.md)"
    )
    ax.text(0.5, 0.5, f"{_title(outcome.summary)}\n{key}: {why}", ha="center", va="center")
    return png_bytes(fig)


def validation_charts(outcome: ValidationOutcome) -> dict[str, bytes]:
    """File name -> PNG of each test that ran and has something to draw."""
    s = outcome.summary
    charts: list[tuple[str, str, object, Callable[[ValidationOutcome], bytes]]] = [
        ("permutation.png", "permutation", outcome.permuted_returns, render_permutation_png),
        ("bootstrap.png", "block_bootstrap", outcome.bootstrap_returns, render_bootstrap_png),
        ("monte_carlo.png", "monte_carlo", outcome.mc_fan, render_monte_carlo_png),
        ("walk_forward.png", "wfo", outcome.wfo, render_wfo_png),
        ("pbo.png", "overfitting", outcome.lambdas, render_pbo_png),
    ]
    out: dict[str, bytes] = {}
    for name, key, data, render in charts:
        if s.get(key) is None or data is None:
            continue
        if isinstance(data, np.ndarray) and data.size == 0:
            continue
        out[name] = render(outcome)
    return out
