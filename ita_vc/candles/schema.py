"""The canonical candle table and its vocabulary (timeframes, markets, instrument keys).

One table per ``(market, symbol, timeframe)``: ``ts_utc`` (int64 epoch milliseconds, the bar's
open time, strictly increasing), ``open, high, low, close, volume`` (float64) and ``gap_flag``
(bool: the gap from the previous bar is more than 1.5x the timeframe; False on the first bar).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "CANONICAL_COLUMNS",
    "PRICE_COLUMNS",
    "TIMEFRAMES",
    "check_market",
    "check_symbol",
    "gap_flags",
    "instrument_key",
    "timeframe_ms",
]

CANONICAL_COLUMNS = ("ts_utc", "open", "high", "low", "close", "volume", "gap_flag")
PRICE_COLUMNS = ("open", "high", "low", "close")
TIMEFRAMES: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000,
    "1d": 86_400_000,
}
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
    import numpy as np

    ts = np.asarray(ts_utc, dtype="int64")
    flags = np.zeros(len(ts), dtype=bool)
    if len(ts) > 1:
        flags[1:] = np.diff(ts) > GAP_FACTOR * step_ms
    return flags
