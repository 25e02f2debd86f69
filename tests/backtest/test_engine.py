"""Hand-computed fixtures for every rule of the execution model (docs/backtest-model.md)."""

from __future__ import annotations

import numpy as np
import pytest

from ita_vc.backtest.engine import run_engine

FEE = 0.001  # 0.1 %
SLIP = 0.0005  # 0.05 %


def run(close, states, **kwargs):
    kwargs.setdefault("fee_rate", FEE)
    kwargs.setdefault("slip", SLIP)
    kwargs.setdefault("init_cash", 1000.0)
    return run_engine(np.array(close, float), np.array(states, np.int8), **kwargs)


def trade(out, i):
    keys = (
        "entry_i",
        "exit_i",
        "dir",
        "qty",
        "entry_price",
        "exit_price",
        "entry_fee",
        "exit_fee",
        "pnl",
        "ret",
        "reason",
        "equity_before",
    )
    return dict(zip(keys, out.trades[i].tolist(), strict=True))


def test_all_in_long_entry_and_signal_exit_with_fees_and_slippage_on_both_sides():
    out = run([100, 100, 110, 120, 120], [0, 1, 1, -1, -1], direction="long-only")
    buy = 100 * (1 + SLIP)
    qty = 1000 / (buy * (1 + FEE))  # qty*fill + fee = equity
    entry_fee = FEE * (qty * buy)
    cash = 1000 - qty * buy - entry_fee
    assert cash == pytest.approx(0, abs=1e-9)
    sell = 120 * (1 - SLIP)
    exit_fee = FEE * (qty * sell)
    pnl = qty * (sell - buy) - entry_fee - exit_fee
    t = trade(out, 0)
    assert (t["entry_i"], t["exit_i"], t["dir"], t["reason"]) == (1, 3, 1, 0)
    assert t["qty"] == qty and t["entry_price"] == buy and t["exit_price"] == sell
    assert t["entry_fee"] == entry_fee and t["exit_fee"] == exit_fee
    assert t["equity_before"] == 1000  # flat before the entry: the cash
    assert t["pnl"] == pytest.approx(pnl, rel=1e-14)
    assert t["ret"] == pytest.approx(pnl / (qty * buy) * 100, rel=1e-14)
    assert out.equity[0] == 1000
    assert out.equity[1] == pytest.approx(cash + qty * 100)
    assert out.equity[2] == pytest.approx(cash + qty * 110)
    final_cash = cash + qty * sell - exit_fee
    assert out.equity[3] == pytest.approx(final_cash) and out.equity[4] == out.equity[3]
    assert out.position.tolist() == [0, qty, qty, 0, 0]
    fills = out.fills
    assert fills[:, 1].tolist() == [1, -1]  # buy then sell
    assert fills[0, 5] == pytest.approx(qty * (buy - 100))  # slippage cost
    assert fills[1, 6] == pytest.approx(pnl)  # pnl realised on the closing fill


def test_reversal_closes_then_sizes_the_new_side_from_the_equity_after_the_close():
    out = run([100, 100, 90, 90], [0, 1, -1, -1])
    buy = 100 * (1 + SLIP)
    q1 = 1000 / (buy * (1 + FEE))
    sell = 90 * (1 - SLIP)
    cash = 1000 - q1 * buy - FEE * (q1 * buy) + q1 * sell - FEE * (q1 * sell)
    q2 = cash / (sell * (1 + FEE))  # the short is sized from the equity after the close
    t0, t1 = trade(out, 0), trade(out, 1)
    assert (t0["exit_i"], t0["reason"], t1["entry_i"], t1["dir"]) == (2, 0, 2, -1)
    assert t1["qty"] == pytest.approx(q2, rel=1e-14)
    assert t1["entry_price"] == sell
    cash_after_short = cash + q2 * sell - FEE * (q2 * sell)
    assert out.equity[2] == pytest.approx(cash_after_short - q2 * 90)
    assert out.position[2] == pytest.approx(-q2)


def test_stop_loss_and_take_profit_against_the_entry_fill():
    entry = 100 * (1 + SLIP)
    sl_level = entry * (1 - 2 / 100)
    out = run([100, 100, 99, sl_level, 90], [0, 1, 1, 1, 1], sl_pct=2.0, tp_pct=5.0)
    t = trade(out, 0)
    assert (t["exit_i"], t["reason"]) == (3, 1)  # close <= entry*(1-sl): SL (reason 1)
    tp_level = entry * 1.05
    out = run([100, 100, 104, tp_level, 120], [0, 1, 1, 1, 1], sl_pct=2.0, tp_pct=5.0)
    assert (trade(out, 0)["exit_i"], trade(out, 0)["reason"]) == (3, 2)


def test_short_targets_are_mirrored():
    entry = 100 * (1 - SLIP)
    out = run([100, 100, entry * 1.02, 50], [0, -1, -1, -1], sl_pct=2.0, tp_pct=5.0)
    assert (trade(out, 0)["exit_i"], trade(out, 0)["reason"]) == (2, 1)
    out = run([100, 100, entry * 0.95, 50], [0, -1, -1, -1], sl_pct=2.0, tp_pct=5.0)
    assert (trade(out, 0)["exit_i"], trade(out, 0)["reason"]) == (2, 2)


def test_when_both_targets_hit_the_stop_loss_wins():
    # tp below the entry makes both conditions true on the next bar
    out = run([100, 100, 99], [0, 1, 1], sl_pct=0.5, tp_pct=-5.0)
    assert trade(out, 0)["reason"] == 1


def test_no_target_check_on_the_entry_bar_and_no_new_base_on_a_repeated_edge():
    # enters at bar 1; bar 2 NEUTRAL; bar 3 LONG again (ignored: already long, base unchanged)
    entry = 100 * (1 + SLIP)
    out = run([100, 100, 100, 102, entry * 1.05, 130], [0, 1, 0, 1, 1, 1], tp_pct=5.0)
    t = trade(out, 0)
    assert (t["entry_i"], t["exit_i"], t["reason"]) == (1, 4, 2)
    assert len(out.trades) == 1


def test_an_edge_after_a_target_exit_opens_on_the_same_bar():
    out = run([100, 100, 97, 97, 97], [0, 1, -1, -1, -1], sl_pct=2.0)
    t0, t1 = trade(out, 0), trade(out, 1)
    assert (t0["exit_i"], t0["reason"]) == (2, 1)  # SL first (step 1)...
    assert (t1["entry_i"], t1["dir"]) == (2, -1)  # ...then the SHORT edge opens (step 2)


def test_neutral_never_closes_and_the_final_forced_close():
    out = run([100, 100, 105, 110], [0, 1, 0, 0])
    t = trade(out, 0)
    assert (t["exit_i"], t["reason"]) == (3, 3)  # closed only at the end (reason "end")
    sell = 110 * (1 - SLIP)
    assert t["exit_price"] == sell
    assert out.position[-1] == t["qty"]  # the position series excludes the forced close
    cash = 1000 - t["qty"] * t["entry_price"] - t["entry_fee"]
    assert out.equity[-1] == pytest.approx(cash + t["qty"] * sell - t["exit_fee"])


def test_nothing_opens_on_the_last_bar():
    out = run([100, 100, 100], [0, 0, 1])
    assert len(out.trades) == 0 and out.equity.tolist() == [1000, 1000, 1000]


def test_long_only_and_short_only():
    states = [0, 1, -1, 1, -1, 0]
    closes = [100, 100, 100, 100, 100, 100]
    long_only = run(closes, states, direction="long-only")
    assert [
        (trade(long_only, i)["entry_i"], trade(long_only, i)["exit_i"])
        for i in range(len(long_only.trades))
    ] == [(1, 2), (3, 4)]
    assert set(long_only.trades[:, 2]) == {1}
    short_only = run(closes, states, direction="short-only")
    assert [
        (trade(short_only, i)["entry_i"], trade(short_only, i)["exit_i"])
        for i in range(len(short_only.trades))
    ] == [(2, 3), (4, 5)]
    assert set(short_only.trades[:, 2]) == {-1}
    assert trade(short_only, 1)["reason"] == 3  # still short at the end


def test_prev_state_from_the_warm_up():
    assert len(run([100, 101, 102], [1, 1, 1], prev_state=1).trades) == 0  # no edge
    assert trade(run([100, 101, 102], [1, 1, 1], prev_state=0), 0)["entry_i"] == 0


def test_fixed_quote_sizing():
    out = run(
        [100, 100, 100, 100],
        [0, 1, -1, -1],
        direction="long-only",
        sizing={"mode": "fixed_quote", "amount": 250.0},
    )
    buy = 100 * (1 + SLIP)
    assert trade(out, 0)["qty"] == pytest.approx(250 / buy, rel=1e-15)
    capped = run([100, 100, 100], [0, 1, 1], sizing={"mode": "fixed_quote", "amount": 5000.0})
    assert capped.trades[0, 3] == pytest.approx(1000 / (1 + FEE) / buy, rel=1e-15)


def test_strategy_compound_bookkeeping():
    closes = [100, 100, 110, 110, 99, 99]
    states = [0, 1, -1, 1, -1, -1]
    out = run(
        closes, states, direction="long-only", sizing={"mode": "strategy_compound", "budget": 400.0}
    )
    b1 = 100 * (1 + SLIP)
    q1 = 400 / (b1 * (1 + FEE))
    t0 = trade(out, 0)
    assert t0["qty"] == pytest.approx(q1, rel=1e-15)
    balance = 400 + t0["pnl"]
    b2 = 110 * (1 + SLIP)
    assert trade(out, 1)["qty"] == pytest.approx(balance / (b2 * (1 + FEE)), rel=1e-14)
    # equity is the whole account: cash + position * close
    assert out.equity[2] == pytest.approx(1000 + t0["pnl"])


def test_profit_lock_sets_profit_aside():
    closes = [100, 100, 110, 110, 120, 120]
    states = [0, 1, -1, 1, -1, -1]
    out = run(
        closes,
        states,
        direction="long-only",
        sizing={
            "mode": "strategy_compound_profit_lock",
            "budget": 400.0,
            "safe_profit_percent": 50.0,
        },
    )
    t0 = trade(out, 0)
    assert t0["pnl"] > 0
    available = 400 + t0["pnl"] - t0["pnl"] * 0.5
    b2 = 110 * (1 + SLIP)
    assert trade(out, 1)["qty"] == pytest.approx(available / (b2 * (1 + FEE)), rel=1e-14)


def test_entries_without_money_are_skipped():
    out = run([100, 100, 100], [0, 1, 1], sizing={"mode": "fixed_quote", "amount": 0.0})
    assert len(out.trades) == 0 and len(out.fills) == 0


def test_empty_input():
    out = run([], [])
    assert len(out.equity) == 0 and len(out.trades) == 0


def test_equity_before_is_the_cash_after_the_bars_exits_on_a_reversal():
    # long at bar 1, reversed to short at bar 3: the short's equity_before is the cash the
    # long's exit left, before the short's entry fill (issue #16: Monte Carlo's q_i)
    out = run([100, 100, 110, 120, 90, 90], [0, 1, 1, -1, -1, -1], direction="long-short")
    first, second = trade(out, 0), trade(out, 1)
    assert first["equity_before"] == 1000
    cash_after_exit = 1000 + first["pnl"]  # all-in: the long's pnl is the whole change
    assert second["entry_i"] == 3 and second["equity_before"] == pytest.approx(
        cash_after_exit, rel=1e-12
    )
    # the short's own fill is not in it: equity at bar 3 (after the fill) is lower
    assert out.equity[3] < second["equity_before"]
