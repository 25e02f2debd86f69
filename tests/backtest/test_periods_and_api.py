"""periods_per_year (engine 1.1), the DataFrame shapes users bring, UTC-indexed results and the
profit-lock balances (issue #14, "Model outputs a user needs to see")."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ita_vc.backtest.metrics import compute_metrics
from ita_vc.backtest.params import default_periods_per_year, parse_params
from ita_vc.backtest.run import canonical_candles, profit_lock_balances, run_backtest
from ita_vc.errors import DataValidationError
from ita_vc.pipeline.engine_pin import pinned_engine
from ita_vc.yaml_read import load_yaml_document
from tests.helpers import MIN, walk_candles

backtesting = pytest.importorskip("backtesting", reason="dev dependency, installed by make test")

H = 3_600_000
D = 24 * H
MONDAY = 1_736_121_600_000  # 2025-01-06T00:00:00Z, a Monday
RULE = {
    "setup_id": "t",
    "version": "1.0",
    "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}],
}


def _weekday_fixture():
    """One bar a day at 16:00 UTC, Monday to Friday and the next Monday (no weekend bars)."""
    days = [d for d in range(8) if d % 7 < 5]
    ts = np.array([MONDAY + d * D + 16 * H for d in days], dtype=np.int64)
    equity = np.array([1000.0, 1010.0, 1005.0, 1030.0, 1020.0, 1040.0])
    return ts, equity


def test_sharpe_by_hand_252_over_bar_days_and_365_over_calendar_days():
    ts, equity = _weekday_fixture()
    no_trades = {"entry_ts": [], "exit_ts": [], "pnl": [], "return_pct": []}
    flat = np.zeros(len(ts))
    m252 = compute_metrics(ts, equity, equity, flat, no_trades, 1000.0, periods_per_year=252)
    m365 = compute_metrics(ts, equity, equity, flat, no_trades, 1000.0, periods_per_year=365)

    # 252: the five returns between consecutive days that have a bar (the weekend skipped)
    r = [equity[i + 1] / equity[i] - 1 for i in range(len(equity) - 1)]
    mean = sum(r) / len(r)
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    assert m252["Sharpe Ratio"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert m252["Sortino Ratio"] == pytest.approx(mean * math.sqrt(252) / downside, rel=1e-12)

    # 365: every calendar day Mon..Mon (8 days), Saturday and Sunday forward-filled: 7 returns,
    # two of them 0
    daily = [*equity[:5], equity[4], equity[4], equity[5]]
    rc = [daily[i + 1] / daily[i] - 1 for i in range(len(daily) - 1)]
    assert rc.count(0.0) == 2
    mean_c = sum(rc) / len(rc)
    std_c = math.sqrt(sum((x - mean_c) ** 2 for x in rc) / (len(rc) - 1))
    assert m365["Sharpe Ratio"] == pytest.approx(mean_c / std_c * math.sqrt(365), rel=1e-12)
    # Calmar is on calendar days for both
    assert m252["Calmar Ratio"] == m365["Calmar Ratio"]
    assert m252["Sharpe Ratio"] != m365["Sharpe Ratio"]


def test_default_periods_per_market():
    assert default_periods_per_year("binance-spot") == 365
    assert default_periods_per_year("bybit-futures") == 365
    assert default_periods_per_year("generic") == 252
    assert default_periods_per_year("nyse") == 252
    assert parse_params({"data": {"market": "generic"}}).backtest.periods_per_year == 252
    assert parse_params({"data": {"market": "binance-spot"}}).backtest.periods_per_year == 365
    explicit = {"data": {"market": "generic"}, "backtest": {"periods_per_year": 260}}
    assert parse_params(explicit).backtest.periods_per_year == 260


def test_a_crypto_run_keeps_engine_10_and_its_hashes():
    """Section 8 of STYLE.md: at 365 the key stays out of config_hash and summary.json."""
    frame = walk_candles(3000, step=MIN, seed=1, vol=2e-3, spread=0.05)
    params = {"data": {"market": "binance-spot"}, "backtest": {"warmup_bars": 0}}
    default = run_backtest(frame, RULE, params)
    explicit = run_backtest(
        frame, RULE, {**params, "backtest": {"warmup_bars": 0, "periods_per_year": 365}}
    )
    assert default.summary["engine_version"] == "1.0"
    assert "periods_per_year" not in json_text(default.summary)
    assert default.summary == explicit.summary and default.metrics == explicit.metrics
    # the same candles as a generic market: engine 1.1, the key recorded and in the hash
    generic = run_backtest(frame, RULE, {"backtest": {"warmup_bars": 0}})
    assert generic.summary["engine_version"] == "1.1"
    assert generic.summary["periods_per_year"] == 252
    assert generic.summary["config_hash"] != default.summary["config_hash"]


def json_text(obj):
    import json

    return json.dumps(obj)


def test_goog_under_engine_11_and_pinned_10():
    from backtesting.test import GOOG

    params = {"backtest": {"warmup_bars": 0}}
    new = run_backtest(GOOG, RULE, params)
    assert new.summary["engine_version"] == "1.1"
    pinned = parse_params(params, engine="1.0")
    old = run_backtest(GOOG, RULE, pinned)
    assert old.summary["engine_version"] == "1.0"
    assert pinned.backtest.periods_per_year == 365
    assert new.metrics["Sharpe Ratio"] != old.metrics["Sharpe Ratio"]
    same = {k: v for k, v in new.metrics.items() if k not in ("Sharpe Ratio", "Sortino Ratio")}
    assert same == {k: v for k, v in old.metrics.items() if k in same}


def test_engine_10_refuses_another_periods_per_year_with_the_line():
    text = "data:\n  market: generic\nbacktest:\n  periods_per_year: 252\n"
    doc = load_yaml_document(text, "params.yaml")
    with pytest.raises(
        DataValidationError,
        match=r"params\.yaml:4: backtest\.periods_per_year: "
        r"252: needs engine 1\.1",
    ):
        parse_params(doc.data, index=doc.index, engine="1.0")
    assert parse_params(doc.data, index=doc.index).backtest.periods_per_year == 252


@pytest.mark.parametrize(
    "value", [0, 0.5, 367, -252, "252", True, float("nan"), float("inf"), [252]]
)
def test_bad_periods_per_year(value):
    with pytest.raises(DataValidationError, match=r"backtest\.periods_per_year: .*in \[1, 366\]"):
        parse_params({"backtest": {"periods_per_year": value}})


def test_pinned_engine_reads_dvc_yaml(tmp_path):
    assert pinned_engine(tmp_path) is None
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  backtest:\n    cmd: python -m ita_vc.pipeline backtest --engine 1.0\n"
    )
    assert pinned_engine(tmp_path) == "1.0"
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  backtest:\n    cmd: python -m ita_vc.pipeline backtest\n"
    )
    assert pinned_engine(tmp_path) is None


def test_backtesting_py_and_yfinance_shapes_give_the_canonical_result():
    from backtesting.test import EURUSD, GOOG

    goog_csv = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    from ita_vc.candles.importers import read_candle_file

    canonical = read_candle_file(goog_csv)
    a = run_backtest(GOOG, RULE, {"backtest": {"warmup_bars": 0}})
    b = run_backtest(canonical, RULE, {"backtest": {"warmup_bars": 0}})
    assert a.metrics == b.metrics and a.summary == b.summary
    # yfinance: tz-aware index (America/New_York), capitalised columns, extra columns
    yf = GOOG.copy()
    yf.index = yf.index.tz_localize("UTC").tz_convert("America/New_York")
    yf["Adj Close"] = yf["Close"]
    c = run_backtest(yf, RULE, {"backtest": {"warmup_bars": 0}})
    assert c.metrics == a.metrics
    # lower-case columns and no Volume
    lower = GOOG.drop(columns="Volume").rename(columns=str.lower)
    assert canonical_candles(lower)["volume"].eq(0).all()
    hourly = run_backtest(EURUSD, RULE, {"backtest": {"warmup_bars": 0}})
    assert hourly.summary["timeframe"] == "1h"


def test_results_have_a_utc_datetime_index_besides_ts_utc():
    from backtesting.test import GOOG

    result = run_backtest(GOOG, RULE, {"backtest": {"warmup_bars": 0}})
    for frame, name in ((result.equity, "time"), (result.drawdown, "time")):
        assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
        assert frame.index.name == name
        assert (frame.index.as_unit("ms").asi8 == frame["ts_utc"].to_numpy()).all()
    trades = result.trades
    assert str(trades.index.tz) == "UTC" and trades.index.name == "entry_time"
    assert (trades.index.as_unit("ms").asi8 == trades["entry_ts"].to_numpy()).all()
    assert result.equity.loc["2005-01"].shape[0] > 0  # the index is usable as users expect


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"Open": [1.0]}), "missing column"),
        (
            pd.DataFrame({"Open": [1.0], "High": [1.0], "Low": [1.0], "Close": [1.0]}),
            "not a DatetimeIndex",
        ),
        (
            pd.DataFrame(
                {"Open": [1.0], "High": [1.0], "Low": [1.0], "Close": [1.0]},
                index=pd.DatetimeIndex([pd.NaT]),
            ),
            "NaT",
        ),
    ],
)
def test_frames_of_neither_shape_are_refused_clearly(frame, match):
    with pytest.raises(DataValidationError, match=match):
        run_backtest(frame, RULE, {})


def test_profit_lock_balances_in_the_equity_output():
    from backtesting.test import GOOG

    sizing = {"mode": "strategy_compound_profit_lock", "budget": 5000, "safe_profit_percent": 50}
    result = run_backtest(GOOG, {**RULE, "sizing": sizing}, {"backtest": {"warmup_bars": 0}})
    eq, trades = result.equity, result.trades
    assert {"strategy_safe_quote", "strategy_available_quote"} <= set(eq.columns)
    wins = trades["pnl"].clip(lower=0).sum()
    assert eq["strategy_safe_quote"].iloc[-1] == pytest.approx(wins * 0.5, rel=1e-12)
    assert eq["strategy_safe_quote"].iloc[-1] + eq["strategy_available_quote"].iloc[-1] == (
        pytest.approx(5000 + trades["pnl"].sum(), rel=1e-12)
    )
    # every entry used exactly what was available after its bar's exits
    fee = result.summary["fee_pct"] / 100
    at = eq["strategy_available_quote"].to_numpy()
    bar = {int(t): i for i, t in enumerate(eq["ts_utc"])}
    for row in trades.itertuples():
        used = row.qty * row.entry_price * (1 + fee)
        assert used == pytest.approx(at[bar[int(row.entry_ts)]], rel=1e-9)
    # the safe never decreases; other sizings have no such columns
    assert (np.diff(eq["strategy_safe_quote"].to_numpy()) >= 0).all()
    plain = run_backtest(GOOG, RULE, {"backtest": {"warmup_bars": 0}})
    assert list(plain.equity.columns) == ["ts_utc", "equity"]
    # the balance columns are engine 1.1's: a profit-lock run records 1.1 even on crypto, and
    # a stage pinned to 1.0 writes the 1.0 equity output (old runs reproduce bit for bit)
    crypto = {"data": {"market": "binance-spot"}, "backtest": {"warmup_bars": 0}}
    locked = run_backtest(GOOG, {**RULE, "sizing": sizing}, crypto)
    assert locked.summary["engine_version"] == "1.1"
    pinned = run_backtest(GOOG, {**RULE, "sizing": sizing}, parse_params(crypto, engine="1.0"))
    assert pinned.summary["engine_version"] == "1.0"
    assert list(pinned.equity.columns) == ["ts_utc", "equity"]
    assert pinned.metrics == locked.metrics
    assert pinned.summary["config_hash"] != locked.summary["config_hash"]


def test_profit_lock_balances_without_trades():
    safe, available = profit_lock_balances(4, np.empty((0, 11)), 100.0, 50.0)
    assert safe.tolist() == [0.0] * 4 and available.tolist() == [100.0] * 4


def _canonical(n=50):
    return walk_candles(n, step=MIN, seed=3, vol=2e-3, spread=0.05)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda f: pd.concat([f, f.iloc[[5]]]).sort_values("ts_utc"), "share a timestamp"),
        (lambda f: f.assign(close=f["close"].where(f.index != 7, np.nan)), "NaN"),
        (lambda f: f.assign(close=f["close"].where(f.index != 7, np.inf)), "NaN"),
        (lambda f: f.assign(close=f["close"].where(f.index != 7, -1.0)), "<= 0"),
        (lambda f: f.assign(high=f["low"] - 1), "high < max"),
        (lambda f: f.assign(ts_utc=f["ts_utc"].astype("float64")), "integer epoch"),
        (lambda f: f.assign(ts_utc=pd.to_datetime(f["ts_utc"], unit="ms")), "integer epoch"),
        (lambda f: f.assign(ts_utc=f["ts_utc"].astype(str)), "integer epoch"),
        (lambda f: f.assign(close=f["close"].astype(object).where(f.index != 2, "x")), "number"),
        (lambda f: f.assign(warmup="x"), "warmup column must be booleans"),
    ],
)
def test_run_backtest_refuses_what_data_import_refuses(damage, match):
    with pytest.raises(DataValidationError, match=match):
        run_backtest(damage(_canonical()), RULE, {"backtest": {"warmup_bars": 0}})


def test_frames_with_both_cases_of_a_column_or_no_frame_are_refused():
    from backtesting.test import GOOG

    both = GOOG.assign(open=GOOG["Open"])
    with pytest.raises(DataValidationError, match="both 'Open' and 'open'"):
        run_backtest(both, RULE, {})
    for thing in (GOOG["Close"], [1, 2, 3], None):
        with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
            run_backtest(thing, RULE, {})


def test_stats_read_as_backtesting_py_stats_and_the_repr_is_short():
    from backtesting.test import GOOG

    result = run_backtest(GOOG, RULE, {"backtest": {"warmup_bars": 0}})
    stats = result.stats
    assert list(stats.index) == list(result.metrics)
    assert stats["Start"] == pd.Timestamp("2004-08-19", tz="UTC")
    assert stats["Duration"] == pd.Timedelta(seconds=result.metrics["Duration"])
    assert isinstance(stats["Avg. Trade Duration"], pd.Timedelta)
    assert stats["Sharpe Ratio"] == result.metrics["Sharpe Ratio"]  # exact, not rounded
    text = repr(result)
    assert text.startswith("<BacktestResult t v1.0 on generic") and len(text) < 250
    assert "Sharpe Ratio=0.989" in text


def test_numpy_numbers_are_numbers():
    import numpy as np

    for value in (np.int64(252), np.float64(252.0), np.int32(252)):
        assert (
            parse_params({"backtest": {"periods_per_year": value}}).backtest.periods_per_year == 252
        )
    with pytest.raises(DataValidationError, match="periods_per_year"):
        parse_params({"backtest": {"periods_per_year": np.float64("nan")}})
