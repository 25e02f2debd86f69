"""Candle benchmarks: import throughput of a 1,000,000-row Binance dump, and rollup time.

* import: ``CandleStore.import_files`` of a headerless Binance kline CSV (parse, validate,
  merge, gap flags, content hash, atomic parquet write; no ``dvc add``), next to a plain
  ``pandas.read_csv`` of the same file as the floor;
* rollup: ``rollup_candles`` of 1,000,000 1m bars to 5m / 1h / 1d, next to
  ``DataFrame.resample(...).agg(...)`` (which also emits partial buckets);
* zip limits (issue 12 #9): the expansion ratio of the dump zipped as data.binance.vision ships
  it, and ``ita-vc data import`` of a zip whose member expands ~300x (1 MB -> 300 MB), refused
  from the archive's directory: wall time and peak memory of the refusing process.

Run: ``.venv/bin/python benchmarks/bench_candles.py [--quick]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, median_time, print_table, run_quiet

BOMB_LINE = b"1600000020000,30000.0,30001.5,29998.5,30000.0,1.0,1600000079999,0,0,0,0,0\n"


def synthetic(n: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 2)
    open_ = np.r_[30_000.0, close[:-1]]
    return pd.DataFrame(
        {
            "ts_utc": 1_600_000_020_000 // 60_000 * 60_000 + np.arange(n, dtype="int64") * 60_000,
            "open": open_,
            "high": np.maximum(open_, close) + 1.5,
            "low": np.minimum(open_, close) - 1.5,
            "close": close,
            "volume": np.round(rng.random(n) * 50, 4),
        }
    )


def write_binance(df, path: Path) -> None:
    out = df.copy()
    out["close_time"] = out["ts_utc"] + 59_999
    for col in ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore"):
        out[col] = 0
    out.to_csv(path, header=False, index=False)


def write_bomb(path: Path, member_bytes: int) -> None:
    """A zip whose single member is ``member_bytes`` of one repeated kline (~300x)."""
    chunk = BOMB_LINE * 2048
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("BOMB-1m.csv", "w", force_zip64=True) as member,
    ):
        for _ in range(member_bytes // len(chunk)):
            member.write(chunk)


def refuse_bomb(root: Path, bomb: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB) and exit code of ``ita-vc data import`` of the bomb."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(BIN / "ita-vc"),
            "data",
            "import",
            str(bomb),
            "--market",
            "generic",
            "--symbol",
            "BOMB",
            "--no-track",
        ],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, proc.returncode, proc.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200_000 if args.quick else 1_000_000
    repeat = 3 if args.quick else 5
    import pandas as pd

    from ita_vc.candles import CandleStore, rollup_candles
    from ita_vc.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-candles-"))
    try:
        root = base / "ws"
        run_quiet(str(BIN / "ita-vc"), "init", str(root))
        bomb = base / "BOMB-1m.zip"
        write_bomb(bomb, 300 * 1024**2)
        info = zipfile.ZipFile(bomb).infolist()[0]
        t_bomb, rss_bomb, code, message = refuse_bomb(root, bomb)
        df = synthetic(n)
        dump = base / "BTCUSDT-1m.csv"
        write_binance(df, dump)
        size_mb = dump.stat().st_size / 1e6
        store = CandleStore(Workspace.at(root))
        target = root / "data" / "candles" / "binance-spot" / "BTCUSDT" / "1m.parquet"

        def do_import() -> None:
            target.unlink(missing_ok=True)
            store.import_files([dump], market="binance-spot", symbol="BTCUSDT", track=False)

        t_import = median_time(do_import, repeat)
        t_read = median_time(lambda: pd.read_csv(dump, header=None), repeat)
        zipped = base / "BTCUSDT-1m.zip"
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(dump, "BTCUSDT-1m.csv")
        packed = zipfile.ZipFile(zipped).infolist()[0]

        def do_import_zip() -> None:
            target.unlink(missing_ok=True)
            store.import_files([zipped], market="binance-spot", symbol="BTCUSDT", track=False)

        t_zip = median_time(do_import_zip, repeat)
        print_table(
            f"Import of a {n:,}-row Binance dump ({size_mb:.0f} MB CSV)",
            [
                (
                    "ita-vc data import (no dvc add)",
                    f"{t_import:.2f} s",
                    f"{n / t_import:,.0f}",
                    f"{t_import / t_read:.1f}x read_csv",
                ),
                (
                    "the same dump as a .zip (limits checked)",
                    f"{t_zip:.2f} s",
                    f"{n / t_zip:,.0f}",
                    f"{t_zip / t_read:.1f}x read_csv",
                ),
                ("pandas.read_csv only (floor)", f"{t_read:.2f} s", f"{n / t_read:,.0f}", "1.0x"),
            ],
            ("what", "median", "rows/s", "ratio"),
        )
        print_table(
            "Zip limits (100x expansion over 1 MiB, 4 GiB uncompressed)",
            [
                (
                    "the dump zipped (deflate)",
                    f"{packed.compress_size / 1e6:.1f} MB",
                    f"{packed.file_size / 1e6:.0f} MB",
                    f"{packed.file_size / packed.compress_size:.1f}x",
                    "imported",
                ),
                (
                    "zip bomb (issue 12 #9)",
                    f"{info.compress_size / 1e6:.1f} MB",
                    f"{info.file_size / 1e6:.0f} MB",
                    f"{info.file_size / info.compress_size:.0f}x",
                    f"exit {code} in {t_bomb:.2f} s, peak RSS {rss_bomb:.0f} MB",
                ),
            ],
            ("zip", "compressed", "member", "expansion", "ita-vc data import"),
        )
        print(f"  refusal: {message}")
        rows = []
        idx = pd.to_datetime(df["ts_utc"], unit="ms", utc=True)
        frame = df.set_index(idx)
        agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        for tf, rule in (("5m", "5min"), ("1h", "1h"), ("1d", "1D")):
            ours = median_time(lambda tf=tf: rollup_candles(df, tf), repeat)
            theirs = median_time(lambda rule=rule: frame.resample(rule).agg(agg), repeat)
            rows.append(
                (
                    f"1m -> {tf}",
                    f"{ours * 1000:.0f} ms",
                    f"{theirs * 1000:.0f} ms",
                    f"{theirs / ours:.1f}x",
                )
            )
        print_table(
            f"Rollup of {n:,} 1m bars (median)",
            rows,
            ("rollup", "ita-vc", "pandas resample", "speed-up"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
