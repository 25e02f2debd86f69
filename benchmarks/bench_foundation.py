"""Foundation benchmarks (issue: foundation). Prints medians and ratios measured in one run.

1. ``ita-vc --help`` wall time vs ``dvc --help`` (fresh processes).
2. Persistent Store write throughput for a ~100 MB DataFrame vs plain ``df.to_parquet``
   (same zstd compression; the store adds the atomic temp+fsync+rename, sha256, index row).
3. ``index rebuild`` time for 10,000 artifacts (files written directly, then indexed).

Run: ``.venv/bin/python benchmarks/bench_foundation.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, median_time, print_table, run_quiet


def bench_help(repeat: int) -> list[tuple[str, ...]]:
    ours = median_time(lambda: run_quiet(str(BIN / "ita-vc"), "--help"), repeat, warmup=2)
    dvc = median_time(lambda: run_quiet(str(BIN / "dvc"), "--help"), repeat, warmup=2)
    return [
        ("ita-vc --help", f"{ours * 1000:.0f} ms", f"{ours / dvc:.2f}x dvc"),
        ("dvc --help", f"{dvc * 1000:.0f} ms", "1.00x"),
    ]


def bench_store(root: Path, repeat: int, megabytes: int) -> list[tuple[str, ...]]:
    import numpy as np
    import pandas as pd

    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    rows = megabytes * (1 << 20) // (8 * 8)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((rows, 8)), columns=[f"c{i}" for i in range(8)])
    size_mb = df.memory_usage(index=False).sum() / (1 << 20)
    store = PersistentStore(Workspace.at(root))
    plain_path = root / "plain.parquet"
    store_t = median_time(lambda: store.save_dataframe(df, "results", "big"), repeat)
    plain_t = median_time(
        lambda: df.to_parquet(plain_path, compression="zstd", index=False), repeat
    )
    return [
        (
            "store.save_dataframe",
            f"{size_mb:.0f} MB",
            f"{store_t:.2f} s",
            f"{size_mb / store_t:.0f} MB/s",
            f"{plain_t / store_t:.2f}x plain",
        ),
        (
            "df.to_parquet (zstd)",
            f"{size_mb:.0f} MB",
            f"{plain_t:.2f} s",
            f"{size_mb / plain_t:.0f} MB/s",
            "1.00x",
        ),
    ]


def bench_rebuild(root: Path, count: int, repeat: int) -> list[tuple[str, ...]]:
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    folder = root / "results" / "many"
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"m{i:05d}.json").write_text(json.dumps({"i": i, "run_id": f"r{i}"}))
    store = PersistentStore(Workspace.at(root))
    elapsed = median_time(store.rebuild_index, repeat)
    assert len(store.list()) >= count
    return [
        (
            "index rebuild",
            f"{count:,} artifacts",
            f"{elapsed:.2f} s",
            f"{count / elapsed:,.0f} artifacts/s",
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-"))
    try:
        root = base / "ws"
        run_quiet(str(BIN / "ita-vc"), "init", str(root))
        print_table(
            "1. CLI start-up (median of fresh processes)",
            bench_help(repeat * 3),
            ("command", "median", "ratio"),
        )
        print_table(
            "2. Persistent Store write throughput",
            bench_store(root, repeat, 16 if args.quick else 100),
            ("writer", "frame", "median", "throughput", "ratio"),
        )
        print_table(
            "3. Metadata index rebuild",
            bench_rebuild(root, 1_000 if args.quick else 10_000, 3),
            ("operation", "size", "median", "rate"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
