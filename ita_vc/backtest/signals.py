"""Indicator states and the rule's final state, per bar.

States: LONG = 1, SHORT = -1, NEUTRAL = 0, each from the indicator's own values at that bar's
close (ties and NaN for lack of history are NEUTRAL):

* ``sma``/``ema(window)``: LONG if close > MA, SHORT if close < MA;
* ``rsi(window, lower=30, upper=70)``: LONG if rsi < lower, SHORT if rsi > upper;
* ``bbands(window, k)``: LONG if close < lower band, SHORT if close > upper band;
* ``ma_cross(fast, slow)``: LONG if SMA(fast) > SMA(slow), SHORT if <;
* ``atr(window, k)``: LONG if close - prev close > k*ATR[t-1], SHORT if < -k*ATR[t-1].

The rule's state is LONG only if every indicator is LONG, SHORT only if every one is SHORT,
else NEUTRAL (a rule without indicators is always NEUTRAL). Bars where one indicator says LONG
and another SHORT are *conflicting*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np

from ita_vc.backtest import indicators as ind
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    from ita_vc.catalog import Catalog
    from ita_vc.utils.arrays import BoolArray, FloatArray, Int8Array

__all__ = [
    "LONG",
    "NEUTRAL",
    "SHORT",
    "combine_states",
    "indicator_state",
    "resolve_indicator_params",
    "rule_states",
]

LONG, SHORT, NEUTRAL = 1, -1, 0


@nb.njit(cache=True, nogil=True)
def _above_state(a: FloatArray, b: FloatArray) -> Int8Array:  # pragma: no cover - compiled
    """LONG where ``a - b > 0``, SHORT where ``< 0``, else NEUTRAL (NaN compares False both
    ways): one pass, no temporary difference array."""
    state = np.zeros(len(a), dtype=np.int8)
    for i in range(len(a)):
        diff = a[i] - b[i]
        if diff > 0:
            state[i] = LONG
        elif diff < 0:
            state[i] = SHORT
    return state


def _band_state(
    value: FloatArray,
    long_below: FloatArray | float,
    short_above: FloatArray | float,
) -> Int8Array:
    state = np.zeros(len(value), dtype=np.int8)
    state[value < long_below] = LONG
    state[value > short_above] = SHORT
    return state


def indicator_state(
    name: str, params: Mapping[str, float], high: FloatArray, low: FloatArray, close: FloatArray
) -> Int8Array:
    """The int8 state series of one indicator (params already resolved with defaults).

    Raises:
        DataValidationError: an indicator this engine does not implement.
    """
    if name in ("sma", "ema"):
        ma = (ind.sma if name == "sma" else ind.ema)(close, int(params["window"]))
        return _above_state(close, ma)
    if name == "ma_cross":
        fast = ind.sma(close, int(params["fast"]))
        slow = ind.sma(close, int(params["slow"]))
        return _above_state(fast, slow)
    if name == "rsi":
        values = ind.rsi(close, int(params["window"]))
        return _band_state(values, float(params["lower"]), float(params["upper"]))
    if name == "bbands":
        lower, _middle, upper = ind.bbands(close, int(params["window"]), float(params["k"]))
        return _band_state(close, lower, upper)
    if name == "atr":
        values = ind.atr(high, low, close, int(params["window"]))
        threshold = float(params["k"]) * np.r_[np.nan, values[:-1]]
        move = close - np.r_[np.nan, close[:-1]]
        state = np.zeros(len(close), dtype=np.int8)
        state[move > threshold] = LONG
        state[move < -threshold] = SHORT
        return state
    raise DataValidationError(f"indicator {name!r} has no implementation in this engine")


def combine_states(states: Sequence[Int8Array], size: int) -> tuple[Int8Array, BoolArray]:
    """``(final state, conflicting mask)`` of several indicator state series."""
    if not states:
        return np.zeros(size, dtype=np.int8), np.zeros(size, dtype=bool)
    stack = np.vstack(states)
    all_long = (stack == LONG).all(axis=0)
    all_short = (stack == SHORT).all(axis=0)
    final = np.where(all_long, LONG, np.where(all_short, SHORT, NEUTRAL)).astype(np.int8)
    conflicting = (stack == LONG).any(axis=0) & (stack == SHORT).any(axis=0)
    return final, conflicting


def resolve_indicator_params(
    indicators: Sequence[Mapping[str, Any]], catalog: Catalog
) -> list[tuple[str, dict[str, float]]]:
    """Each indicator with its params completed from the catalog defaults, validated.

    Raises:
        DataValidationError: unknown indicator or parameter, or out of the catalog's range.
    """
    resolved = []
    for i, item in enumerate(indicators):
        name = item.get("name")
        spec = catalog.get(str(name))
        if spec is None:
            raise DataValidationError(
                f"indicators.{i}: unknown indicator {name!r} (catalog: "
                f"{', '.join(catalog.indicators)})"
            )
        params = dict(item.get("params") or {})
        problems = spec.check_params(params)
        if problems:
            detail = "; ".join(f"{k or name}: {m}" for k, m in problems)
            raise DataValidationError(f"indicators.{i} ({name}): {detail}")
        resolved.append((spec.name, {k: params.get(k, p.default) for k, p in spec.params.items()}))
    return resolved


def rule_states(
    indicators: Sequence[tuple[str, Mapping[str, float]]],
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
) -> tuple[Int8Array, BoolArray]:
    """Final rule state and conflicting mask for all bars."""
    high, low, close = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    states = [indicator_state(name, params, high, low, close) for name, params in indicators]
    if len(states) == 1:  # one indicator: its state is final, nothing can conflict
        return states[0], np.zeros(len(close), dtype=bool)
    return combine_states(states, len(close))
