"""Backtest core: indicators, signals, the close-fill engine, sizing, SL/TP, metrics, report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.backtest.metrics import METRIC_NAMES, compute_metrics
    from ita_vc.backtest.params import RunParams, parse_params
    from ita_vc.backtest.run import ENGINE_VERSION, BacktestResult, run_backtest

_EXPORTS = {
    "ENGINE_VERSION": "ita_vc.backtest.run",
    "METRIC_NAMES": "ita_vc.backtest.metrics",
    "BacktestResult": "ita_vc.backtest.run",
    "RunParams": "ita_vc.backtest.params",
    "compute_metrics": "ita_vc.backtest.metrics",
    "parse_params": "ita_vc.backtest.params",
    "run_backtest": "ita_vc.backtest.run",
}

__all__ = [
    "ENGINE_VERSION",
    "METRIC_NAMES",
    "BacktestResult",
    "RunParams",
    "compute_metrics",
    "parse_params",
    "run_backtest",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
