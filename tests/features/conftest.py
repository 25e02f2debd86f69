from __future__ import annotations

import numpy as np
import pytest

from ita_vc.features import FeatureCacheSettings, FeatureSource, candle_hash, code_version

N_BARS = 600


@pytest.fixture
def settings(tmp_path):
    return FeatureCacheSettings(tmp_path / "cache", tmp_path / "index.sqlite", 1 << 30)


@pytest.fixture
def source(settings):
    candle = candle_hash("generic", "TEST", "1h", 0, 1000, "sha256:" + "0" * 64)
    return FeatureSource(settings, candle, code_version("2.0"))


@pytest.fixture(scope="session")
def bars():
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 1, N_BARS))
    return close + rng.uniform(0, 1, N_BARS), close - rng.uniform(0, 1, N_BARS), close
