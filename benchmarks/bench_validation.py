"""Validation benchmarks (issue #16; work in progress). One run; medians of --repeat.

1. CSCV / PBO with S = 16 (12,870 combinations) on 2,000 variants x 1,000 days: ita-vc's
   per-block sums against the straightforward numpy loop over the combinations (each half's
   Sharpe Ratios from its rows), in the same run, on the same matrix; peak memory of each.
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
from _util import print_table


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
