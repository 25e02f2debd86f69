"""The close-fill engine: one numba-compiled pass over the bars of the range.

At each bar close t, in this order (see docs/backtest-model.md):

1. a position opened at an earlier bar is checked against close-based SL/TP (percent of its
   entry fill price; NaN disables; both hit -> SL) and exits at close[t];
2. a signal edge (``s[t] != s[t-1]`` and ``s[t]`` LONG or SHORT) acts per the direction mode
   (reversals close, then open); an edge in the held direction is ignored; NEUTRAL never
   closes; nothing opens on the last bar;
3. fills: buys at ``close * (1 + slip)``, sells at ``close * (1 - slip)``, fee
   ``fee_rate * |qty * fill|``; sizes after the bar's exits are booked;

equity = cash + signed position * close. A position still open after the last bar is closed at
the last close (slippage and fee) with reason ``end``; it changes the last equity value but not
the position series.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from ita_vc.backtest.records import (
    FILL_FEE,
    FILL_I,
    FILL_PNL,
    FILL_PRICE,
    FILL_QTY,
    FILL_SIDE,
    FILL_SLIPPAGE,
    FILL_WIDTH,
    TRADE_DIR,
    TRADE_ENTRY_FEE,
    TRADE_ENTRY_I,
    TRADE_ENTRY_PRICE,
    TRADE_EQUITY_BEFORE,
    TRADE_EXIT_FEE,
    TRADE_EXIT_I,
    TRADE_EXIT_PRICE,
    TRADE_PNL,
    TRADE_QTY,
    TRADE_REASON,
    TRADE_RETURN_PCT,
    TRADE_WIDTH,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

    from ita_vc.utils.arrays import FloatArray, Int8Array

__all__ = [
    "DIRECTION_CODES",
    "REASONS",
    "SIZING_CODES",
    "EngineOutput",
    "engine_pass",
    "run_engine",
]

DIRECTION_CODES = {"long-short": 0, "long-only": 1, "short-only": 2}
SIZING_CODES = {
    "all_in": 0,
    "fixed_quote": 1,
    "strategy_compound": 2,
    "strategy_compound_profit_lock": 3,
}
REASONS = ("signal", "sl", "tp", "end")
_SIGNAL, _SL, _TP, _END = 0, 1, 2, 3


@nb.njit(cache=True, nogil=True, inline="always")
def _close(  # pragma: no cover - compiled
    trades: FloatArray,
    fills: FloatArray,
    n_trades: int,
    n_fills: int,
    t: int,
    c: float,
    pos_dir: int,
    qty: float,
    entry_i: int,
    entry_price: float,
    entry_fee: float,
    entry_equity: float,
    cash: float,
    fee_rate: float,
    slip: float,
    reason: int,
) -> tuple[float, float]:
    """Close the position at close ``c``: book the fill, record trade and fill rows; returns
    ``(cash, net pnl)``."""
    fill = c * (1 - slip) if pos_dir == 1 else c * (1 + slip)
    fee = fee_rate * abs(qty * fill)
    if pos_dir == 1:
        cash += qty * fill - fee
    else:
        cash -= qty * fill + fee
    pnl = pos_dir * qty * (fill - entry_price) - entry_fee - fee
    trades[n_trades, TRADE_ENTRY_I] = entry_i
    trades[n_trades, TRADE_EXIT_I] = t
    trades[n_trades, TRADE_DIR] = pos_dir
    trades[n_trades, TRADE_QTY] = qty
    trades[n_trades, TRADE_ENTRY_PRICE] = entry_price
    trades[n_trades, TRADE_EXIT_PRICE] = fill
    trades[n_trades, TRADE_ENTRY_FEE] = entry_fee
    trades[n_trades, TRADE_EXIT_FEE] = fee
    trades[n_trades, TRADE_PNL] = pnl
    trades[n_trades, TRADE_RETURN_PCT] = pnl / (qty * entry_price) * 100
    trades[n_trades, TRADE_REASON] = reason
    trades[n_trades, TRADE_EQUITY_BEFORE] = entry_equity
    fills[n_fills, FILL_I] = t
    fills[n_fills, FILL_SIDE] = -pos_dir
    fills[n_fills, FILL_QTY] = qty
    fills[n_fills, FILL_PRICE] = fill
    fills[n_fills, FILL_FEE] = fee
    fills[n_fills, FILL_SLIPPAGE] = qty * abs(fill - c)
    fills[n_fills, FILL_PNL] = pnl
    return cash, pnl


@nb.njit(cache=True, nogil=True)
def _engine(  # noqa: PLR0912, PLR0915 - one compiled loop, on purpose  # pragma: no cover
    close: FloatArray,
    states: Int8Array,
    prev_state: int,
    direction: int,
    mode: int,
    amount: float,
    budget: float,
    safe_pct: float,
    sl_pct: float,
    tp_pct: float,
    fee_rate: float,
    slip: float,
    init_cash: float,
    trades: FloatArray,
    fills: FloatArray,
) -> tuple[FloatArray, FloatArray, int, int]:
    # trades (>= n+1 rows) and fills (>= 2n+2 rows) in the column layout of records.py.
    # Buffers come from the caller (a grid reuses them).
    n = len(close)
    equity = np.empty(n)
    position = np.empty(n)
    n_trades = 0
    n_fills = 0
    cash = init_cash
    pos_dir = 0
    qty = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    entry_equity = 0.0
    entry_i = -1
    balance = budget
    safe = 0.0
    s_prev = prev_state
    for t in range(n):
        c = close[t]
        for step in range(3):
            # step 0: SL/TP; step 1: signal close; step 2: signal open
            reason = -1
            open_dir = 0
            if step == 0:
                if pos_dir != 0 and entry_i < t:
                    if pos_dir == 1:
                        sl_hit = not math.isnan(sl_pct) and c <= entry_price * (1 - sl_pct / 100)
                        tp_hit = not math.isnan(tp_pct) and c >= entry_price * (1 + tp_pct / 100)
                    else:
                        sl_hit = not math.isnan(sl_pct) and c >= entry_price * (1 + sl_pct / 100)
                        tp_hit = not math.isnan(tp_pct) and c <= entry_price * (1 - tp_pct / 100)
                    if sl_hit:
                        reason = _SL
                    elif tp_hit:
                        reason = _TP
            else:
                s = states[t]
                if s != s_prev and s != 0:  # noqa: PLR1714 - plain compares compile best
                    wants_long = s == 1
                    if step == 1:
                        # close the opposite position when the mode lets this edge act on it
                        closes_short = wants_long and pos_dir == -1 and direction != 1
                        closes_long = not wants_long and pos_dir == 1 and direction != 2
                        if closes_short or closes_long:
                            reason = _SIGNAL
                    elif pos_dir == 0 and t < n - 1:
                        if wants_long and direction != 2:
                            open_dir = 1
                        elif not wants_long and direction != 1:
                            open_dir = -1
            if reason >= 0:
                cash, pnl = _close(
                    trades,
                    fills,
                    n_trades,
                    n_fills,
                    t,
                    c,
                    pos_dir,
                    qty,
                    entry_i,
                    entry_price,
                    entry_fee,
                    entry_equity,
                    cash,
                    fee_rate,
                    slip,
                    reason,
                )
                n_trades += 1
                n_fills += 1
                balance += pnl
                if mode == 3 and pnl > 0:
                    safe += pnl * safe_pct / 100
                pos_dir = 0
                qty = 0.0
            if open_dir != 0:
                fill = c * (1 + slip) if open_dir == 1 else c * (1 - slip)
                if mode == 0:
                    size = cash / (fill * (1 + fee_rate))
                elif mode == 1:
                    size = min(amount, cash / (1 + fee_rate)) / fill
                elif mode == 2:
                    size = balance / (fill * (1 + fee_rate))
                else:
                    size = (balance - safe) / (fill * (1 + fee_rate))
                if size > 0:
                    entry_equity = cash  # flat: the equity after this bar's exits
                    fee = fee_rate * abs(size * fill)
                    if open_dir == 1:
                        cash -= size * fill + fee
                    else:
                        cash += size * fill - fee
                    pos_dir = open_dir
                    qty = size
                    entry_price = fill
                    entry_fee = fee
                    entry_i = t
                    fills[n_fills, FILL_I] = t
                    fills[n_fills, FILL_SIDE] = open_dir
                    fills[n_fills, FILL_QTY] = size
                    fills[n_fills, FILL_PRICE] = fill
                    fills[n_fills, FILL_FEE] = fee
                    fills[n_fills, FILL_SLIPPAGE] = size * abs(fill - c)
                    fills[n_fills, FILL_PNL] = 0.0
                    n_fills += 1
        s_prev = states[t]
        position[t] = pos_dir * qty
        equity[t] = cash + pos_dir * qty * c
    if pos_dir != 0 and n > 0:
        cash, _pnl = _close(
            trades,
            fills,
            n_trades,
            n_fills,
            n - 1,
            close[n - 1],
            pos_dir,
            qty,
            entry_i,
            entry_price,
            entry_fee,
            entry_equity,
            cash,
            fee_rate,
            slip,
            _END,
        )
        n_trades += 1
        n_fills += 1
        equity[n - 1] = cash
    return equity, position, n_trades, n_fills


class EngineOutput:
    """Raw engine arrays: equity and position per bar, trade and fill records."""

    __slots__ = ("equity", "fills", "position", "trades")

    def __init__(
        self, equity: FloatArray, position: FloatArray, trades: FloatArray, fills: FloatArray
    ) -> None:
        self.equity = equity
        self.position = position
        self.trades = trades
        self.fills = fills


def run_engine(
    close: npt.ArrayLike,
    states: npt.ArrayLike,
    *,
    prev_state: int = 0,
    direction: str = "long-short",
    sizing: Mapping[str, str | float] | None = None,
    sl_pct: float | None = None,
    tp_pct: float | None = None,
    fee_rate: float = 0.00075,
    slip: float = 0.0001,
    init_cash: float = 10_000.0,
) -> EngineOutput:
    """Run the engine over the bars of the range (``states`` per bar, ``prev_state`` before)."""
    n = len(np.asarray(close))
    trades, fills = np.empty((n + 1, TRADE_WIDTH)), np.empty((2 * n + 2, FILL_WIDTH))
    equity, position, n_trades, n_fills = engine_pass(
        close,
        states,
        trades,
        fills,
        prev_state=prev_state,
        direction=direction,
        sizing=sizing,
        sl_pct=sl_pct,
        tp_pct=tp_pct,
        fee_rate=fee_rate,
        slip=slip,
        init_cash=init_cash,
    )
    return EngineOutput(equity, position, trades[:n_trades].copy(), fills[:n_fills].copy())


def engine_pass(
    close: npt.ArrayLike,
    states: npt.ArrayLike,
    trades: FloatArray,
    fills: FloatArray,
    *,
    prev_state: int = 0,
    direction: str = "long-short",
    sizing: Mapping[str, str | float] | None = None,
    sl_pct: float | None = None,
    tp_pct: float | None = None,
    fee_rate: float = 0.00075,
    slip: float = 0.0001,
    init_cash: float = 10_000.0,
) -> tuple[FloatArray, FloatArray, int, int]:
    """The compiled pass writing into caller-owned ``trades``/``fills`` buffers (at least
    ``n+1`` x ``TRADE_WIDTH`` and ``2n+2`` x ``FILL_WIDTH``); returns ``(equity, position,
    n_trades, n_fills)``."""
    sizing = sizing or {"mode": "all_in"}
    mode = SIZING_CODES[str(sizing["mode"])]
    budget = float(sizing.get("budget", init_cash))
    return _engine(
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(states, dtype=np.int8),
        int(prev_state),
        DIRECTION_CODES[direction],
        mode,
        float(sizing.get("amount", 0.0)),
        budget,
        float(sizing.get("safe_profit_percent", 0.0)),
        math.nan if sl_pct is None else float(sl_pct),
        math.nan if tp_pct is None else float(tp_pct),
        float(fee_rate),
        float(slip),
        float(init_cash),
        trades,
        fills,
    )
