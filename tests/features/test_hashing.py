"""The candle and feature hashes, as docs/cache.md defines them."""

from __future__ import annotations

from ita_vc.features import FEATURE_CODE_VERSION, candle_hash, code_version, feature_hash
from ita_vc.utils.hashing import hash_canonical, is_hash

DATA = "sha256:" + "a" * 64


def test_candle_hash_is_the_documented_canonical_json():
    got = candle_hash("binance-spot", "BTCUSDT", "1h", 10, 20, DATA)
    assert got == hash_canonical(
        {
            "provider": "binance-spot",
            "symbol": "BTCUSDT",
            "timeframe": "1h",
            "range": [10, 20],
            "raw_version": DATA,
        }
    )
    assert is_hash(got)
    assert candle_hash("binance-spot", "BTCUSDT", "1h", 10, 21, DATA) != got
    assert candle_hash("binance-spot", "BTCUSDT", "1h", 10, 20, "sha256:" + "b" * 64) != got


def test_feature_hash_sorts_params_and_binds_the_code_version():
    candle = candle_hash("generic", "X", None, 0, 1, DATA)
    version = code_version("2.0")
    assert version == f"{FEATURE_CODE_VERSION}+2.0"
    a = feature_hash("rsi", {"window": 14, "lower": 30, "upper": 70}, candle, version)
    b = feature_hash("rsi", {"upper": 70, "lower": 30, "window": 14}, candle, version)
    assert (
        a
        == b
        == hash_canonical(
            {
                "indicator": "rsi",
                "params": {"lower": 30, "upper": 70, "window": 14},
                "candle_hash": candle,
                "code_version": version,
            }
        )
    )
    assert feature_hash("rsi", {"window": 14, "lower": 30, "upper": 70}, candle, "2+2.0") != a
    assert feature_hash("rsi", {"window": 14, "lower": 30, "upper": 70}, candle, "1+1.0") != a
    assert feature_hash("rsi", {"window": 15, "lower": 30, "upper": 70}, candle, version) != a
