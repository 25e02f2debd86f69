"""The demo (``make demo``): ita-vc end to end on this repository's embedded defaults.

As a new user would, with the real CLI: restore the sample candles from the committed DVC
remote (offline), show them, check and list the example rules, roll the candles up to the
pipeline's timeframe, and do a Persistent Store round trip in a fresh ``ita-vc init`` workspace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def sh(*args: str, cwd: Path = ROOT) -> None:
    print(f"\n$ {' '.join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args))}",
          flush=True)
    subprocess.run(args, cwd=cwd, check=True, env=ENV)


def main() -> int:
    sh(str(BIN / "dvc"), "pull", "-r", "sample")
    sh(str(BIN / "ita-vc"), "data", "status")
    sh(str(BIN / "ita-vc"), "rule", "check", "--all")
    sh(str(BIN / "ita-vc"), "rule", "list")

    import numpy as np

    from ita_vc.candles import CandleStore, rollup_with_report
    from ita_vc.store import PersistentStore, hash_dataframe
    from ita_vc.workspace import Workspace

    candles = CandleStore(Workspace.at(ROOT)).load("binance-spot", "BTCUSDT", "1m")
    hourly, report = rollup_with_report(candles, "1h")
    print(f"\nrollup BTCUSDT 1m -> 1h: {report.source_bars:,} bars -> {report.emitted:,} "
          f"full hours, {report.dropped} partial hour(s) dropped")

    base = Path(tempfile.mkdtemp(prefix="ita-vc-demo-"))
    try:
        root = base / "workspace"
        sh(str(BIN / "ita-vc"), "init", str(root), cwd=base)
        store = PersistentStore(Workspace.at(root))
        ref = store.save_dataframe(hourly, "results", "btc_1h", meta={"symbol": "BTCUSDT",
                                                                       "timeframe": "1h"})
        back = store.load_dataframe(ref)
        if hash_dataframe(back) != hash_dataframe(hourly) or not np.array_equal(
            back["close"].to_numpy(), hourly["close"].to_numpy()
        ):
            print("demo FAILED: the store round trip changed the data", file=sys.stderr)
            return 1
        print(f"\nsaved {ref.path} ({ref.size:,} bytes) and read it back unchanged: "
              f"{hash_dataframe(back)}")
        sh(str(BIN / "ita-vc"), "store", "ls", cwd=root)
        print("\ndemo OK")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
