"""``ita-vc cache info|clear`` and the cache rows surviving ``ita-vc index rebuild``."""

from __future__ import annotations

import numpy as np

from ita_vc.features import FeatureCache, FeatureSession, FeatureSource, cache_settings
from tests.helpers import invoke


def _fill(workspace):
    settings = cache_settings(workspace.root)
    assert settings is not None
    source = FeatureSource(settings, "sha256:" + "5" * 64, "1+2.0")
    session = FeatureSession(source, 100)
    for w in (3, 4):
        session.offer("sma", {"window": w}, np.zeros(100, dtype=np.int8), 1.0)
    session.flush()
    return FeatureCache(settings)


def test_info_rebuild_and_clear(workspace):
    cache = _fill(workspace)
    result = invoke("cache", "info", cwd=workspace.root)
    assert result.exit_code == 0, result.output
    assert "enabled: 2 entries" in result.output
    before = {h: r["sha256"] for h, r in cache.rows().items()}
    result = invoke("index", "rebuild", cwd=workspace.root)
    assert result.exit_code == 0, result.output
    assert {h: r["sha256"] for h, r in cache.rows().items()} == before
    result = invoke("cache", "clear", cwd=workspace.root)
    assert result.exit_code == 0, result.output
    assert "cleared: 2 entries" in result.output
    assert cache.rows() == {}
    assert "0 entries" in invoke("cache", "info", cwd=workspace.root).output


def test_a_bad_budget_is_a_config_error(workspace):
    config = workspace.root / "configs" / "config.yaml"
    config.write_text(config.read_text().replace("max_bytes: 1073741824", "max_bytes: lots"))
    result = invoke("cache", "info", cwd=workspace.root)
    assert result.exit_code == 8, result.output
    assert "cache.max_bytes" in result.output and "lots" in result.output
    assert "Traceback" not in result.output
