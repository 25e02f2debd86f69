"""The profit-lock sizing's balances in the report (issue #14: seed 003's strategy bookkeeping)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ita_vc.backtest.run import run_backtest
from ita_vc.pipeline.outputs import DirSink, write_report

backtesting = pytest.importorskip("backtesting", reason="dev dependency, installed by make test")
PIL = pytest.importorskip("PIL.Image", reason="matplotlib depends on pillow")

RULE = {
    "setup_id": "t",
    "version": "1.0",
    "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}],
}


def _report(tmp_path, sizing):
    from backtesting.test import GOOG

    result = run_backtest(GOOG, {**RULE, "sizing": sizing}, {"backtest": {"warmup_bars": 0}})
    out = tmp_path / sizing["mode"]
    candles = GOOG.rename(columns=str.lower).assign(ts_utc=result.equity["ts_utc"].to_numpy())
    write_report(
        result.summary,
        result.metrics,
        result.equity,
        result.drawdown,
        DirSink(out),
        trades=result.trades,
        candles=candles,
    )
    return result, out


def _has_colour(png: bytes, rgb: tuple[int, int, int]) -> bool:
    pixels = np.asarray(PIL.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return bool((np.abs(pixels.astype(int) - rgb).sum(axis=1) < 30).any())


def test_the_report_shows_the_locked_and_available_balances(tmp_path):
    sizing = {"mode": "strategy_compound_profit_lock", "budget": 5000, "safe_profit_percent": 50}
    result, out = _report(tmp_path, sizing)
    safe = result.equity["strategy_safe_quote"].iloc[-1]
    available = result.equity["strategy_available_quote"].iloc[-1]
    text = (out / "report.md").read_text()
    assert f"locked profit (safe) {safe:,.2f}" in text
    assert f"available for the next entry {available:,.2f}" in text
    assert _has_colour((out / "equity.png").read_bytes(), (0x94, 0x67, 0xBD))  # the safe line
    html = (out / "report.html").read_text()
    assert "locked profit (safe)" in html and "available (profit lock)" in html

    _plain, plain_out = _report(tmp_path, {"mode": "all_in"})
    assert "profit lock" not in (plain_out / "report.md").read_text()
    assert not _has_colour((plain_out / "equity.png").read_bytes(), (0x94, 0x67, 0xBD))
    assert "locked profit" not in (plain_out / "report.html").read_text()
