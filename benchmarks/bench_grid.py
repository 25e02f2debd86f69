"""Grid benchmarks (one run; each number a median where repeated; peak RSS per subprocess).

1. one ma_cross(10, 20) long-short backtest on 1,000,000 synthetic 1m bars with all metrics:
   ita-vc vs vectorbt (Portfolio.from_signals + .stats()) vs backtesting.py;
2. a grid of 100 ma_cross pairs x 1,000,000 bars with every variant's Total Return, Max DD,
   Sharpe and trade count: ita-vc vs vectorbt (wall time and peak RSS);
3. a 100,000-variant staged grid (SL/TP axes) on 100,000 bars: wall time, variants/s, peak RSS
   (and the same grid at a tenth of the size, to show memory does not grow with variants).

Each measurement runs in a fresh subprocess (`python bench_grid.py --case NAME`), so peak RSS
is that case's alone. Fees and slippage are 0: on a random walk a 1m ma_cross with fees ruins
the account and vectorbt stops placing orders, which would compare different trade counts.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_grid.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from collections.abc import Callable

from _util import (
    MA_CROSS_RULE,
    NO_COST_PARAMS,
    backtesting_ma_cross,
    median_time,
    print_table,
    synthetic_1m_candles,
)

PAIRS = [
    (f, s)
    for f in (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    for s in (60, 70, 80, 90, 100, 120, 140, 160, 180, 200)
]
RULE, PARAMS = MA_CROSS_RULE, NO_COST_PARAMS


def case_single_itavc(n: int, repeat: int, frames: bool = False) -> dict:
    """``run_backtest`` with every metric; with ``frames``, also the four result tables
    (trades, fills, equity, drawdown as labelled DataFrames), which are built on access."""
    from ita_vc.backtest.run import run_backtest

    def one() -> dict:
        result = run_backtest(df, RULE, PARAMS)
        if frames:
            tables = (result.trades, result.fills, result.equity, result.drawdown)
            assert sum(len(t) for t in tables) > 0
        return result.metrics

    df = synthetic_1m_candles(n)
    run_backtest(df.iloc[:5000], RULE, PARAMS)
    t = median_time(one, repeat)
    m = one()
    return {"seconds": t, "trades": m["Num. Trades"], "total_return": m["Total Return [%]"]}


def case_single_vectorbt(n: int, repeat: int) -> dict:
    import pandas as pd
    import vectorbt as vbt

    df = synthetic_1m_candles(n)
    close = pd.Series(df["close"].to_numpy(), index=pd.to_datetime(df["ts_utc"], unit="ms"))

    def one(data: pd.Series) -> object:
        fast, slow = vbt.MA.run(data, 10), vbt.MA.run(data, 20)
        pf = vbt.Portfolio.from_signals(
            data,
            fast.ma_crossed_above(slow),
            fast.ma_crossed_below(slow),
            direction="both",
            init_cash=10_000,
            freq="1min",
        )
        return pf.stats()

    one(close.iloc[:5000])
    t = median_time(lambda: one(close), repeat)
    stats = one(close)
    return {
        "seconds": t,
        "trades": int(stats["Total Trades"]),
        "total_return": float(stats["Total Return [%]"]),
    }


def case_single_floor(n: int, repeat: int) -> dict:
    """The floor: one plain numba pass over the same close array (SMA(10), SMA(20), cross,
    long-short flip at the close, mark-to-market equity, Total Return and Max DD), no trades
    table, no metrics report, no pandas."""
    import numpy as np
    from numba import njit

    @njit(cache=False)
    def plain(close: np.ndarray, fast: int, slow: int) -> tuple[float, float, int]:
        s_fast = 0.0
        s_slow = 0.0
        pos = 0
        entry = 0.0
        cash = 1.0
        units = 0.0
        peak = 1.0
        mdd = 0.0
        trades = 0
        prev_diff = 0.0
        for i in range(close.shape[0]):
            c = close[i]
            s_fast += c
            s_slow += c
            if i >= fast:
                s_fast -= close[i - fast]
            if i >= slow:
                s_slow -= close[i - slow]
            if i >= slow - 1:
                diff = s_fast / fast - s_slow / slow
                if i >= slow and prev_diff <= 0.0 < diff and pos != 1:
                    if pos != 0:
                        cash += units * (c - entry)
                        trades += 1
                    pos, entry, units = 1, c, cash / c
                elif i >= slow and prev_diff >= 0.0 > diff and pos != -1:
                    if pos != 0:
                        cash += units * (c - entry)
                        trades += 1
                    pos, entry, units = -1, c, -cash / c
                prev_diff = diff
            equity = cash + units * (c - entry) if pos != 0 else cash
            peak = max(peak, equity)
            mdd = min(mdd, equity / peak - 1.0)
        if pos != 0:
            cash += units * (close[-1] - entry)
            trades += 1
        return (cash - 1.0) * 100.0, mdd * 100.0, trades

    close = synthetic_1m_candles(n)["close"].to_numpy(dtype=np.float64)
    plain(close[:5000], 10, 20)
    t = median_time(lambda: plain(close, 10, 20), repeat)
    tr, _, trades = plain(close, 10, 20)
    return {"seconds": t, "trades": int(trades), "total_return": float(tr)}


def case_single_backtesting(n: int, repeat: int) -> dict:
    from backtesting import Backtest

    data, strategy = backtesting_ma_cross(synthetic_1m_candles(n))

    def one() -> object:
        bt = Backtest(
            data,
            strategy,
            cash=1_000_000,
            trade_on_close=True,
            exclusive_orders=True,
            finalize_trades=True,
        )
        return bt.run()

    t = median_time(one, repeat)
    stats = one()
    return {
        "seconds": t,
        "trades": int(stats["# Trades"]),
        "total_return": float(stats["Return [%]"]),
    }


def _grid_request(pairs: list[tuple[int, int]], sl: list, tp: list, top_k: int):
    from ita_vc.catalog import load_catalog
    from ita_vc.grid import parse_grid

    fasts = sorted({f for f, _ in pairs})
    slows = sorted({s for _, s in pairs})
    return parse_grid(
        {
            "indicators": [{"name": "ma_cross", "params": {"fast": fasts, "slow": slows}}],
            "targets": {"sl_pct": sl, "tp_pct": tp},
            "top_k": top_k,
            "top_trades_n": 1,
            "batch_size": 2000,
        },
        load_catalog(),
    )


def _run_grid(n: int, request) -> tuple[float, dict]:
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import load_rule, prepare_candles
    from ita_vc.catalog import load_catalog
    from ita_vc.grid import run_grid

    params = parse_params(PARAMS)
    prepared, _ = prepare_candles(synthetic_1m_candles(n), params)
    rule = load_rule(RULE, load_catalog())
    started = time.perf_counter()
    outcome = run_grid(prepared, rule, params, request)
    return time.perf_counter() - started, outcome.summary


def case_grid100_itavc(n: int, repeat: int) -> dict:
    request = _grid_request(PAIRS, [None], [None], top_k=5)
    t, summary = _run_grid(n, request)
    return {
        "seconds": t,
        "variants": summary["counts"]["stage_a_evaluated"] + summary["counts"]["stage_b_evaluated"],
    }


def case_grid100_vectorbt(n: int, repeat: int) -> dict:
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    df = synthetic_1m_candles(n)
    close = pd.Series(df["close"].to_numpy(), index=pd.to_datetime(df["ts_utc"], unit="ms"))
    started = time.perf_counter()
    fast = vbt.MA.run(close, [f for f, _ in PAIRS], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in PAIRS], short_name="slow")
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, direction="both", init_cash=10_000, freq="1min"
    )
    out = (pf.total_return(), pf.max_drawdown(), pf.sharpe_ratio(), pf.trades.count())
    t = time.perf_counter() - started
    return {"seconds": t, "variants": int(np.size(out[0]))}


def case_staged(n: int, repeat: int, scale: int = 1) -> dict:
    fasts = list(range(2, 2 + 100 // scale))
    pairs = [(f, s) for f in fasts for s in (110, 120, 130, 140, 150, 160, 170, 180, 190, 200)]
    axis = [None, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]
    request = _grid_request(pairs, axis, axis, top_k=300)
    t, summary = _run_grid(n, request)
    variants = summary["counts"]["stage_a_evaluated"] + summary["counts"]["stage_b_evaluated"]
    return {"seconds": t, "variants": variants}


CASES = {
    "single_itavc": case_single_itavc,
    "single_itavc_frames": lambda n, r: case_single_itavc(n, r, frames=True),
    "single_vectorbt": case_single_vectorbt,
    "single_backtesting": case_single_backtesting,
    "single_floor": case_single_floor,
    "grid100_itavc": case_grid100_itavc,
    "grid100_vectorbt": case_grid100_vectorbt,
    "staged": case_staged,
    "staged_tenth": lambda n, r: case_staged(n, r, scale=10),
}


def sub(case: str, n: int, repeat: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--case", case, "--bars", str(n), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(
    title: str,
    header: tuple[str, ...],
    cases: tuple[tuple[str, dict], ...],
    cells: Callable[[dict], tuple[str, ...]],
) -> None:
    """Print one section: a row per case, or the case's error across the row."""
    rows = [
        (name, *cells(r))
        if "error" not in r
        else (name, "error: " + r["error"][:60], *[""] * (len(header) - 2))
        for name, r in cases
    ]
    print_table(title, rows, header)


def _workers(result: dict) -> str:
    mb = result.get("worker_rss_mb", 0.0)
    return f"{mb:,.0f} MB" if mb > 1 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--bars", type=int)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.case:
        warnings.simplefilter("ignore")
        result = CASES[args.case](args.bars, args.repeat)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # worker processes (the grid's pool): the largest one's peak
        result["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    big, small = (200_000, 20_000) if args.quick else (1_000_000, 100_000)
    ours = sub("single_itavc", big, 5)
    _table(
        f"1. ma_cross(10,20) long-short, {big:,} 1m bars, all metrics (median)",
        ("tool", "time", "vs ita-vc", "trades", "peak RSS"),
        (
            ("ita-vc run_backtest", ours),
            ("ita-vc + the 4 result tables", sub("single_itavc_frames", big, 5)),
            ("vectorbt from_signals+stats", sub("single_vectorbt", big, 5)),
            ("backtesting.py", sub("single_backtesting", big, 1)),  # slow: 1 run after warm-up
            ("floor: plain numba pass (TR, DD)", sub("single_floor", big, 5)),
        ),
        lambda r: (
            f"{r['seconds']:.3f} s",
            f"{r['seconds'] / ours['seconds']:.1f}x",
            str(r["trades"]),
            f"{r['peak_rss_mb']:,.0f} MB",
        ),
    )
    g_ours = sub("grid100_itavc", big, 1)
    _table(
        f"2. 100 ma_cross pairs x {big:,} bars: TR, Max DD, Sharpe, trades",
        ("tool", "wall", "vs ita-vc", "peak RSS", "largest worker"),
        (
            ("ita-vc grid (2 processes)", g_ours),
            ("vectorbt (100 columns)", sub("grid100_vectorbt", big, 1)),
        ),
        lambda r: (
            f"{r['seconds']:.2f} s",
            f"{r['seconds'] / g_ours['seconds']:.1f}x",
            f"{r['peak_rss_mb']:,.0f} MB",
            _workers(r),
        ),
    )
    _table(
        f"3. staged grid with SL/TP axes on {small:,} bars",
        ("run", "variants", "wall", "variants/s", "peak RSS", "largest worker"),
        (
            ("staged grid", sub("staged", small, 1)),
            ("same at 1/10 the variants", sub("staged_tenth", small, 1)),
        ),
        lambda r: (
            f"{r['variants']:,}",
            f"{r['seconds']:.1f} s",
            f"{r['variants'] / r['seconds']:,.0f}",
            f"{r['peak_rss_mb']:,.0f} MB",
            _workers(r),
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
