"""The demo (``make demo``): the example pipeline end to end on this repository's defaults.

As a new user would, with the real tools: restore the sample candles from the DVC remote
committed in ``samples/`` (offline), check the example rules, run the backtest pipeline with
``dvc repro`` (prepare -> backtest -> report -> grid -> validate, as params.yaml says), and
show the metrics, the grid's best variants and the validation verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ita_vc.backtest.format import format_metric

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# the stages run `python -m ita_vc.pipeline ...`: the project's environment comes first
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def sh(*args: str) -> None:
    print(f"\n$ {' '.join([Path(args[0]).name, *args[1:]])}", flush=True)
    subprocess.run(args, cwd=ROOT, check=True, env=ENV)


def main() -> int:
    sh(str(BIN / "dvc"), "pull", "-r", "sample", "data.dvc")
    sh(str(BIN / "ita-vc"), "data", "status")
    sh(str(BIN / "ita-vc"), "rule", "check", "--all")
    sh(str(BIN / "ita-vc"), "rule", "list")
    sh(str(BIN / "dvc"), "repro")
    sh(str(BIN / "dvc"), "status")
    summary = json.loads((ROOT / "results/backtest/summary.json").read_text())
    metrics = json.loads((ROOT / "results/metrics.json").read_text())
    print(
        f"\n{summary['setup_id']} {summary['rule_version']} on {summary['market']} "
        f"{summary['symbol']} {summary['timeframe']} "
        f"({summary['range']['first_bar']} .. {summary['range']['last_bar']}):"
    )
    for key in (
        "Total Return [%]",
        "Benchmark Return [%]",
        "Max. Drawdown [%]",
        "Num. Trades",
        "Win Rate [%]",
        "Sharpe Ratio",
    ):
        print(f"  {key:<22} {format_metric(key, metrics[key])}")
    import pandas as pd

    grid = json.loads((ROOT / "results/grid/summary.json").read_text())
    topk = pd.read_parquet(ROOT / "results/grid/topk.parquet")
    counts = grid["counts"]
    print(
        f"\ngrid: {counts['stage_a_variants']} base variants, "
        f"{counts['stage_b_evaluated']} with SL/TP; best 3 of {len(topk)}:"
    )
    for _, row in topk.head(3).iterrows():
        total = format_metric("Total Return [%]", row["Total Return [%]"])
        print(f"  {row['rank']}. {row['variant_key']:<40} {total} %")
    print("  (results/grid/report.md; `ita-vc grid promote KEY` saves one as a rule version)")
    from ita_vc.validation.verdict import verdict_lines

    validation = json.loads((ROOT / "results/validation/validation_summary.json").read_text())
    print("\nvalidation (results/validation/report.md; docs/validation.md):")
    for line in verdict_lines(validation):
        print(f"  {line}")
    print(
        f"\nreport: {ROOT / 'results/report/report.md'} (charts beside it); "
        "`dvc metrics show`, `dvc plots show` work too"
    )
    print("demo OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
