"""The trade and fill column constants name every column of the engine's records once."""

from __future__ import annotations

import numpy as np

from ita_vc.backtest import records
from ita_vc.backtest.engine import REASONS, run_engine


def _columns(prefix: str) -> dict[str, int]:
    return {
        name: getattr(records, name)
        for name in records.__all__
        if name.startswith(prefix) and not name.endswith("_WIDTH")
    }


def test_each_column_has_one_name_and_the_widths_cover_them():
    for prefix, width in (("TRADE_", records.TRADE_WIDTH), ("FILL_", records.FILL_WIDTH)):
        columns = _columns(prefix)
        assert sorted(columns.values()) == list(range(width)), prefix


def test_the_engine_writes_the_named_columns():
    # long at bar 1 (filled at 11), short at bar 3 closes it at 12 and opens a short, end at 10
    close = np.array([10.0, 11.0, 13.0, 12.0, 10.0])
    states = np.array([0, 1, 1, -1, -1], dtype=np.int8)
    out = run_engine(close, states, fee_rate=0.0, slip=0.0, init_cash=1000.0)
    assert out.trades.shape == (2, records.TRADE_WIDTH)
    assert out.fills.shape == (4, records.FILL_WIDTH)
    first, last = out.trades
    assert (first[records.TRADE_ENTRY_I], first[records.TRADE_EXIT_I]) == (1, 3)
    assert first[records.TRADE_DIR] == 1
    assert (first[records.TRADE_ENTRY_PRICE], first[records.TRADE_EXIT_PRICE]) == (11.0, 12.0)
    assert first[records.TRADE_PNL] == first[records.TRADE_QTY] * 1.0
    assert REASONS[int(first[records.TRADE_REASON])] == "signal"
    assert last[records.TRADE_DIR] == -1
    assert REASONS[int(last[records.TRADE_REASON])] == "end"
    sides = out.fills[:, records.FILL_SIDE].tolist()
    assert sides == [1.0, -1.0, -1.0, 1.0]  # buy, sell (close), sell (open short), buy (end)
    assert out.fills[0, records.FILL_PNL] == 0.0
    assert out.fills[1, records.FILL_PNL] == first[records.TRADE_PNL]
