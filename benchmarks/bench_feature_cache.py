"""Feature cache benchmark: a 2,000-variant grid over 1,000,000 bars, cache disabled vs cold
vs warm (docs/cache.md).

The grid: ma_cross (10 fast x 10 slow windows) and rsi (2 windows), 4 SL x 5 TP values. Each
measurement runs ``run_grid`` in a fresh subprocess (one worker: the indicator states of the
process are computed once, as in every grid process) after a small warm-up grid (the numba
compilation cache loaded); a cold run starts from an empty cache folder, the warm run reuses the
folder the cold run of the same round filled. Reported: the median of ``--repeat`` rounds, the
ratios warm/cold and cold/disabled, and the share of the disabled run spent computing
indicator states (what a warm cache can save at most).

Run: ``.venv/bin/python benchmarks/bench_feature_cache.py [--quick] [--repeat N]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import NO_COST_PARAMS, print_table, synthetic_1m_candles

RULE = {
    "setup_id": "bench",
    "version": "1.0",
    "direction": "long-short",
    "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 60}}],
}
FASTS = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
SLOWS = [60, 70, 80, 90, 100, 120, 140, 160, 180, 200]


def _request(quick: bool):
    from ita_vc.catalog import load_catalog
    from ita_vc.grid import parse_grid

    fasts, slows = (FASTS[:5], SLOWS[:4]) if quick else (FASTS, SLOWS)
    return parse_grid(
        {
            "indicators": [
                {"name": "ma_cross", "params": {"fast": fasts, "slow": slows}},
            ],
            "targets": {"sl_pct": [None, 1.0, 2.0, 3.0], "tp_pct": [None, 2.0, 4.0, 6.0, 8.0]},
            "top_k": 10,
            "top_trades_n": 1,
            "batch_size": 500,
        },
        load_catalog(),
    )


def case(mode: str, n: int, cache: str, quick: bool) -> dict:
    """One grid run in this process: ``mode`` is disabled, cold or warm."""
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import load_rule, prepare_candles
    from ita_vc.catalog import load_catalog
    from ita_vc.features import FeatureCacheSettings, activate
    from ita_vc.grid import evaluate as evaluate_module
    from ita_vc.grid import run_grid

    params = parse_params(NO_COST_PARAMS)
    rule = load_rule(RULE, load_catalog())
    request = _request(quick)
    small, _ = prepare_candles(synthetic_1m_candles(5_000), params)
    run_grid(small, rule, params, request, workers=1)  # compilation caches loaded
    evaluate_module._EVALUATORS.clear()
    prepared, _ = prepare_candles(synthetic_1m_candles(n), params)
    spent = [0.0]
    real = evaluate_module.indicator_state

    def timed(*args, **kwargs):  # the time spent computing states
        started = time.perf_counter()
        out = real(*args, **kwargs)
        spent[0] += time.perf_counter() - started
        return out

    evaluate_module.indicator_state = timed  # type: ignore[assignment]
    settings = (
        None
        if mode == "disabled"
        else FeatureCacheSettings(Path(cache), Path(cache) / "index.sqlite", 1 << 34)
    )
    started = time.perf_counter()
    with activate(settings):
        outcome = run_grid(prepared, rule, params, request, workers=1)
    seconds = time.perf_counter() - started
    counts = outcome.summary["counts"]
    variants = counts["stage_a_evaluated"] + counts["stage_b_evaluated"]
    entries = len(list(Path(cache).glob("features/*/*.parquet"))) if settings else 0
    return {"seconds": seconds, "indicator_s": spent[0], "variants": variants, "entries": entries}


def sub(mode: str, n: int, cache: str, quick: bool) -> dict:
    args = [sys.executable, __file__, "--case", mode, "--bars", str(n), "--cache", cache]
    proc = subprocess.run(
        [*args, *(["--quick"] if quick else [])], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: {proc.stderr.strip()[-2000:]}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 bars, a smaller grid")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case")
    parser.add_argument("--bars", type=int)
    parser.add_argument("--cache", default="")
    args = parser.parse_args()
    n = args.bars or (100_000 if args.quick else 1_000_000)
    if args.case:
        print(json.dumps(case(args.case, n, args.cache, args.quick)))
        return 0
    results: dict[str, list[dict]] = {"disabled": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            folder = str(Path(tmp) / f"round{i}")
            results["disabled"].append(sub("disabled", n, folder + "-off", args.quick))
            results["cold"].append(sub("cold", n, folder, args.quick))
            results["warm"].append(sub("warm", n, folder, args.quick))
    med = {
        m: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "indicator_s")}
        for m, rs in results.items()
    }
    rows = [
        (
            m,
            f"{med[m]['seconds']:.2f} s",
            f"{med[m]['indicator_s']:.2f} s",
            f"{rs[-1]['variants']:,}",
            str(rs[-1]["entries"]),
        )
        for m, rs in results.items()
    ]
    print_table(
        f"feature cache: grid over {n:,} bars, median of {args.repeat} (fresh process each)",
        rows,
        ("mode", "grid time", "indicators computed", "variants", "cache entries"),
    )
    cold, warm, off = med["cold"]["seconds"], med["warm"]["seconds"], med["disabled"]["seconds"]
    print(f"\nwarm/cold: {warm / cold:.3f}")
    print(f"cold/disabled: {cold / off:.3f} (goal <= 1.10)")
    print(f"indicator share of the disabled run: {med['disabled']['indicator_s'] / off:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
