"""The demo (``make demo``): ita-vc end to end on the embedded defaults, in a temp workspace.

It runs the real CLI as a new user would: ``ita-vc init``, a Persistent Store round trip with a
content-hash check, ``ita-vc store ls`` and ``ita-vc index rebuild``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def sh(*args: str, cwd: Path) -> None:
    print(f"$ {' '.join(args)}", flush=True)
    subprocess.run(args, cwd=cwd, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def main() -> int:
    import numpy as np
    import pandas as pd

    from ita_vc.store import PersistentStore, hash_dataframe
    from ita_vc.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="ita-vc-demo-"))
    try:
        root = base / "workspace"
        sh(str(BIN / "ita-vc"), "init", str(root), cwd=base)
        store = PersistentStore(Workspace.at(root))
        rng = np.random.default_rng(7)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 10_000)))
        candles = pd.DataFrame({"ts_utc": np.arange(10_000, dtype="int64") * 60_000,
                                "close": close})
        ref = store.save_dataframe(candles, "candles", "1m", subdir="generic/DEMO",
                                   meta={"symbol": "DEMO", "timeframe": "1m"})
        back = store.load_dataframe(ref)
        if hash_dataframe(back) != hash_dataframe(candles):
            print("demo FAILED: the round trip changed the data", file=sys.stderr)
            return 1
        print(f"saved {ref.path} ({ref.size:,} bytes, {ref.sha256})")
        print(f"table content hash {hash_dataframe(back)} survives the round trip")
        sh(str(BIN / "ita-vc"), "store", "ls", cwd=root)
        sh(str(BIN / "ita-vc"), "index", "rebuild", cwd=root)
        print("demo OK")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
