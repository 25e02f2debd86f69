from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MIN = 60_000


def candles(n: int = 10, start: int = T0, step: int = MIN, seed: int = 0) -> pd.DataFrame:
    """A valid canonical-ish frame (no gap_flag) of ``n`` bars."""
    rng = np.random.default_rng(seed)
    close = np.round(100 + np.cumsum(rng.normal(0, 0.5, n)), 2)
    open_ = np.r_[100.0, close[:-1]][:n]
    return pd.DataFrame(
        {
            "ts_utc": start + np.arange(n, dtype="int64") * step,
            "open": open_,
            "high": np.maximum(open_, close) + 0.25,
            "low": np.minimum(open_, close) - 0.25,
            "close": close,
            "volume": np.round(rng.random(n) * 10, 3),
        }
    )


def binance_lines(df: pd.DataFrame, unit: int = 1) -> str:
    rows = []
    for r in df.itertuples():
        t = int(r.ts_utc) * unit
        rows.append(
            f"{t},{r.open!r},{r.high!r},{r.low!r},{r.close!r},{r.volume!r},"
            f"{t + 59_999 * unit},0,0,0,0,0"
        )
    return "\n".join(rows) + "\n"


@pytest.fixture
def cstore(workspace):
    from ita_vc.candles import CandleStore

    return CandleStore(workspace)
