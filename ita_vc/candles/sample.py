"""A seeded generator of realistic synthetic 1m candles (the repository's sample dataset).

Geometric Brownian motion with a U-shaped intraday volatility profile (busier around the
00:00, 08:00 and 13:30 UTC session opens), occasional volatility regimes, wicks that scale with
the bar's volatility, volume that follows absolute returns, prices on the instrument's tick and
realistic gaps: scattered missing minutes plus a few exchange outages. The same arguments give
the same table, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ita_vc.candles.schema import CANONICAL_COLUMNS, gap_flags

__all__ = ["SAMPLE_SPECS", "SampleSpec", "generate_candles"]

_MINUTE = 60_000
_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """One synthetic instrument."""

    market: str
    symbol: str
    start_ms: int
    days: int
    start_price: float
    annual_vol: float
    tick: float
    volume_scale: float
    seed: int


#: The repository's sample data: 60 days of 1m bars, two symbols on two markets.
SAMPLE_SPECS = (
    SampleSpec("binance-spot", "BTCUSDT", 1_735_689_600_000, 60, 94_000.0, 0.55, 0.01, 12.0, 7),
    SampleSpec("bybit-futures", "ETHUSDT", 1_735_689_600_000, 60, 3_350.0, 0.70, 0.01, 150.0, 11),
)


def generate_candles(spec: SampleSpec) -> pd.DataFrame:
    """The canonical 1m table of ``spec`` (with gaps and ``gap_flag``)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.days * 1440
    ts = spec.start_ms + np.arange(n, dtype="int64") * _MINUTE
    minute_of_day = (ts % _DAY) // _MINUTE
    profile = 0.7 + sum(
        0.9 * np.exp(-((((minute_of_day - center) % 1440) / width) ** 2))
        for center, width in ((0, 60), (480, 45), (810, 50), (1439, 30))
    )
    regime = np.exp(np.repeat(rng.normal(0.0, 0.35, spec.days * 4), 360)[:n])
    sigma = spec.annual_vol / np.sqrt(365 * 1440) * profile * regime
    returns = rng.standard_t(5, n) * np.sqrt(3 / 5) * sigma - 0.5 * sigma**2
    close = spec.start_price * np.exp(np.cumsum(returns))
    open_ = np.r_[spec.start_price, close[:-1]]
    wick = np.abs(rng.normal(0.0, 1.0, (2, n))) * sigma * 0.6
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])

    def on_tick(x: Any) -> Any:
        return np.round(np.round(x / spec.tick) * spec.tick, 8)

    open_, high, low, close = (on_tick(x) for x in (open_, high, low, close))
    high = np.maximum.reduce([high, open_, close])
    low = np.minimum.reduce([low, open_, close])
    activity = np.abs(returns) / sigma
    volume = np.round(
        spec.volume_scale * profile * (0.3 + activity) * rng.lognormal(0.0, 0.5, n), 3
    )
    keep = rng.random(n) > 0.0005  # scattered missing minutes
    for _ in range(3):  # exchange outages of 5 minutes to 3 hours
        start = int(rng.integers(1440, n - 1440))
        keep[start : start + int(rng.integers(5, 180))] = False
    frame = pd.DataFrame(
        {"ts_utc": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )[keep].reset_index(drop=True)
    frame["gap_flag"] = gap_flags(frame["ts_utc"], _MINUTE)
    return frame[list(CANONICAL_COLUMNS)]
