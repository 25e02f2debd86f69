"""The statistics of the validation suite, to the letter of issue #16 / docs/validation.md.

Pure functions over numpy arrays: no backtest, no I/O. Randomness only through the
``numpy.random.Generator`` a caller passes (one fresh ``default_rng(seed)`` per randomised
test), consumed exactly as documented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = [
    "EULER_GAMMA",
    "BarArrays",
    "Cscv",
    "DeflatedSharpe",
    "McResult",
    "Window",
    "block_bootstrap_replicates",
    "confidence_interval",
    "cscv",
    "deflated_sharpe",
    "monte_carlo_paths",
    "monte_carlo_summary",
    "permutation_p_value",
    "permute_bars",
    "sharpe_columns",
    "wfo_windows",
]

EULER_GAMMA = 0.5772156649015329


def confidence_interval(x: npt.ArrayLike, level: float) -> tuple[float, float]:
    """``numpy.percentile(x, [50 * (1 - c), 50 * (1 + c)])`` (linear)."""
    lo, hi = np.percentile(np.asarray(x, dtype=np.float64), [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


# --- 1. permutation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BarArrays:
    """OHLCV of the bars a backtest reads (warm-up first), float64."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


def permute_bars(bars: BarArrays, n_warm: int, perm: IntArray) -> BarArrays:
    """The permuted series of issue #16 (1): bars before ``n_warm`` and the range's bar 0 stay;
    range bar k (1..m) takes the relative moves of original bar ``perm[k-1] + 1`` ("gather")."""
    c = bars.close[n_warm:]
    m = len(c) - 1
    if len(perm) != m:
        raise ValueError(f"perm has {len(perm)} entries, the range has {m} bars after its first")
    o, h, lo, v = (a[n_warm:] for a in (bars.open, bars.high, bars.low, bars.volume))
    r = np.log(c[1:] / c[:-1])
    x_open, x_high, x_low = (np.log(a[1:] / c[1:]) for a in (o, h, lo))
    vol = v[1:]
    log_c = math.log(c[0]) + np.cumsum(r[perm])
    close = np.exp(log_c)

    def build(head: FloatArray, tail: FloatArray) -> FloatArray:
        return np.concatenate([head[: n_warm + 1], tail])

    return BarArrays(
        open=build(bars.open, close * np.exp(x_open[perm])),
        high=build(bars.high, close * np.exp(x_high[perm])),
        low=build(bars.low, close * np.exp(x_low[perm])),
        close=build(bars.close, close),
        volume=build(bars.volume, vol[perm]),
    )


def permutation_p_value(actual: float, permuted: npt.ArrayLike) -> float:
    """``(1 + #{TR_i >= TR_actual}) / (n + 1)``."""
    values = np.asarray(permuted, dtype=np.float64)
    return float((1 + np.count_nonzero(values >= actual)) / (len(values) + 1))


# --- 2. block bootstrap -----------------------------------------------------------------------


def block_bootstrap_replicates(r: npt.ArrayLike, block: int, starts: IntArray) -> FloatArray:
    """Replicate i: for each start s of ``starts[i]`` in order, ``r[(s + j) % T]`` for
    j = 0..block-1, concatenated and cut to T values (circular blocks)."""
    returns = np.asarray(r, dtype=np.float64)
    t = len(returns)
    # a block longer than T: one block per replicate, of which only T values are kept
    offsets = np.arange(min(block, t))
    index = (starts[:, :, None] + offsets[None, None, :]) % t  # (n, k, b)
    replicates: FloatArray = returns[index.reshape(len(starts), -1)[:, :t]]
    return replicates


# --- 3. Monte Carlo over trades ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class McResult:
    """Final equity and max drawdown [%] percentiles, and the share of losing paths."""

    equity_p5: float | None
    equity_p50: float | None
    equity_p95: float | None
    max_drawdown_p5: float | None
    max_drawdown_p50: float | None
    max_drawdown_p95: float | None
    prob_loss: float | None


def monte_carlo_paths(q: npt.ArrayLike, init_cash: float, idx: IntArray) -> FloatArray:
    """Path j = [init_cash, init_cash * cumprod(1 + q[idx[j]])]."""
    growth = np.cumprod(1.0 + np.asarray(q, dtype=np.float64)[idx], axis=1)
    return np.concatenate([np.full((len(idx), 1), init_cash), init_cash * growth], axis=1)


def monte_carlo_summary(paths: FloatArray, init_cash: float) -> McResult:
    """The percentiles of the final equity and of the max drawdown, and P(final < init_cash)."""
    if paths.size == 0 or paths.shape[1] < 2:  # no trades: nothing drawn
        return McResult(None, None, None, None, None, None, None)
    final = paths[:, -1]
    drawdown = (paths / np.maximum.accumulate(paths, axis=1) - 1.0).min(axis=1) * 100.0
    e5, e50, e95 = (float(v) for v in np.percentile(final, [5, 50, 95]))
    d5, d50, d95 = (float(v) for v in np.percentile(drawdown, [5, 50, 95]))
    return McResult(e5, e50, e95, d5, d50, d95, float(np.mean(final < init_cash)))


# --- 4. walk-forward --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Bar indexes (of the range, warm-up excluded) of one walk-forward segment; ends exclusive."""

    in_start: int
    in_end: int
    out_start: int
    out_end: int


def wfo_windows(
    n_bars: int, windows: int, in_sample_ratio: int, mode: Literal["rolling", "anchored"]
) -> list[Window]:
    """L = floor(N / (k + q)); OOS j = [q*L + j*L, q*L + (j+1)*L) (the last to N); IS =
    [j*L, q*L + j*L) rolling or [0, q*L + j*L) anchored.

    Raises:
        ValueError: L < 1.
    """
    length = n_bars // (windows + in_sample_ratio)
    if length < 1:
        raise ValueError(f"{n_bars} bars cannot make {windows} windows at ratio {in_sample_ratio}")
    out = []
    for j in range(windows):
        out_start = in_sample_ratio * length + j * length
        out_end = n_bars if j == windows - 1 else out_start + length
        in_start = j * length if mode == "rolling" else 0
        out.append(Window(in_start, out_start, out_start, out_end))
    return out


# --- 5. CSCV / PBO and the deflated Sharpe ratio ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Cscv:
    """PBO, the logits of every combination and their count."""

    pbo: float
    lambdas: FloatArray
    combinations: int


def sharpe_columns(m: FloatArray) -> FloatArray:
    """mean / std (ddof=1) per column, 0 where the std is 0 (not annualised). The matrix is
    read in C order whatever its layout, so the sums (and the bits) never depend on it."""
    m = np.ascontiguousarray(m, dtype=np.float64)
    std = m.std(axis=0, ddof=1)
    mean = m.mean(axis=0)
    out = np.zeros(m.shape[1])
    np.divide(mean, std, out=out, where=std > 0)
    return out


def cscv(matrix: npt.ArrayLike, partitions: int) -> Cscv:
    """Combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado, Zhu 2015)
    as issue #16 (5) defines it, over a T x N matrix of daily returns.

    Per-block sums and sums of squares are computed once; each combination's Sharpe Ratios come
    from them by one matrix product per chunk of combinations (the IS/OOS halves are unions of
    whole blocks), and the rank of the in-sample winner out of sample is counted (what
    ``scipy.stats.rankdata(method="average")`` gives it), so memory stays at the matrix plus
    chunk x N floats and time at C(S, S/2) x S x N.

    Raises:
        ValueError: S odd or outside 2..20, fewer than S rows, fewer than 2 variants.
    """
    m = np.ascontiguousarray(matrix, dtype=np.float64)  # C order: the same sums, any layout
    s = partitions
    if s % 2 or not 2 <= s <= 20:
        raise ValueError(f"partitions must be even and in 2..20, got {s}")
    t, n = m.shape
    if t < s or n < 2:
        raise ValueError(f"a {t} x {n} matrix cannot be split into {s} blocks of 2+ variants")
    m = m[t % s :]
    blocks = m.reshape(s, -1, n)  # (S, rows per block, N)
    rows = blocks.shape[1]
    sums = blocks.sum(axis=1)  # (S, N)
    squares = (blocks**2).sum(axis=1)
    combos = list(combinations(range(s), s // 2))
    member = np.zeros((len(combos), s))
    for c, chosen in enumerate(combos):
        member[c, list(chosen)] = 1.0
    lambdas = np.empty(len(combos))
    half = rows * (s // 2)
    for lo in range(0, len(combos), _CSCV_CHUNK):  # bounded memory: chunk x N per array
        inside = member[lo : lo + _CSCV_CHUNK]
        outside = 1.0 - inside
        sr_in = _sharpe_from_sums(inside @ sums, inside @ squares, half)
        sr_out = _sharpe_from_sums(outside @ sums, outside @ squares, half)
        best = np.argmax(sr_in, axis=1)  # ties: the lowest column
        at = sr_out[np.arange(len(best)), best][:, None]
        # rankdata(method="average") of the best column among the N: below + (equal + 1) / 2
        rank = (sr_out < at).sum(axis=1) + ((sr_out == at).sum(axis=1) + 1) / 2
        w = rank / (n + 1)
        lambdas[lo : lo + len(best)] = np.log(w / (1 - w))
    return Cscv(float(np.mean(lambdas <= 0)), lambdas, len(combos))


_CSCV_CHUNK = 256
"""Combinations evaluated together: each chunk's arrays are chunk x N floats."""
_TIE_DECIMALS = 12
"""Sharpe Ratios are compared at 12 decimals: two variants with the same returns in another
order (an exact tie by the definition) differ in the last bits of any float computation; the
rounding makes them the tie the definition ranks as one (``rankdata`` averages it)."""


def _sharpe_from_sums(total: FloatArray, squares: FloatArray, count: int) -> FloatArray:
    mean = total / count
    var = (squares - count * mean**2) / (count - 1)
    std = np.sqrt(np.maximum(var, 0.0))
    out = np.zeros_like(mean)
    np.divide(mean, std, out=out, where=std > 1e-15)
    return np.round(out, _TIE_DECIMALS)


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """DSR = PSR(SR0), PSR(0), SR0 and the number of trials."""

    dsr: float | None
    psr0: float | None
    sr0: float | None
    n_trials: int


def psr(sr: float, benchmark: float, t: int, skew: float, kurt: float) -> float:
    """Phi((SR - x) * sqrt(T - 1) / sqrt(1 - g3*SR + (g4 - 1)/4 * SR^2))."""
    from scipy.stats import norm

    variance = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if not variance > 0:  # NaN moments or a degenerate series: undefined
        return math.nan
    return float(norm.cdf((sr - benchmark) * math.sqrt(t - 1) / math.sqrt(variance)))


def expected_max_sharpe(variance: float, n_trials: int) -> float:
    """SR0 = sqrt(V) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))."""
    from scipy.stats import norm

    return math.sqrt(variance) * float(
        (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n_trials)
        + EULER_GAMMA * norm.ppf(1 - 1 / (n_trials * math.e))
    )


def deflated_sharpe(best_returns: npt.ArrayLike, trial_sharpes: npt.ArrayLike) -> DeflatedSharpe:
    """The deflated Sharpe ratio (Bailey & Lopez de Prado 2014) of the best variant's daily
    returns, deflated by the daily Sharpe Ratios of all trials (issue #16 (5))."""
    from scipy.stats import kurtosis, skew

    r = np.asarray(best_returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    sr0 = expected_max_sharpe(float(trials.var(ddof=1)), len(trials)) if len(trials) >= 2 else None
    if std <= 0:  # no variation: the Sharpe Ratio, and so the PSR, is undefined
        return DeflatedSharpe(None, None, sr0, len(trials))
    sr = float(r.mean()) / std
    g3, g4 = float(skew(r)), float(kurtosis(r, fisher=False))
    psr0 = psr(sr, 0.0, len(r), g3, g4)
    dsr = psr(sr, sr0, len(r), g3, g4) if sr0 is not None else None
    return DeflatedSharpe(dsr, psr0, sr0, len(trials))
