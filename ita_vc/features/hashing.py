"""The candle and feature hashes of the feature cache (seed 004 sections 4-5).

* ``candle_hash = hash_canonical({"provider": market, "symbol": symbol, "timeframe":
  timeframe, "range": [first_ts_ms, last_ts_ms], "raw_version": data_hash})``, ``data_hash``
  being the prepared candles' content hash (:func:`ita_vc.utils.tablehash.hash_dataframe`, as
  ``summary.json``'s ``data_hash``);
* ``feature_hash = hash_canonical({"indicator": name, "params": params (keys sorted),
  "candle_hash": candle_hash, "code_version": code_version})`` with ``code_version =
  FEATURE_CODE_VERSION + "+" + engine_version``: a changed code or engine version names other
  entries, so it never reuses an old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc.utils.hashing import hash_canonical

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FEATURE_CODE_VERSION", "candle_hash", "code_version", "feature_hash"]

FEATURE_CODE_VERSION = "1"
"""The version of the indicator state code (``ita_vc.backtest.signals``/``indicators``): bump
it whenever a state series could change for the same inputs."""


def code_version(engine_version: str) -> str:
    """``FEATURE_CODE_VERSION + "+" + engine_version``: what a feature hash is bound to."""
    return f"{FEATURE_CODE_VERSION}+{engine_version}"


def candle_hash(
    market: str,
    symbol: str,
    timeframe: str | None,
    first_ts_ms: int,
    last_ts_ms: int,
    data_hash: str,
) -> str:
    """The hash naming one candle series (see the module docstring)."""
    return hash_canonical(
        {
            "provider": market,
            "symbol": symbol,
            "timeframe": timeframe,
            "range": [int(first_ts_ms), int(last_ts_ms)],
            "raw_version": data_hash,
        }
    )


def feature_hash(indicator: str, params: Mapping[str, float], candle: str, version: str) -> str:
    """The hash naming one indicator state series of the candles ``candle`` (a
    :func:`candle_hash`) under the code version ``version`` (a :func:`code_version`)."""
    return hash_canonical(
        {
            "indicator": indicator,
            "params": {k: params[k] for k in sorted(params)},
            "candle_hash": candle,
            "code_version": version,
        }
    )
