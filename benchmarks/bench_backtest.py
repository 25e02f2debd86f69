"""Single-backtest speed: one ma_cross(10, 20) long-short backtest on 1,000,000 synthetic 1m
bars with all metrics, in-process, next to vectorbt on the same data in the same run.

* ita-vc: ``run_backtest`` (indicators, signals, engine, every metric of
  docs/backtest-model.md); and the same plus everything the pipeline writes, built on access:
  the trades/fills/equity/drawdown tables and the summary with the candles' data hash;
* vectorbt: ``MA.run`` x2 + ``ma_crossed_above/below`` + ``Portfolio.from_signals(direction=
  "both")`` + ``.stats()`` (its own metric set);
* the floor: the compiled engine pass alone over precomputed states (``run_engine``), and the
  indicator + signal step alone.

Both libraries are warmed up (numba compilation) before timing; each number is a median.
Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_backtest.py [--quick]``
(vectorbt comes from the ``bench`` dependency group).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    MA_CROSS_RULE,
    NO_COST_PARAMS,
    median_time,
    print_table,
    synthetic_1m_candles,
)

RULE, PARAMS = MA_CROSS_RULE, NO_COST_PARAMS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bars", type=int, default=None)
    args = parser.parse_args()
    n = args.bars or (200_000 if args.quick else 1_000_000)
    repeat = 3 if args.quick else 5
    import pandas as pd

    from ita_vc.backtest.engine import run_engine
    from ita_vc.backtest.run import run_backtest
    from ita_vc.backtest.signals import rule_states

    df = synthetic_1m_candles(n)
    run_backtest(df.iloc[:5000], RULE, PARAMS)  # compile / load the numba cache
    ours = median_time(lambda: run_backtest(df, RULE, PARAMS), repeat)

    def everything() -> object:
        full = run_backtest(df, RULE, PARAMS)
        return full.trades, full.fills, full.equity, full.drawdown, full.summary

    t_all = median_time(everything, repeat)
    result = run_backtest(df, RULE, PARAMS)
    close = df["close"].to_numpy()
    indicators = [("ma_cross", {"fast": 10, "slow": 20})]
    states, _ = rule_states(indicators, close, close, close)
    t_signals = median_time(lambda: rule_states(indicators, close, close, close), repeat)
    t_engine = median_time(lambda: run_engine(close, states, fee_rate=0.0, slip=0.0), repeat)
    rows = [
        (
            "ita-vc run_backtest + all metrics",
            f"{ours:.3f} s",
            "1.0x",
            str(result.metrics["Num. Trades"]),
            f"{result.metrics['Total Return [%]']:.4f}",
        ),
        ("  + 4 tables + summary (data hash)", f"{t_all:.3f} s", f"{t_all / ours:.1f}x", "", ""),
        ("  floor: indicators + signals", f"{t_signals:.3f} s", "", "", ""),
        ("  floor: compiled engine pass", f"{t_engine:.3f} s", "", "", ""),
    ]
    try:
        import vectorbt as vbt
    except ImportError:
        vbt = None
        rows.append(("vectorbt", "not installed (pip install --group bench)", "", "", ""))
    if vbt is not None:
        series = pd.Series(close, index=pd.to_datetime(df["ts_utc"], unit="ms"))

        def with_vectorbt(data: pd.Series) -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fast = vbt.MA.run(data, 10)
                slow = vbt.MA.run(data, 20)
                pf = vbt.Portfolio.from_signals(
                    data,
                    fast.ma_crossed_above(slow),
                    fast.ma_crossed_below(slow),
                    direction="both",
                    fees=0.0,
                    slippage=0.0,
                    init_cash=10_000,
                    freq="1min",
                )
                return pf.stats()

        with_vectorbt(series.iloc[:5000])  # compile
        theirs = median_time(lambda: with_vectorbt(series), repeat)
        stats = with_vectorbt(series)
        rows.append(
            (
                "vectorbt from_signals + stats()",
                f"{theirs:.3f} s",
                f"{theirs / ours:.1f}x slower ({theirs / t_all:.1f}x vs all)"
                if theirs > ours
                else f"{ours / theirs:.1f}x faster",
                str(stats["Total Trades"]),
                f"{stats['Total Return [%]']:.4f}",
            )
        )
    print_table(
        f"ma_cross(10, 20) long-short on {n:,} 1m bars, in-process (median of {repeat})",
        rows,
        ("what", "median", "vs ita-vc", "trades", "total return %"),
    )
    print(
        f"\nita-vc: {n / ours / 1e6:.1f} M bars/s end to end; engine floor "
        f"{n / t_engine / 1e6:.0f} M bars/s ({ours / t_engine:.1f}x the engine pass alone)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
