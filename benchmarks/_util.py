"""Helpers shared by the benchmark scripts: medians, tables, isolated temp workspaces."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run_quiet(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        args, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


SYNTHETIC_T0 = 1_577_836_800_000
MA_CROSS_RULE = {
    "setup_id": "bench",
    "version": "1.0",
    "direction": "long-short",
    "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}],
}
# no fees/slippage: on a random walk, fees ruin a 1m ma_cross and vectorbt then stops trading
# (orders below its minimum size), which would compare different trade counts
NO_COST_PARAMS = {
    # a crypto market: Sharpe annualised over 365 calendar days, as vectorbt does by default
    "data": {"market": "binance-spot"},
    "backtest": {"warmup_bars": 0, "fee_pct": 0.0, "slippage_pct": 0.0},
}


def synthetic_1m_candles(n: int) -> Any:
    """``n`` canonical 1m bars of a seeded random walk (the backtest and grid benchmarks)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 4)
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "ts_utc": SYNTHETIC_T0 + np.arange(n, dtype=np.int64) * 60_000,
            "open": open_,
            "high": np.maximum(open_, close) * 1.0002,
            "low": np.minimum(open_, close) * 0.9998,
            "close": close,
            "volume": np.ones(n),
        }
    )


def backtesting_ma_cross(candles: Any) -> tuple[Any, type]:
    """backtesting.py's ``(data, strategy)`` for :data:`MA_CROSS_RULE` on canonical candles: a
    DatetimeIndex frame with its column names and an SMA(10)/SMA(20) cross that buys/sells 99 %
    (the peer of the backtest, grid and report benchmarks)."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    data = pd.DataFrame(
        {
            name.title(): candles[name].to_numpy()
            for name in ("open", "high", "low", "close", "volume")
        },
        index=pd.to_datetime(candles["ts_utc"], unit="ms"),
    )

    class Cross(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy(size=0.99)
            elif crossover(self.slow, self.fast):
                self.sell(size=0.99)

    return data, Cross
