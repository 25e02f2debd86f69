"""What a run's charts draw, in one place: per bar the close, equity, drawdown and the
buy-and-hold benchmark; per trade its entry and exit.

The price and the benchmark come from the candles the backtest used (``results/prepared``),
taken at the bars of the equity series (the range, without the warm-up). Nothing here is
decimated: the renderers pick display points with
:func:`ita_vc.charts.decimate.decimate_index` and draw every trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.utils.arrays import BoolArray, FloatArray, IntArray

__all__ = ["EXIT_REASONS", "RunSeries", "TradeMarks", "run_series"]

EXIT_REASONS = ("signal", "sl", "tp", "end")
"""The exit reasons a trade records (``ita_vc.backtest.engine.REASONS``), in legend order."""


@dataclass(frozen=True, slots=True)
class TradeMarks:
    """The trades as plain arrays: times in ms UTC, ``long`` True for a long position."""

    entry_ts: IntArray
    exit_ts: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    long: BoolArray
    reason: tuple[str, ...]
    pnl: FloatArray
    return_pct: FloatArray

    def __len__(self) -> int:
        return len(self.entry_ts)


@dataclass(frozen=True, slots=True)
class RunSeries:
    """One run's chart data: bars of the range (``ts`` in ms UTC) and its trades."""

    ts: IntArray
    close: FloatArray
    equity: FloatArray
    drawdown: FloatArray
    benchmark: FloatArray
    trades: TradeMarks
    init_cash: float
    safe: FloatArray | None = None
    """The profit-lock sizing's locked profit per bar (``strategy_safe_quote``), else None."""
    available: FloatArray | None = None
    """What its next entry may use per bar (``strategy_available_quote``), else None."""


def _column(frame: pd.DataFrame, name: str, dtype: Any, n: int) -> Any:
    if name in frame:
        return np.asarray(frame[name], dtype=dtype)
    return np.zeros(n, dtype=dtype)


def _trade_marks(trades: pd.DataFrame) -> TradeMarks:
    n = len(trades)
    direction = (
        np.asarray(trades["direction"], dtype=object) if "direction" in trades else np.full(n, "")
    )
    reason: Any = np.asarray(trades["exit_reason"], dtype=object) if "exit_reason" in trades else []
    return TradeMarks(
        entry_ts=_column(trades, "entry_ts", np.int64, n),
        exit_ts=_column(trades, "exit_ts", np.int64, n),
        entry_price=_column(trades, "entry_price", np.float64, n),
        exit_price=_column(trades, "exit_price", np.float64, n),
        long=direction == "long",
        reason=tuple(str(r) for r in reason) if n else (),
        pnl=_column(trades, "pnl", np.float64, n),
        return_pct=_column(trades, "return_pct", np.float64, n),
    )


def _closes_at(candles: pd.DataFrame, ts: IntArray) -> FloatArray:
    """The close of each bar of ``ts`` (NaN where the candles have no such bar)."""
    candle_ts = np.asarray(candles["ts_utc"], dtype=np.int64)
    closes = np.asarray(candles["close"], dtype=np.float64)
    out = np.full(len(ts), np.nan)
    if not len(candle_ts):
        return out
    order = np.argsort(candle_ts, kind="stable")
    candle_ts, closes = candle_ts[order], closes[order]
    at = np.clip(np.searchsorted(candle_ts, ts), 0, len(candle_ts) - 1)
    found = candle_ts[at] == ts
    out[found] = closes[at[found]]
    return out


def run_series(
    equity: pd.DataFrame,
    drawdown: pd.DataFrame,
    trades: pd.DataFrame,
    candles: pd.DataFrame,
    init_cash: float,
) -> RunSeries:
    """The chart data of one run from its tables (``equity``, ``drawdown`` and ``trades`` of
    ``results/backtest``, the prepared ``candles``): the benchmark is ``init_cash *
    close / close[0]`` over the bars of the equity series; the profit-lock balances come with
    the equity table when it has them."""
    ts = np.asarray(equity["ts_utc"], dtype=np.int64)
    close = _closes_at(candles, ts)
    first = close[0] if len(close) else np.nan
    if np.isfinite(first) and first != 0:
        benchmark = init_cash * close / first
    else:  # no first close to hold from
        benchmark = np.full(len(ts), np.nan)
    return RunSeries(
        ts=ts,
        close=close,
        equity=np.asarray(equity["equity"], dtype=np.float64),
        drawdown=np.asarray(drawdown["drawdown"], dtype=np.float64),
        benchmark=np.asarray(benchmark, dtype=np.float64),
        trades=_trade_marks(trades),
        init_cash=float(init_cash),
        safe=_optional(equity, "strategy_safe_quote"),
        available=_optional(equity, "strategy_available_quote"),
    )


def _optional(frame: pd.DataFrame, name: str) -> FloatArray | None:
    return np.asarray(frame[name], dtype=np.float64) if name in frame else None
