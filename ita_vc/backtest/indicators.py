"""Indicators: deterministic, vectorised (numba), TA-Lib conventions.

Every function takes float64 arrays and returns float64 arrays of the same length, NaN where
there is not enough history.

* ``sma(x, n)``: a rolling mean whose arithmetic is pandas' ``Series.rolling(n).mean()`` bit for
  bit - a running sum with separate Kahan compensations for the values added and removed
  (removals first), divided by ``n``; a window of ``n`` equal values gives exactly that value, so
  ``close == SMA`` is a real tie, not rounding noise.
* ``rolling_std(x, n)``: population standard deviation (ddof=0) of each window, computed
  directly: ``sqrt(sum((x_j - sma)^2 for the n values, in order) / n)`` around the SMA above, so
  a window of equal values has exactly 0.
* ``ema(x, n)``: alpha = 2/(n+1), seeded at bar n-1 with the SMA of the first n values, then
  ``ema = (x - ema) * alpha + ema`` (TA-Lib's form).
* ``rsi(x, n)``: Wilder. Changes from bar 1; the first average gain/loss (bar n) are the simple
  means of the first n changes; then ``avg = (avg * (n - 1) + value) / n``;
  ``rsi = 100 * avg_gain / (avg_gain + avg_loss)``, 50 when both are 0.
* ``atr(high, low, close, n)``: true range from bar 1 (``max(h - l, |h - c[t-1]|,
  |l - c[t-1]|)``), first ATR at bar n = mean(TR[1..n]), then Wilder smoothing.
* ``bbands(x, n, k)``: middle = SMA, upper/lower = middle +- k * population std.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from ita_vc.utils.arrays import FloatArray

__all__ = ["atr", "bbands", "ema", "rolling_std", "rsi", "sma"]

_CACHE = True


@nb.njit(cache=_CACHE, nogil=True)
def _is_negative(val: float) -> bool:
    return val < 0 or (val == 0 and math.copysign(1.0, val) < 0)


@nb.njit(cache=_CACHE, nogil=True)
def _sma(values: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    size = len(values)
    out = np.full(size, np.nan)
    sum_x = 0.0
    comp_add = 0.0
    comp_rem = 0.0
    nobs = 0
    neg_ct = 0
    same = 0
    prev = values[0] if size else 0.0
    for i in range(size):
        if i >= n:
            old = values[i - n]
            if not math.isnan(old):
                nobs -= 1
                y = -old - comp_rem
                t = sum_x + y
                comp_rem = t - sum_x - y
                sum_x = t
                if _is_negative(old):
                    neg_ct -= 1
        val = values[i]
        if not math.isnan(val):
            nobs += 1
            y = val - comp_add
            t = sum_x + y
            comp_add = t - sum_x - y
            sum_x = t
            if _is_negative(val):
                neg_ct += 1
            if val == prev:
                same += 1
            else:
                same = 1
            prev = val
        if nobs >= n:
            result = sum_x / nobs
            if same >= nobs:
                result = prev
            elif (neg_ct == 0 and result < 0) or (neg_ct == nobs and result > 0):
                result = 0.0
            out[i] = result
    return out


@nb.njit(cache=_CACHE, nogil=True)
def _rolling_std(  # pragma: no cover - compiled
    values: FloatArray,
    means: FloatArray,
    n: int,
) -> FloatArray:
    size = len(values)
    out = np.full(size, np.nan)
    for i in range(n - 1, size):
        mean = means[i]
        if math.isnan(mean):
            continue
        acc = 0.0
        for j in range(i - n + 1, i + 1):
            dev = values[j] - mean
            acc += dev * dev
        out[i] = math.sqrt(acc / n)
    return out


@nb.njit(cache=_CACHE, nogil=True)
def _ema(values: FloatArray, n: int, seed: float) -> FloatArray:  # pragma: no cover - compiled
    size = len(values)
    out = np.full(size, np.nan)
    if size < n:
        return out
    alpha = 2.0 / (n + 1)
    prev = seed
    out[n - 1] = prev
    for i in range(n, size):
        prev = (values[i] - prev) * alpha + prev
        out[i] = prev
    return out


@nb.njit(cache=_CACHE, nogil=True)
def _rsi(values: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    size = len(values)
    out = np.full(size, np.nan)
    if size <= n:
        return out
    gain = 0.0  # sums of the first n changes, then Wilder averages
    loss = 0.0
    for i in range(1, size):
        change = values[i] - values[i - 1]
        if i > n:
            gain *= n - 1
            loss *= n - 1
        if change > 0:
            gain += change
        else:
            loss -= change
        if i >= n:  # at bar n the sums become simple means; later, (avg * (n-1) + x) / n
            gain /= n
            loss /= n
            out[i] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    return out


@nb.njit(cache=_CACHE, nogil=True)
def _atr(  # pragma: no cover - compiled
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    n: int,
) -> FloatArray:
    size = len(close)
    out = np.full(size, np.nan)
    if size <= n:
        return out
    total = 0.0
    for i in range(1, n + 1):
        total += max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    prev = total / n
    out[n] = prev
    for i in range(n + 1, size):
        tr = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        prev = (prev * (n - 1) + tr) / n
        out[i] = prev
    return out


def _arr(values: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _window(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"window must be a positive whole number, got {n!r}")
    return int(n)


def sma(values: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average (pandas rolling-mean arithmetic, exact on equal windows)."""
    return _sma(_arr(values), _window(n))


def rolling_std(values: npt.ArrayLike, n: int, means: npt.ArrayLike | None = None) -> FloatArray:
    """Population (ddof=0) rolling standard deviation around the :func:`sma` of the window."""
    x = _arr(values)
    n = _window(n)
    return _rolling_std(x, _arr(sma(x, n) if means is None else means), n)


def ema(values: npt.ArrayLike, n: int) -> FloatArray:
    """Exponential moving average seeded with the SMA of the first n values."""
    x = _arr(values)
    n = _window(n)
    seed = sma(x[:n], n)[-1] if len(x) >= n else math.nan
    return _ema(x, n, seed)


def rsi(values: npt.ArrayLike, n: int) -> FloatArray:
    """Wilder's RSI."""
    return _rsi(_arr(values), _window(n))


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int) -> FloatArray:
    """Wilder's average true range."""
    return _atr(_arr(high), _arr(low), _arr(close), _window(n))


def bbands(
    values: npt.ArrayLike,
    n: int,
    k: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands ``(lower, middle, upper)``: SMA +- k * population std."""
    middle = sma(values, n)
    width = k * rolling_std(values, n, middle)
    return middle - width, middle, middle + width
