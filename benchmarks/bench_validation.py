"""Validation benchmarks (issue #16), one run.

1. CSCV / PBO with S = 16 (12,870 combinations) on 2,000 variants x 1,000 days: ita-vc's
   per-block sums against the straightforward numpy loop over the combinations (each half's
   Sharpe Ratios from its rows), in the same run, on the same matrix; peak memory of each.
   And pypbo-style code (every split's IS and OOS arrays kept, then ranked) on a small matrix
   only (200 variants x 320 days, S = 16): its memory grows with C(S, S/2) x T x N.
2. The permutation test: 1,000 permutations of a 100,000-bar backtest (ma_cross on 1h bars)
   through the compiled engine in batches across the cores, against the floor n x one
   backtest's engine time (median of 21, the same indicator + engine + metric code a
   permutation runs) / cores. Goal: within 1.5x of the floor.

``--quick``: S = 10 and 100 permutations of 20,000 bars.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _util import median_time, print_table


def plain_cscv(m: np.ndarray, s: int) -> float:
    """The definition as a plain loop: for every combination, Sharpe of each half's rows."""
    from scipy.stats import rankdata

    m = m[len(m) % s :]
    blocks = np.array_split(np.arange(len(m)), s)
    n = m.shape[1]
    below = 0
    combos = list(combinations(range(s), s // 2))
    for chosen in combos:
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(s) if i not in chosen])
        a, b = m[inside], m[outside]
        sr_in = a.mean(0) / a.std(0, ddof=1)
        sr_out = b.mean(0) / b.std(0, ddof=1)
        w = rankdata(sr_out)[int(np.argmax(sr_in))] / (n + 1)
        below += np.log(w / (1 - w)) <= 0
    return below / len(combos)


def pypbo_style(m: np.ndarray, s: int) -> float:
    """CSCV as pypbo writes it: every split's IS and OOS matrices built and kept first, then
    each ranked (two arrays per split held at once)."""
    from scipy.stats import rankdata

    m = m[len(m) % s :]
    blocks = np.array_split(np.arange(len(m)), s)
    splits = []
    for chosen in combinations(range(s), s // 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(s) if i not in chosen])
        splits.append((m[inside].copy(), m[outside].copy()))
    n = m.shape[1]
    lambdas = []
    for a, b in splits:
        w = rankdata(b.mean(0) / b.std(0, ddof=1))[int(np.argmax(a.mean(0) / a.std(0, ddof=1)))]
        w /= n + 1
        lambdas.append(np.log(w / (1 - w)))
    return float(np.mean(np.array(lambdas) <= 0))


def permutation_bench(bars: int, n: int) -> None:
    """Part 2: the permutation test against n x one backtest / cores."""
    import os

    import pandas as pd

    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import load_rule, prepare_candles
    from ita_vc.catalog import load_catalog
    from ita_vc.validation.permutation import perm_context, permutation_test, total_return_of

    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, bars)))
    open_ = np.r_[close[0], close[:-1]]
    candles = pd.DataFrame(
        {
            "ts_utc": 1_600_000_000_000 + np.arange(bars, dtype=np.int64) * 3_600_000,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": np.ones(bars),
        }
    )
    params = parse_params(
        {"data": {"market": "binance-spot", "timeframe": "1h"}, "backtest": {"warmup_bars": 50}}
    )
    prepared, _ = prepare_candles(candles, params)
    catalog = load_catalog()
    rule = load_rule(
        {
            "setup_id": "bench",
            "version": "1.0",
            "direction": "long-short",
            "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 40}}],
        },
        catalog,
    )
    context = perm_context(prepared, rule, params, catalog)
    one = median_time(lambda: total_return_of(context.bars, context), 21)
    from ita_vc.backtest.run import run_backtest
    from ita_vc.validation.permutation import iter_permutation_batches

    whole = median_time(lambda: run_backtest(prepared, rule, params).metrics, 5)
    m = len(context.bars.close) - context.n_warm - 1
    started = time.perf_counter()
    for _batch in iter_permutation_batches(0, n, m, 8):
        pass
    draws = time.perf_counter() - started
    cores = os.cpu_count() or 1
    floor = n * one / cores
    started = time.perf_counter()
    result, _values = permutation_test(prepared, rule, params, catalog, n=n, seed=0, workers=cores)
    took = time.perf_counter() - started
    print_table(
        f"2. Permutation test: {n:,} permutations of a {bars:,}-bar backtest on {cores} cores "
        f"(p = {result.p_value:.4f})",
        [
            ("one backtest: indicators + engine + Total Return", f"{one * 1000:.2f} ms", ""),
            ("one whole run_backtest (metrics, tables)", f"{whole * 1000:.1f} ms", ""),
            (f"floor: n x engine / {cores} cores", f"{floor:.2f} s", "1.00x"),
            (
                f"n x whole run_backtest / {cores} cores",
                f"{n * whole / cores:.2f} s",
                f"{n * whole / cores / floor:.2f}x",
            ),
            (
                "the n draws alone (rng.permutation, in the parent, in order: serial)",
                f"{draws:.2f} s",
                f"{draws / floor:.2f}x",
            ),
            ("ita-vc permutation_test", f"{took:.2f} s", f"{took / floor:.2f}x"),
        ],
        ("", "time", "vs the engine floor"),
    )


def measure(fn, *args):  # type: ignore[no-untyped-def]
    """(value, seconds, peak traced bytes): timed without tracing (tracemalloc slows every
    numpy allocation), then traced once for the memory."""
    started = time.perf_counter()
    value = fn(*args)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return value, seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="S = 10 (252 combinations)")
    args = parser.parse_args()
    from ita_vc.validation.stats import cscv

    s = 10 if args.quick else 16
    m = np.random.default_rng(0).normal(0.0, 0.01, size=(1_000, 2_000))
    small = np.random.default_rng(1).normal(0.0, 0.01, size=(320, 200))
    ours, ours_s, ours_mem = measure(lambda: cscv(m, s).pbo)
    plain, plain_s, plain_mem = measure(plain_cscv, m, s)
    print_table(
        f"1. CSCV, S = {s}, 2,000 variants x 1,000 days (PBO {ours:.4f}; plain loop {plain:.4f})",
        [
            ("plain numpy loop", f"{plain_s:.2f} s", f"{plain_mem / 2**20:.0f} MiB", "1.00x"),
            (
                "ita-vc (per-block sums)",
                f"{ours_s:.2f} s",
                f"{ours_mem / 2**20:.0f} MiB",
                f"{plain_s / ours_s:.1f}x faster",
            ),
        ],
        ("CSCV", "time", "peak memory", "vs plain"),
    )
    small_ours, small_ours_s, small_ours_mem = measure(lambda: cscv(small, s).pbo)
    small_py, small_py_s, small_py_mem = measure(pypbo_style, small, s)
    print_table(
        f"   small matrix, 200 variants x 320 days, S = {s} (PBO {small_ours:.4f}; "
        f"pypbo-style {small_py:.4f})",
        [
            (
                "pypbo-style (arrays per split)",
                f"{small_py_s:.2f} s",
                f"{small_py_mem / 2**20:.0f} MiB",
                "1.00x",
            ),
            (
                "ita-vc (per-block sums)",
                f"{small_ours_s:.3f} s",
                f"{small_ours_mem / 2**20:.1f} MiB",
                f"{small_py_s / small_ours_s:.1f}x faster",
            ),
        ],
        ("CSCV", "time", "peak memory", "vs pypbo-style"),
    )
    if args.quick:
        permutation_bench(20_000, 100)
    else:
        permutation_bench(100_000, 1_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
