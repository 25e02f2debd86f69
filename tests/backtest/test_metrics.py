"""Every metric by hand on a small series (docs/backtest-model.md#metrics)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest.metrics import METRIC_NAMES, compute_metrics, drawdown_periods

H = 3_600_000
D = 24 * H
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TS = np.array([T0, T0 + 12 * H, T0 + D, T0 + 3 * D, T0 + 3 * D + 12 * H])  # day 2 has no bar
EQUITY = np.array([1000.0, 1100.0, 990.0, 1210.0, 1150.0])
CLOSE = np.array([100.0, 110.0, 99.0, 121.0, 115.0])
POSITION = np.array([0.0, 5.0, 5.0, 0.0, 2.0])
TRADES = pd.DataFrame(
    {
        "entry_ts": [TS[0], TS[3]],
        "exit_ts": [TS[2], TS[4]],
        "pnl": [100.0, -50.0],
        "return_pct": [10.0, -5.0],
    }
)


@pytest.fixture(scope="module")
def metrics():
    return compute_metrics(TS, CLOSE, EQUITY, POSITION, TRADES, 1000.0)


def test_keys_are_exactly_the_documented_names(metrics):
    assert list(metrics) == list(METRIC_NAMES)


def test_returns_and_coverage(metrics):
    assert metrics["Start"] == "2025-01-01T00:00:00Z"
    assert metrics["End"] == "2025-01-04T12:00:00Z"
    assert metrics["Duration"] == 3.5 * 86_400
    assert metrics["Init. Cash"] == 1000.0
    assert metrics["Total Profit"] == 150.0
    assert metrics["Total Return [%]"] == pytest.approx(15.0, rel=1e-15)
    assert metrics["Benchmark Return [%]"] == pytest.approx(15.0, rel=1e-15)
    assert metrics["Position Coverage [%]"] == 60.0


def test_drawdowns(metrics):
    second = 1150 / 1210 - 1
    assert metrics["Max. Drawdown [%]"] == pytest.approx(-10.0, rel=1e-15)
    assert metrics["Avg. Drawdown [%]"] == pytest.approx((-0.1 + second) / 2 * 100, rel=1e-14)
    # period 1: peak bar 1 (12:00) -> recovery bar 3 (day 3): 2.5 days;
    # period 2: peak bar 3 -> End (not recovered): 12 hours
    assert metrics["Max. Drawdown Duration"] == 2.5 * 86_400
    assert metrics["Avg. Drawdown Duration"] == (2.5 * 86_400 + 12 * 3600) / 2


def test_a_drawdown_from_the_initial_cash_starts_at_start():
    periods = drawdown_periods(
        np.array([T0, T0 + H, T0 + 2 * H]), np.array([990.0, 995.0, 1000.0]), 1000.0
    )
    assert periods == [(990.0 / 1000.0 - 1, 2 * 3600.0)]  # from Start to the recovery bar


def test_trade_metrics(metrics):
    assert metrics["Num. Trades"] == 2
    assert metrics["Win Rate [%]"] == 50.0
    assert (metrics["Best Trade [%]"], metrics["Worst Trade [%]"]) == (10.0, -5.0)
    assert metrics["Avg. Trade [%]"] == 2.5
    assert metrics["Max. Trade Duration"] == 86_400.0
    assert metrics["Avg. Trade Duration"] == (86_400 + 12 * 3600) / 2
    assert metrics["Expectancy"] == 25.0
    assert metrics["SQN"] == pytest.approx(math.sqrt(2) * 25 / np.std([100, -50], ddof=1))


def test_exposure(metrics):
    expected = (0 + 550 / 1100 + 495 / 990 + 0 + 230 / 1150) / 5
    assert metrics["Gross Exposure"] == pytest.approx(expected, rel=1e-15)


def test_daily_ratios_forward_fill_missing_days(metrics):
    daily = np.array([1100.0, 990.0, 990.0, 1150.0])  # day 2 forward-filled
    r = daily[1:] / daily[:-1] - 1
    assert metrics["Sharpe Ratio"] == pytest.approx(
        r.mean() / r.std(ddof=1) * math.sqrt(365), rel=1e-14
    )
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert metrics["Sortino Ratio"] == pytest.approx(
        r.mean() * math.sqrt(365) / downside, rel=1e-14
    )
    cagr = (1150 / 1000) ** (365 / 3.5) - 1
    assert metrics["Calmar Ratio"] == pytest.approx(cagr / 0.1, rel=1e-12)


def test_no_trades_gives_nulls_never_nan():
    flat = np.full(3, 1000.0)
    ts = np.array([T0, T0 + D, T0 + 2 * D])
    m = compute_metrics(ts, np.array([1.0, 1.0, 1.0]), flat, np.zeros(3), TRADES.iloc[:0], 1000.0)
    for key in (
        "Win Rate [%]",
        "Best Trade [%]",
        "Worst Trade [%]",
        "Avg. Trade [%]",
        "Max. Trade Duration",
        "Avg. Trade Duration",
        "Expectancy",
        "SQN",
        "Sharpe Ratio",
        "Sortino Ratio",
        "Calmar Ratio",
        "Avg. Drawdown [%]",
        "Max. Drawdown Duration",
    ):
        assert m[key] is None, key
    assert m["Num. Trades"] == 0 and m["Max. Drawdown [%]"] == 0.0
    assert all(v is None or isinstance(v, str | int) or math.isfinite(v) for v in m.values())


def test_zero_bars_and_a_blown_account():
    m = compute_metrics(
        np.array([], dtype=np.int64),
        np.array([]),
        np.array([]),
        np.array([]),
        TRADES.iloc[:0],
        1000.0,
    )
    assert m["Start"] is None and m["Total Return [%]"] == 0.0 and m["Num. Trades"] == 0
    ts = np.array([T0, T0 + D])
    blown = compute_metrics(
        ts,
        np.array([1.0, 1.0]),
        np.array([1000.0, -5.0]),
        np.array([1.0, 1.0]),
        TRADES.iloc[:0],
        1000.0,
    )
    assert blown["Calmar Ratio"] is None and blown["Gross Exposure"] is None
