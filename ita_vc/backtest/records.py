"""The column layout of the engine's trade and fill records (float64 rows).

The engine (:mod:`ita_vc.backtest.engine`) writes one trade row per closed position and one
fill row per fill into caller-owned buffers of ``TRADE_WIDTH`` and ``FILL_WIDTH`` columns;
:mod:`ita_vc.backtest.run` turns them into the trades and fills tables. The constants are plain
module-level ints, so numba freezes them into the compiled engine. numba's on-disk cache only
notices edits to the file of the function it compiled: after changing a value here, touch
``engine.py`` (or clear its ``__pycache__``) as well.
"""

from __future__ import annotations

__all__ = [
    "FILL_FEE",
    "FILL_I",
    "FILL_PNL",
    "FILL_PRICE",
    "FILL_QTY",
    "FILL_SIDE",
    "FILL_SLIPPAGE",
    "FILL_WIDTH",
    "TRADE_DIR",
    "TRADE_ENTRY_FEE",
    "TRADE_ENTRY_I",
    "TRADE_ENTRY_PRICE",
    "TRADE_EQUITY_BEFORE",
    "TRADE_EXIT_FEE",
    "TRADE_EXIT_I",
    "TRADE_EXIT_PRICE",
    "TRADE_PNL",
    "TRADE_QTY",
    "TRADE_REASON",
    "TRADE_RETURN_PCT",
    "TRADE_WIDTH",
]

# trade rows: one per closed position
TRADE_ENTRY_I = 0
"""Bar index (within the range) of the entry fill."""
TRADE_EXIT_I = 1
"""Bar index of the exit fill."""
TRADE_DIR = 2
"""+1 long, -1 short."""
TRADE_QTY = 3
TRADE_ENTRY_PRICE = 4
TRADE_EXIT_PRICE = 5
TRADE_ENTRY_FEE = 6
TRADE_EXIT_FEE = 7
TRADE_PNL = 8
"""Net of both fees."""
TRADE_RETURN_PCT = 9
"""``pnl / (qty * entry_price) * 100``."""
TRADE_REASON = 10
"""Index into :data:`ita_vc.backtest.engine.REASONS`."""
TRADE_EQUITY_BEFORE = 11
"""Equity at the entry bar after that bar's exits, before the entry fill (the cash then)."""
TRADE_WIDTH = 12

# fill rows: one per fill (entries and exits)
FILL_I = 0
"""Bar index of the fill."""
FILL_SIDE = 1
"""+1 buy, -1 sell."""
FILL_QTY = 2
FILL_PRICE = 3
FILL_FEE = 4
FILL_SLIPPAGE = 5
"""``qty * |fill price - close|``: the cost of slippage."""
FILL_PNL = 6
"""Realized pnl (0 for an entry)."""
FILL_WIDTH = 7
