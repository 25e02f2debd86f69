"""Grid guard benchmark (issue 12 item 5): how fast, and in how little memory, `ita-vc grid run`
refuses a request too large to run - counted from the axes, before any list is built or any
candle is read. Goal: under 1 s and 200 MB peak RSS for a 10^12-variant request.

Each case is a fresh ``ita-vc grid run`` process in an ``ita-vc init`` workspace without
candles (a guard that read them first would fail on them instead): the median wall time of
the whole command (interpreter start included) and the peak RSS of one run (its own process).

Run: ``.venv/bin/python benchmarks/bench_grid_guard.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, print_table, run_quiet

CASES = {
    # name: (the rule's indicators, the grid section)
    "the example grid (12 + 48 variants), refused by max_variants: 5": (
        "[{name: ma_cross, params: {fast: 10, slow: 20}}]",
        "indicators: [{name: ma_cross, params: {fast: {min: 5, max: 20, step: 5}, "
        "slow: [30, 50, 80]}}]\ntargets: {sl_pct: [null, 2.0], tp_pct: [null, 4.0]}\n"
        "max_variants: 5\n",
    ),
    "ma_cross fast 1..2000 x slow 2..4000 (6.0e6)": (
        "[{name: ma_cross, params: {fast: 10, slow: 20}}]",
        "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 2000}, "
        "slow: {min: 2, max: 4000}}}]\n",
    ),
    "ma_cross fast 1..5000 x slow 2..10000 (3.8e7)": (
        "[{name: ma_cross, params: {fast: 10, slow: 20}}]",
        "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 5000}, "
        "slow: {min: 2, max: 10000}}}]\n",
    ),
    "atr k 0.1..20 step 1e-7 (one axis, 2.0e8 values)": (
        "[{name: atr, params: {window: 14, k: 1.0}}]",
        "indicators: [{name: atr, params: {k: {min: 0.1, max: 20, step: 1.0e-7}}}]\n",
    ),
    "ma_cross x sma x ema (9.4e11 = ~10^12)": (
        "[{name: ma_cross, params: {fast: 10, slow: 20}}, {name: sma}, {name: ema}]",
        "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 5000}, slow: {min: 2, "
        "max: 10000}}}, {name: sma, params: {window: {min: 2, max: 5000}}}, {name: ema, "
        "params: {window: {min: 2, max: 6}}}]\n",
    ),
}

_MEASURED = (
    "import json, resource, sys\n"
    "from ita_vc.cli import main\n"
    "try:\n"
    "    code = main(['grid', 'run'])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(json.dumps({'code': code, "
    "'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.__stdout__)\n"
)


def make_workspace(root: Path, indicators: str, grid: str) -> None:
    run_quiet("git", "init", "-q", str(root))
    run_quiet(str(BIN / "ita-vc"), "init", str(root))
    seed = root.parent / f"{root.name}-seed.yaml"
    seed.write_text(f"setup_id: big\nversion: '1.0'\nindicators: {indicators}\n")
    run_quiet(str(BIN / "ita-vc"), "rule", "new", "big", "--from", str(seed), cwd=root)
    params = root / "params.yaml"
    text = params.read_text().replace("setup_id: example_ma_cross", "setup_id: big")
    params.write_text(
        text[: text.index("grid:")]
        + "grid:\n"
        + "".join(f"  {line}\n" for line in grid.splitlines())
    )


def measure(root: Path, repeat: int) -> tuple[float, float, str]:
    """(median wall s of `ita-vc grid run`, peak RSS MB of one run, its first error line)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(
            [str(BIN / "ita-vc"), "grid", "run"],
            cwd=root,
            env=ENV,
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if proc.returncode != 11:
            raise SystemExit(
                f"expected a refusal (exit 11), got {proc.returncode}: {proc.stderr[-500:]}"
            )
    one = subprocess.run(
        [str(BIN / "python"), "-c", _MEASURED],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(one.stdout.strip().splitlines()[-1])
    message = one.stderr.strip().splitlines()[0] if one.stderr.strip() else ""
    return statistics.median(times), result["rss_mb"], message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-guard-"))
    rows, messages = [], []
    try:
        for i, (name, (indicators, grid)) in enumerate(CASES.items()):
            root = base / f"ws{i}"
            make_workspace(root, indicators, grid)
            wall, rss, message = measure(root, repeat)
            ok = "yes" if wall < 1.0 and rss < 200 else "NO"
            rows.append((name, f"{wall:.2f} s", f"{rss:,.0f} MB", ok))
            messages.append(f"  {name}:\n    {message}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_table(
        f"`ita-vc grid run` refusing before any work (median of {repeat} processes; "
        "goal < 1 s and < 200 MB)",
        rows,
        ("request", "wall", "peak RSS", "goal met"),
    )
    print("\nmessages:\n" + "\n".join(messages))
    return 0 if all(r[-1] == "yes" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
