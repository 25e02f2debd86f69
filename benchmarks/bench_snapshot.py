"""Provenance benchmarks.

1. Snapshot creation time (building the sealed snapshot from dvc.lock, git, summary, metrics
   and the environment) with ~1 GB of tracked candles in ``data/``, next to the same with only
   the run's own candles: it reads no data, so it must not grow with data size.
2. ``snapshot verify --deep`` throughput (MB/s of DVC objects re-hashed, including the data
   hash recomputation) next to ``sha256sum`` and ``md5sum`` over the same object files.

Run: ``.venv/bin/python benchmarks/bench_snapshot.py [--quick]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, median_time, print_table, run_quiet

T0 = 1_420_070_400_000  # 2015-01-01


def candles(rows: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = np.round(200 * np.exp(np.cumsum(rng.normal(0, 4e-4, rows))), 2)
    open_ = np.r_[200.0, close[:-1]]
    return pd.DataFrame(
        {
            "ts_utc": T0 + np.arange(rows, dtype=np.int64) * 60_000,
            "open": open_,
            "high": np.maximum(open_, close) + 0.05,
            "low": np.minimum(open_, close) - 0.05,
            "close": close,
            "volume": np.round(rng.random(rows) * 10, 3),
        }
    )


def main() -> int:  # noqa: PLR0915 - one benchmark, step by step
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    run_rows = 1_000_000 if args.quick else 4_000_000
    big_gb = 0.2 if args.quick else 1.0
    repeat = 5
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ita_vc.candles import CandleStore
    from ita_vc.rules import RuleRegistry
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.snapshot.verify import verify_run
    from ita_vc.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-snapshot-"))
    try:
        root = base / "ws"
        run_quiet(str(BIN / "ita-vc"), "init", str(root))
        run_quiet("git", "add", "-A", cwd=root)
        run_quiet("git", "commit", "-q", "-m", "init", cwd=root)
        workspace = Workspace.at(root)
        export = base / "btc.parquet"
        candles(run_rows, 1).to_parquet(export)
        CandleStore(workspace).import_files([export], market="binance-spot", symbol="BTCUSDT")
        RuleRegistry(workspace).new("example_ma_cross", author="bench")
        params = (root / "params.yaml").read_text()
        params = params.replace(
            '  start: "2025-01-10"     # [start, end) UTC; remove both for the whole data\n', ""
        ).replace('  end: "2025-03-01"\n', "")
        (root / "params.yaml").write_text(params)
        run_quiet("git", "add", "-A", cwd=root)
        run_quiet("git", "commit", "-q", "-m", "data", cwd=root)
        started = time.perf_counter()
        report = run_pipeline(workspace)
        t_run = time.perf_counter() - started
        provenance = SnapshotStore(workspace)
        data_mb = sum(p.stat().st_size for p in (root / "data").rglob("*") if p.is_file()) / 1e6
        small = median_time(lambda: provenance.build("bt_2000_01_01_999_abc"), repeat * 2)
        # ~1 GB more candles in data/, tracked and committed
        rows = int(big_gb * 1e9 / 48)
        big = candles(rows, 2)
        target = root / "data/candles/generic/BIG/1m.parquet"
        target.parent.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(big, preserve_index=False),
            target,
            compression="none",
            use_dictionary=False,
        )
        del big
        run_quiet(str(BIN / "dvc"), "add", "data", cwd=root)
        run_quiet("git", "add", "-A", cwd=root)
        run_quiet("git", "commit", "-q", "-m", "big data", cwd=root)
        run_quiet("sync")  # let the 1 GB of dirty pages reach the disk before timing
        big_mb = sum(p.stat().st_size for p in (root / "data").rglob("*") if p.is_file()) / 1e6
        large = median_time(lambda: provenance.build("bt_2000_01_01_999_abc"), repeat * 2)
        print_table(
            "1. Snapshot creation (build + seal, median of 10)",
            [
                (f"{data_mb:,.0f} MB tracked in data/", f"{small * 1000:.0f} ms", "1.00x"),
                (
                    f"{big_mb:,.0f} MB tracked in data/",
                    f"{large * 1000:.0f} ms",
                    f"{large / small:.2f}x",
                ),
            ],
            ("workspace", "median", "ratio"),
        )
        print(f"(for scale: the whole `ita-vc run` of {run_rows:,} 1m bars took {t_run:.1f} s)")
        t_deep = median_time(lambda: verify_run(workspace, report.run_id, deep=True), 3, warmup=1)
        deep = verify_run(workspace, report.run_id, deep=True)
        assert deep.ok, deep.failures()
        mb = deep.bytes_hashed / 1e6
        run_objects = deep.hashed_paths  # exactly the files verify --deep re-hashed
        sizes = sum(p.stat().st_size for p in run_objects) / 1e6

        def tool(name: str) -> None:
            subprocess.run(
                [name, *map(str, run_objects)], env=ENV, check=True, stdout=subprocess.DEVNULL
            )

        t_sha = median_time(lambda: tool("sha256sum"), 3)
        t_md5 = median_time(lambda: tool("md5sum"), 3)
        print_table(
            "2. verify --deep throughput (median of 3)",
            [
                (
                    "ita-vc snapshot verify --deep",
                    f"{mb:,.0f} MB",
                    f"{t_deep:.2f} s",
                    f"{mb / t_deep:,.0f} MB/s",
                    "incl. the data-hash recomputation",
                ),
                (
                    "sha256sum (the same object files)",
                    f"{sizes:,.0f} MB",
                    f"{t_sha:.2f} s",
                    f"{sizes / t_sha:,.0f} MB/s",
                    "",
                ),
                (
                    "md5sum (the same object files)",
                    f"{sizes:,.0f} MB",
                    f"{t_md5:.2f} s",
                    f"{sizes / t_md5:,.0f} MB/s",
                    "DVC's object hash",
                ),
            ],
            ("what", "data", "median", "throughput", "note"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
