"""Report benchmarks (issue #14: charts readable at 1M bars). One run; medians of
``--repeat``; ratios against a peer.

1. The run report of N 1m bars (default 1,000,000; ``--quick`` 100,000) with a ma_cross(10, 20)
   long-short: ita-vc's ``write_report`` (report.md, price.png, equity.png, drawdown.png and
   the interactive report.html) against backtesting.py's ``Backtest.plot`` (its interactive
   Bokeh HTML, which resamples above 10,000 bars and merges the trades of each resampled bar
   into one marker; ita-vc draws every trade's entry and exit marker) on the same
   bars and the same strategy; the HTML sizes (backtesting.py's file loads BokehJS from a CDN;
   ita-vc's inlines it, about 1.3 MB, so it opens offline); the points ita-vc draws per line.
2. ita-vc's report against its 0.3 report (engine 1.0's writer: report.md, equity.png,
   drawdown.png, every bar drawn): what the readable report costs over the old one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    MA_CROSS_RULE,
    NO_COST_PARAMS,
    backtesting_ma_cross,
    median_time,
    print_table,
    synthetic_1m_candles,
)


def _backtesting_plot(candles: object, out: Path, repeat: int) -> tuple[float, int, int]:
    """backtesting.py's plot of the same strategy: (median seconds, html bytes, trades)."""
    from backtesting import Backtest

    data, strategy = backtesting_ma_cross(candles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, strategy, cash=1_000_000, trade_on_close=True, exclusive_orders=True)
        stats = bt.run()
        target = out / "backtesting_plot.html"
        seconds = median_time(
            lambda: bt.plot(filename=str(target), open_browser=False), repeat, warmup=0
        )
    return seconds, target.stat().st_size, len(stats._trades)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bars", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.bars or (100_000 if args.quick else 1_000_000)

    from ita_vc.backtest.run import run_backtest
    from ita_vc.charts import decimate
    from ita_vc.pipeline.outputs import DirSink, write_report, write_report_v1

    candles = synthetic_1m_candles(n)
    result = run_backtest(candles, MA_CROSS_RULE, NO_COST_PARAMS)
    trades, equity, drawdown = result.trades, result.equity, result.drawdown
    summary, metrics = result.summary, result.metrics

    with tempfile.TemporaryDirectory() as tmp:
        new_dir, old_dir = Path(tmp, "new"), Path(tmp, "old")
        new, old = DirSink(new_dir), DirSink(old_dir)
        ours = median_time(
            lambda: write_report(
                summary, metrics, equity, drawdown, new, trades=trades, candles=candles
            ),
            args.repeat,
        )
        v1 = median_time(
            lambda: write_report_v1(summary, metrics, equity, drawdown, old), args.repeat
        )
        html = (new_dir / "report.html").stat().st_size
        sizes = {p.name: p.stat().st_size for p in sorted(new_dir.iterdir())}
        peer, peer_html, peer_trades = _backtesting_plot(candles, Path(tmp), args.repeat)

    drawn = len(decimate.decimate_index(result.equity_values))
    print_table(
        f"1. the run report of {n:,} bars ({len(trades):,} trades; backtesting.py "
        f"{peer_trades:,}), median of {args.repeat}",
        [
            (
                "ita-vc write_report: md + 3 PNG + HTML",
                f"{ours:.2f} s",
                f"{html / 2**20:.1f} MiB",
                f"{ours / peer:.2f}x",
            ),
            (
                "backtesting.py Backtest.plot: HTML",
                f"{peer:.2f} s",
                f"{peer_html / 2**20:.1f} MiB",
                "1.00x",
            ),
        ],
        ("report", "median", "html size", "time vs backtesting.py"),
    )
    print(f"  ita-vc draws {drawn:,} points per line of {n:,} bars and every trade marker")
    print("  files: " + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items()))
    print_table(
        "2. the readable report against 0.3's (engine 1.0's writer)",
        [
            ("0.3: report.md, equity.png, drawdown.png", f"{v1:.2f} s", "1.00x"),
            ("0.4: + price.png, buy-and-hold, report.html", f"{ours:.2f} s", f"{ours / v1:.2f}x"),
        ],
        ("report", "median", "vs 0.3"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
