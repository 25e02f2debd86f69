"""The canonical candle table and its vocabulary (timeframes, markets, instrument keys).

One table per ``(market, symbol, timeframe)``: ``ts_utc`` (int64 epoch milliseconds, the bar's
open time, strictly increasing), ``open, high, low, close, volume`` (float64) and ``gap_flag``
(bool: the gap from the previous bar is more than 1.5x the timeframe; False on the first bar).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CANONICAL_COLUMNS",
    "PRICE_COLUMNS",
    "TIMEFRAMES",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "TS_RANGE_TEXT",
    "check_market",
    "check_symbol",
    "format_step",
    "gap_flags",
    "infer_timeframe",
    "instrument_key",
    "median_step",
    "timeframe_ms",
]

CANONICAL_COLUMNS = ("ts_utc", "open", "high", "low", "close", "volume", "gap_flag")
PRICE_COLUMNS = ("open", "high", "low", "close")
TIMEFRAMES: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
# bars must fit pandas' nanosecond timestamps (charts, rollups and resampling convert to them)
TS_MIN_MS = -9_223_372_036_854  # 1677-09-21T00:12:43.146Z
TS_MAX_MS = 9_223_372_036_854  # 2262-04-11T23:47:16.854Z
TS_RANGE_TEXT = "1677-09-21 .. 2262-04-11"
_SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GAP_FACTOR = 1.5


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of a timeframe such as ``1m`` or ``4h``.

    Raises:
        DataValidationError: unknown timeframe.
    """
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise DataValidationError(
            f"unknown timeframe {timeframe!r} (one of {', '.join(TIMEFRAMES)})"
        ) from None


def check_market(market: str, markets: tuple[str, ...]) -> str:
    """Return ``market`` if configured (``candles.markets``).

    Raises:
        DataValidationError: unknown market.
    """
    if market not in markets:
        raise DataValidationError(
            f"unknown market {market!r} (configured in candles.markets: {', '.join(markets)})"
        )
    return market


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a plain instrument name (``BTCUSDT``, ``EUR.USD``).

    Raises:
        DataValidationError: a separator, a space or an empty name.
    """
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        hint = f" (did you mean {symbol.replace('/', '')!r}?)" if "/" in str(symbol) else ""
        raise DataValidationError(
            f"invalid symbol {symbol!r}: letters, digits, '.', '_', '-' (max 64){hint}"
        )
    return symbol


def instrument_key(market: str, symbol: str) -> str:
    """``exchange:market_type:symbol`` for display, e.g. ``binance:spot:BTCUSDT``."""
    exchange, _, market_type = market.partition("-")
    return f"{exchange}:{market_type or exchange}:{symbol}"


def gap_flags(ts_utc: npt.ArrayLike, step_ms: int) -> npt.NDArray[np.bool_]:
    """Boolean gap flags: True where the gap from the previous bar exceeds 1.5x the timeframe."""
    ts = np.asarray(ts_utc, dtype="int64")
    flags = np.zeros(len(ts), dtype=bool)
    if len(ts) > 1:
        flags[1:] = np.diff(ts) > GAP_FACTOR * step_ms
    return flags


def median_step(ts_utc: npt.ArrayLike) -> int | None:
    """The median spacing of the distinct bar times in ms (the lower median for an even count
    of steps, so always one of the steps); None with fewer than two distinct bars."""
    ts = np.unique(np.asarray(ts_utc, dtype="int64"))
    if len(ts) < 2:
        return None
    steps = np.diff(ts)
    middle = (len(steps) - 1) // 2
    return int(np.partition(steps, middle)[middle])


def format_step(step_ms: int) -> str:
    """A spacing in ms as ``1d``, ``4h``, ``90s``... (the timeframe name when it is one)."""
    for name, ms in TIMEFRAMES.items():
        if ms == step_ms:
            return name
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    return f"{step_ms}ms"


def infer_timeframe(ts_utc: npt.ArrayLike, source: str) -> str:
    """The timeframe whose length equals the median spacing of the bars.

    Raises:
        DataValidationError: fewer than two bars, or a spacing that is no known timeframe.
    """
    step = median_step(ts_utc)
    if step is None:
        raise DataValidationError(
            f"{source}: cannot infer the timeframe from a single bar; pass --timeframe "
            f"({', '.join(TIMEFRAMES)})"
        )
    name = format_step(step)
    if name not in TIMEFRAMES:
        raise DataValidationError(
            f"{source}: the median spacing of the bars is {name}, which is no known timeframe "
            f"({', '.join(TIMEFRAMES)}); nothing was written"
        )
    return name
