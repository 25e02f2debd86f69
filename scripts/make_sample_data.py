"""(Re)create the repository's sample candles and their committed DVC remote (run once).

1. Generates 60 days of 1m candles for binance-spot BTCUSDT and bybit-futures ETHUSDT
   (:mod:`ita_vc.candles.sample`, seeded, so the bytes are reproducible).
2. Writes them in the exchanges' own export formats - a headerless Binance kline dump with
   microsecond open times, a newest-first Bybit export with a header - and imports them with
   the real ``ita-vc data import`` (which ``dvc add``s ``data/``), checking that the imported
   table's content hash equals the generated one.
3. Pushes the objects to the ``sample`` remote, a folder committed in the repository
   (``samples/dvc-remote``, URL relative to ``.dvc/``) and *not* the default remote, so that
   ``dvc pull -r sample data.dvc`` restores the data offline on a fresh clone.

Run from the repository root: ``.venv/bin/python scripts/make_sample_data.py``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REMOTE = "samples/dvc-remote"


def sh(*args: str) -> str:
    print("$", " ".join(args), flush=True)
    return subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def write_binance(df, path: Path) -> None:
    out = df[["ts_utc", "open", "high", "low", "close", "volume"]].copy()
    out["ts_utc"] = out["ts_utc"] * 1000  # newer spot dumps: microseconds
    out["close_time"] = out["ts_utc"] + 59_999_999
    out["quote_volume"] = (df["volume"] * df["close"]).round(4)
    out["trades"] = (df["volume"] * 40).round().astype("int64")
    out["taker_buy_base"] = (df["volume"] / 2).round(3)
    out["taker_buy_quote"] = (out["quote_volume"] / 2).round(4)
    out["ignore"] = 0
    out.to_csv(path, header=False, index=False)


def write_bybit(df, path: Path) -> None:
    out = df[["ts_utc", "open", "high", "low", "close", "volume"]].iloc[::-1]  # newest first
    out = out.assign(turnover=(df["volume"] * df["close"]).round(4))
    out.columns = [
        "startTime",
        "openPrice",
        "highPrice",
        "lowPrice",
        "closePrice",
        "volume",
        "turnover",
    ]
    out.to_csv(path, index=False)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from ita_vc.candles import CandleStore
    from ita_vc.candles.sample import SAMPLE_SPECS, generate_candles
    from ita_vc.store import hash_dataframe
    from ita_vc.workspace import Workspace

    writers = {"binance-spot": write_binance, "bybit-futures": write_bybit}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in SAMPLE_SPECS:
            frame = generate_candles(spec)
            export = Path(tmp) / f"{spec.symbol}-1m-export.csv"
            writers[spec.market](frame, export)
            sh(
                str(BIN / "ita-vc"),
                "data",
                "import",
                str(export),
                "--market",
                spec.market,
                "--symbol",
                spec.symbol,
                "--timeframe",
                "1m",
                "--no-track",
            )
            stored = CandleStore(Workspace.at(ROOT)).load(spec.market, spec.symbol, "1m")
            if hash_dataframe(stored) != hash_dataframe(frame):
                print(f"FAILED: imported {spec.symbol} differs from the generated table")
                return 1
    sh(str(BIN / "dvc"), "add", "data")
    remotes = sh(str(BIN / "dvc"), "remote", "list")
    if "sample" not in remotes.split():
        sh(str(BIN / "dvc"), "remote", "add", "sample", REMOTE)
    sh(str(BIN / "dvc"), "push", "-r", "sample")
    print(sh(str(BIN / "ita-vc"), "data", "status"))
    print("now: git add data.dvc .gitignore .dvc/config samples/ && git commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
