"""Cross-check against backtesting.py on its own GOOG data (docs/backtest-model.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from ita_vc.backtest.run import run_backtest
from ita_vc.candles.importers import read_candle_file

backtesting = pytest.importorskip("backtesting", reason="dev dependency, installed by make test")


def _theirs():
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import GOOG, SMA

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 20)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy(size=0.99)
            elif crossover(self.slow, self.fast):
                self.sell(size=0.99)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(
            GOOG,
            SmaCross,
            cash=1_000_000,
            commission=0.00075,
            trade_on_close=True,
            exclusive_orders=True,
            finalize_trades=True,
        )
        stats = bt.run()
    return [(int(t.EntryBar), int(t.ExitBar)) for t in stats._trades.itertuples()]


def test_ma_cross_agrees_trade_for_trade_with_backtesting_py():
    goog = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    frame = read_candle_file(goog)
    rule = {
        "setup_id": "xcheck",
        "version": "1.0",
        "direction": "long-short",
        "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}],
    }
    ours = run_backtest(frame, rule, {"backtest": {"warmup_bars": 0}})
    bar = {int(ts): i for i, ts in enumerate(frame["ts_utc"])}
    our_trades = [
        (bar[int(a)], bar[int(b)])
        for a, b in zip(ours.trades["entry_ts"], ours.trades["exit_ts"], strict=True)
    ]
    their_trades = _theirs()
    last = len(frame) - 1
    # 1. the first signal: with no bar before the range the state before it is NEUTRAL, so the
    #    first bar where both SMAs exist (bar 19) is an edge; crossover() needs bar 18's SMAs.
    assert our_trades[0] == (19, their_trades[0][0])
    # 2. the final forced close: at the last bar's close here, at the bar before in theirs.
    assert our_trades[-1] == (their_trades[-1][0], last)
    assert their_trades[-1][1] == last - 1
    # every other trade: the same entry and exit bars
    assert our_trades[1:-1] == their_trades[:-1]
    assert len(their_trades) - 1 == 93
