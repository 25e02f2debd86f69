"""The metrics report (``metrics.json``), to the letter of docs/backtest-model.md.

Inputs: bar timestamps (ms), closes, the equity series (after all of a bar's fills, the final
forced close included), the position series (the final forced close excluded), the trades, and
the initial cash. Undefined values are ``None`` (``null`` in JSON), never NaN or inf.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt
    import pandas as pd

    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = ["METRIC_NAMES", "compute_metrics", "drawdown_periods", "drawdown_series"]

METRIC_NAMES = (
    "Start",
    "End",
    "Duration",
    "Init. Cash",
    "Total Profit",
    "Total Return [%]",
    "Benchmark Return [%]",
    "Position Coverage [%]",
    "Max. Drawdown [%]",
    "Avg. Drawdown [%]",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "Num. Trades",
    "Win Rate [%]",
    "Best Trade [%]",
    "Worst Trade [%]",
    "Avg. Trade [%]",
    "Max. Trade Duration",
    "Avg. Trade Duration",
    "Expectancy",
    "SQN",
    "Gross Exposure",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
)
_DAY_MS = 86_400_000


def _clean(value: object) -> float | int | None:
    """Python float/int, or None for NaN/inf."""
    if value is None:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    number = float(value)  # type: ignore[arg-type]  # a numpy or Python number
    return number if math.isfinite(number) else None


@nb.njit(cache=True, nogil=True, inline="always")
def drawdown_step(peak: float, value: float) -> tuple[float, float]:  # pragma: no cover
    """One bar of the drawdown: ``(new running peak, value / peak - 1)``. Every drawdown in
    ita-vc (the series, the grid's Max DD) goes through it, so they agree bit for bit. The
    kernels that inline it live in this module: numba's cache only notices edits to the file
    of the function it compiled."""
    peak = max(peak, value)
    return peak, value / peak - 1.0


@nb.njit(cache=True, nogil=True)
def _drawdown(equity: FloatArray, init_cash: float) -> FloatArray:  # pragma: no cover
    out = np.empty(equity.shape[0])
    peak = init_cash
    for i in range(equity.shape[0]):
        peak, out[i] = drawdown_step(peak, equity[i])
    return out


@nb.njit(cache=True, nogil=True)
def return_and_max_drawdown(  # pragma: no cover - compiled
    equity: FloatArray,
    init_cash: float,
) -> tuple[float, float]:
    """``(Total Return [%], Max. Drawdown [%])`` in one pass without a drawdown array (the
    grid's hot path), through :func:`drawdown_step`: the numbers equal a single run's."""
    peak = init_cash
    low = 0.0
    for i in range(equity.shape[0]):
        peak, level = drawdown_step(peak, equity[i])
        low = min(low, level)
    return (equity[-1] / init_cash - 1.0) * 100.0, low * 100.0


def drawdown_series(equity: npt.ArrayLike, init_cash: float) -> FloatArray:
    """``equity / peak - 1`` per bar, the peak (running maximum) starting at the initial cash."""
    return _drawdown(np.ascontiguousarray(equity, dtype=np.float64), float(init_cash))


@nb.njit(cache=True, nogil=True)
def _drawdown_periods(
    ts: IntArray,
    equity: FloatArray,
    init_cash: float,
) -> tuple[FloatArray, FloatArray]:  # pragma: no cover
    n = len(equity)
    depths = np.empty(n)
    lengths = np.empty(n)
    count = 0
    peak = init_cash
    peak_i = -1
    in_dd = False
    depth = 0.0
    start_ts = 0
    for i in range(n):
        value = equity[i]
        if value >= peak:
            if in_dd:
                depths[count] = depth
                lengths[count] = (ts[i] - start_ts) / 1000.0
                count += 1
                in_dd = False
            peak = value
            peak_i = i
        else:
            level = value / peak - 1.0
            if not in_dd:
                in_dd = True
                depth = level
                start_ts = ts[0] if peak_i < 0 else ts[peak_i]
            elif level < depth:
                depth = level
    if in_dd:
        depths[count] = depth
        lengths[count] = (ts[n - 1] - start_ts) / 1000.0
        count += 1
    return depths[:count], lengths[:count]


def drawdown_periods(
    ts: npt.ArrayLike,
    equity: npt.ArrayLike,
    init_cash: float,
) -> list[tuple[float, float]]:
    """``(deepest point as a fraction, duration in seconds)`` of each drawdown period.

    A period starts at the first bar below the running peak and ends at the first bar with
    equity >= that peak (recovery) or at the last bar. Its duration runs from the peak bar (the
    last bar at the running peak before the period, or Start when the peak is still the initial
    cash) to the recovery bar (or End).
    """
    depths, lengths = _drawdown_periods(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(equity, dtype=np.float64),
        float(init_cash),
    )
    return list(zip(depths.tolist(), lengths.tolist(), strict=True))


def daily_index(ts: npt.ArrayLike) -> IntArray:
    """For each UTC day from the first to the last bar, the index of its last bar (a day
    without bars takes the previous day's): ``equity[daily_index(ts)]`` is the daily equity."""
    days = np.asarray(ts, dtype=np.int64) // _DAY_MS
    last_of_day = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    index = np.full(int(days[-1] - days[0]) + 1, -1, dtype=np.int64)
    index[days[last_of_day] - days[0]] = last_of_day
    return np.maximum.accumulate(index)


def bar_days_index(ts: npt.ArrayLike) -> IntArray:
    """For each UTC day that has a bar, the index of its last bar (days without bars - a
    stock market's weekends and holidays - are skipped, not forward-filled)."""
    days = np.asarray(ts, dtype=np.int64) // _DAY_MS
    return np.flatnonzero(np.r_[days[1:] != days[:-1], True]).astype(np.int64)


def return_days_index(ts: npt.ArrayLike, periods_per_year: float = 365) -> IntArray:
    """The bars whose equity makes the daily series of Sharpe and Sortino: every calendar
    day (:func:`daily_index`) when ``periods_per_year`` is 365, else only the days with a bar
    (:func:`bar_days_index`)."""
    return daily_index(ts) if periods_per_year == 365 else bar_days_index(ts)


def daily_returns(daily_equity: FloatArray) -> FloatArray:
    """Day-over-day returns of a daily equity series."""
    return daily_equity[1:] / daily_equity[:-1] - 1.0


def sharpe_ratio(returns: FloatArray, periods_per_year: float = 365) -> float | None:
    """The Sharpe Ratio of docs/backtest-model.md: mean / sample std of the daily returns x
    sqrt(periods_per_year); None with fewer than two returns or no variation."""
    if len(returns) < 2:
        return None
    std = float(returns.std(ddof=1))
    return float(returns.mean() / std * math.sqrt(periods_per_year)) if std > 0 else None


@nb.njit(cache=True, nogil=True)
def _exposure(
    position: FloatArray,
    close: FloatArray,
    equity: FloatArray,
) -> FloatArray:  # pragma: no cover - compiled
    """``|position * close| / equity`` per bar, in one pass (numpy's ``mean`` sums it)."""
    out = np.empty(len(equity))
    for i in range(len(equity)):
        out[i] = abs(position[i] * close[i]) / equity[i]
    return out


def compute_metrics(  # noqa: PLR0915 - one line per metric
    ts: npt.ArrayLike,
    close: npt.ArrayLike,
    equity: npt.ArrayLike,
    position: npt.ArrayLike,
    trades: Mapping[str, FloatArray | IntArray] | pd.DataFrame,
    init_cash: float,
    drawdown: npt.ArrayLike | None = None,
    periods_per_year: float = 365,
) -> dict[str, Any]:
    """All metrics; ``trades`` maps ``entry_ts, exit_ts, pnl, return_pct`` to equal-length
    columns (a DataFrame or a dict of arrays); ``drawdown`` is :func:`drawdown_series` of the
    equity, when the caller has it. ``periods_per_year`` annualises Sharpe and Sortino
    (365: over every calendar day; another value: over the days that have a bar)."""
    from ita_vc.candles.validate import format_ts

    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    metrics: dict[str, Any] = dict.fromkeys(METRIC_NAMES)
    metrics["Init. Cash"] = float(init_cash)
    num_trades = len(trades["pnl"])
    metrics["Num. Trades"] = num_trades
    if n == 0:
        metrics.update({"Total Profit": 0.0, "Total Return [%]": 0.0, "Duration": 0.0})
        return metrics
    equity = np.asarray(equity, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    position = np.asarray(position, dtype=np.float64)
    final = float(equity[-1])
    duration = (int(ts[-1]) - int(ts[0])) / 1000.0
    metrics["Start"] = format_ts(int(ts[0]))
    metrics["End"] = format_ts(int(ts[-1]))
    metrics["Duration"] = duration
    metrics["Total Profit"] = final - init_cash
    metrics["Total Return [%]"] = (final / init_cash - 1.0) * 100.0
    metrics["Benchmark Return [%]"] = (close[-1] / close[0] - 1.0) * 100.0
    metrics["Position Coverage [%]"] = np.count_nonzero(position) / n * 100.0
    dd = drawdown_series(equity, init_cash) if drawdown is None else np.asarray(drawdown)
    max_dd = float(dd.min())
    metrics["Max. Drawdown [%]"] = max_dd * 100.0
    depths, lengths = _drawdown_periods(ts, equity, float(init_cash))
    if len(depths):
        metrics["Avg. Drawdown [%]"] = float(depths.mean()) * 100.0
        metrics["Max. Drawdown Duration"] = float(lengths.max())
        metrics["Avg. Drawdown Duration"] = float(lengths.mean())
    if num_trades:
        pnl = np.asarray(trades["pnl"], dtype=np.float64)
        ret = np.asarray(trades["return_pct"], dtype=np.float64)
        held = (
            np.asarray(trades["exit_ts"], dtype=np.int64)
            - np.asarray(trades["entry_ts"], dtype=np.int64)
        ) / 1000.0
        metrics["Win Rate [%]"] = np.count_nonzero(pnl > 0) / len(pnl) * 100.0
        metrics["Best Trade [%]"] = ret.max()
        metrics["Worst Trade [%]"] = ret.min()
        metrics["Avg. Trade [%]"] = ret.mean()
        metrics["Max. Trade Duration"] = held.max()
        metrics["Avg. Trade Duration"] = held.mean()
        metrics["Expectancy"] = pnl.mean()
        if len(pnl) > 1:
            std = pnl.std(ddof=1)
            metrics["SQN"] = math.sqrt(len(pnl)) * pnl.mean() / std if std > 0 else None
    metrics["Gross Exposure"] = (
        _exposure(position, close, equity).mean() if np.all(equity > 0) else None
    )
    returns = daily_returns(equity[return_days_index(ts, periods_per_year)])
    metrics["Sharpe Ratio"] = sharpe_ratio(returns, periods_per_year)
    if len(returns) > 0:
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        metrics["Sortino Ratio"] = (
            returns.mean() * math.sqrt(periods_per_year) / downside if downside > 0 else None
        )
    days = duration / 86_400.0
    if final > 0 and days > 0 and max_dd < 0:
        try:
            cagr = (final / init_cash) ** (365.0 / days) - 1.0
        except OverflowError:  # a tiny range annualised: no finite CAGR
            cagr = math.inf
        metrics["Calmar Ratio"] = cagr / abs(max_dd)
    return {k: v if isinstance(v, str) else _clean(v) for k, v in metrics.items()}
