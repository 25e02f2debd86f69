"""The feature cache: hits equal recomputation bit for bit, corrupt entries are never used,
code versions never share entries, LRU eviction to the budget, rows rebuilt from the files."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ita_vc.backtest.signals import indicator_state
from ita_vc.catalog import load_catalog
from ita_vc.features import (
    FeatureCache,
    FeatureCacheSettings,
    FeatureSession,
    FeatureSource,
    sync_feature_cache,
    worth_caching,
)
from ita_vc.features.cache import _encode

CATALOG = load_catalog()
DEFAULTS = {n: {k: p.default for k, p in s.params.items()} for n, s in CATALOG.indicators.items()}


def _fill(source, bars, items):
    """Write ``items`` ((name, params)) through a session, as the grid does; the arrays."""
    session = FeatureSession(source, len(bars[2]))
    out = {}
    for name, params in items:
        states = indicator_state(name, params, *bars)
        session.offer(name, params, states, compute_s=1.0)  # always worth caching
        out[name, tuple(sorted(params.items()))] = states
    session.flush()
    return out


def _files(settings):
    return sorted((settings.root / "features").glob("*/*.parquet"))


@pytest.mark.parametrize("name", sorted(CATALOG.indicators))
def test_a_hit_equals_a_fresh_series_bit_for_bit(name, source, bars):
    params = DEFAULTS[name]
    _fill(source, bars, [(name, params)])
    hit = FeatureSession(source, len(bars[2])).get(name, params)
    fresh = indicator_state(name, params, *bars)
    assert hit is not None
    assert hit.dtype == fresh.dtype == np.int8
    assert hit.tobytes() == fresh.tobytes()
    assert hit.flags.writeable and hit.flags.c_contiguous


@hyp_settings(max_examples=20, deadline=None)
@given(
    window=st.integers(2, 300),
    k=st.floats(0.1, 10.0, allow_nan=False),
    lower=st.floats(0.0, 50.0),
    fast=st.integers(1, 50),
    slow=st.integers(2, 400),
)
def test_hits_equal_fresh_series_for_any_params(bars, window, k, lower, fast, slow):
    items = [
        ("sma", {"window": window}),
        ("ema", {"window": window}),
        ("rsi", {"window": window, "lower": lower, "upper": 100 - lower}),
        ("bbands", {"window": window, "k": k}),
        ("atr", {"window": window, "k": k}),
        ("ma_cross", {"fast": fast, "slow": slow}),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        settings = FeatureCacheSettings(Path(tmp) / "c", Path(tmp) / "i.sqlite", 1 << 30)
        source = FeatureSource(settings, "sha256:" + "1" * 64, "1+2.0")
        _fill(source, bars, items)
        session = FeatureSession(source, len(bars[2]))
        for name, params in items:
            hit = session.get(name, params)
            assert hit is not None
            assert hit.tobytes() == indicator_state(name, params, *bars).tobytes()


def test_another_code_version_never_reuses_an_entry(source, bars):
    _fill(source, bars, [("sma", {"window": 20})])
    other = dataclasses.replace(source, code_version="2+2.0")
    assert FeatureSession(other, len(bars[2])).get("sma", {"window": 20}) is None
    assert FeatureSession(source, len(bars[2])).get("sma", {"window": 20}) is not None
    other_candles = dataclasses.replace(source, candle_hash="sha256:" + "2" * 64)
    assert FeatureSession(other_candles, len(bars[2])).get("sma", {"window": 20}) is None


def _corrupt_truncate(path, _row, _cache, _bars):
    path.write_bytes(path.read_bytes()[:-7])


def _corrupt_flip(path, _row, _cache, _bars):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _corrupt_length(path, row, cache, bars):
    """A valid entry of another length, its row updated to match: only the length check
    can catch it."""
    states = indicator_state("sma", {"window": 20}, *bars)[:-1]
    data = _encode(
        states, {k: row[k] for k in ("candle_hash", "indicator", "params_json", "code_version")}
    )
    path.write_bytes(data)
    from ita_vc.utils.hashing import hash_bytes

    cache.index.upsert_rows(
        "feature_cache", [{**row, "sha256": hash_bytes(data), "size": len(data)}]
    )


def _corrupt_garbage(path, row, cache, _bars):
    from ita_vc.utils.hashing import hash_bytes

    data = b"not a parquet file"
    path.write_bytes(data)
    cache.index.upsert_rows(
        "feature_cache", [{**row, "sha256": hash_bytes(data), "size": len(data)}]
    )


@pytest.mark.parametrize(
    "corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_length, _corrupt_garbage]
)
def test_a_corrupt_entry_is_detected_deleted_and_never_used(corrupt, source, bars):
    _fill(source, bars, [("sma", {"window": 20})])
    cache = FeatureCache(source.settings)
    [row] = cache.rows().values()
    [path] = _files(source.settings)
    corrupt(path, row, cache, bars)
    session = FeatureSession(source, len(bars[2]))
    assert session.get("sma", {"window": 20}) is None  # a miss: the caller recomputes
    assert not path.exists()
    assert cache.rows() == {}
    # recomputed and written again, the entry is good
    _fill(source, bars, [("sma", {"window": 20})])
    hit = FeatureSession(source, len(bars[2])).get("sma", {"window": 20})
    assert hit is not None
    assert hit.tobytes() == indicator_state("sma", {"window": 20}, *bars).tobytes()


def test_a_vanished_file_is_a_miss_and_its_row_goes(source, bars):
    _fill(source, bars, [("ema", {"window": 5})])
    for path in _files(source.settings):
        path.unlink()
    assert FeatureSession(source, len(bars[2])).get("ema", {"window": 5}) is None
    assert FeatureCache(source.settings).rows() == {}


def test_lru_eviction_keeps_the_budget_and_the_recently_used(source, bars):
    _fill(source, bars, [("sma", {"window": w}) for w in (5, 6, 7)])
    cache = FeatureCache(source.settings)
    sizes = {r["indicator"] + r["params_json"]: r["size"] for r in cache.rows().values()}
    assert len(sizes) == 3
    # a hit on window 5 makes it the most recently used
    session = FeatureSession(source, len(bars[2]))
    assert session.get("sma", {"window": 5}) is not None
    session.flush()
    # a budget for two entries: adding a fourth evicts the oldest-used (6, then 7)
    budget = sum(sorted(sizes.values())[-2:])
    tight = dataclasses.replace(
        source, settings=dataclasses.replace(source.settings, max_bytes=budget)
    )
    _fill(tight, bars, [("sma", {"window": 8})])
    left = {r["params_json"] for r in cache.rows().values()}
    assert left == {'{"window": 5}', '{"window": 8}'}
    assert len(_files(source.settings)) == 2
    assert sum(r["size"] for r in cache.rows().values()) <= budget
    assert cache.evict(0) == 2
    assert cache.rows() == {} and _files(source.settings) == []


def test_info_clear_and_rows_rebuilt_from_the_files(workspace, bars):
    from ita_vc.features import cache_settings

    settings = cache_settings(workspace.root)
    assert settings is not None
    assert settings.root == workspace.root.resolve() / ".ita" / "cache"
    source = FeatureSource(settings, "sha256:" + "3" * 64, "1+2.0")
    _fill(source, bars, [("rsi", DEFAULTS["rsi"]), ("atr", DEFAULTS["atr"])])
    cache = FeatureCache(settings)
    before = cache.rows()
    cache.index.replace_rows("feature_cache", [])  # as after `index rebuild`
    assert sync_feature_cache(workspace) == 2
    after = cache.rows()
    drop = ("created_at", "last_used_at")
    assert {h: {k: v for k, v in r.items() if k not in drop} for h, r in after.items()} == {
        h: {k: v for k, v in r.items() if k not in drop} for h, r in before.items()
    }
    info = cache.info()
    assert (info.entries, info.bytes, info.files_without_row) == (
        2,
        sum(r["size"] for r in after.values()),
        0,
    )
    assert cache.clear() == 2
    assert cache.info().entries == 0 and _files(settings) == []


def test_disabled_in_the_config_means_no_settings(workspace):
    from ita_vc.features import cache_settings

    config = workspace.root / "configs" / "config.yaml"
    text = config.read_text()
    assert "enabled: true" in text
    config.write_text(text.replace("enabled: true", "enabled: false"))
    assert cache_settings(workspace.root) is None
    assert sync_feature_cache(workspace) == 0


def test_the_write_rule_compares_compute_and_load_time():
    assert not worth_caching(0.0005, 1000)
    assert worth_caching(0.02, 1_000_000)
    assert not worth_caching(0.004, 1_000_000)


def test_an_unwritable_cache_turns_itself_off_instead_of_failing(tmp_path, bars):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    settings = FeatureCacheSettings(blocker, tmp_path / "index.sqlite", 1 << 30)
    source = FeatureSource(settings, "sha256:" + "6" * 64, "1+2.0")
    session = FeatureSession(source, len(bars[2]))
    session.offer("sma", {"window": 5}, indicator_state("sma", {"window": 5}, *bars), 1.0)
    session.flush()  # no exception
    assert session.broken
    session.offer("sma", {"window": 6}, indicator_state("sma", {"window": 6}, *bars), 1.0)
    assert session.pending == []
    assert session.get("sma", {"window": 5}) is None


def test_runs_that_do_not_describe_the_series_are_refused():
    import pyarrow as pa

    from ita_vc.features.cache import _LEN_KEY, _runs_to_states

    def table(starts, states, n):
        return pa.table(
            {"start": pa.array(starts, pa.int64()), "state": pa.array(states, pa.int8())}
        ).replace_schema_metadata({_LEN_KEY: str(n).encode()})

    good = _runs_to_states(table([0, 2], [1, -1], 4), 4)
    assert good is not None and good.tolist() == [1, 1, -1, -1]
    assert _runs_to_states(table([0, 2], [1, -1], 4), 5) is None  # another length
    assert _runs_to_states(table([1, 2], [1, -1], 4), 4) is None  # not from bar 0
    assert _runs_to_states(table([0, 2, 2], [1, -1, 0], 4), 4) is None  # not increasing
    assert _runs_to_states(table([0, 4], [1, -1], 4), 4) is None  # past the end
    assert _runs_to_states(table([], [], 4), 4) is None
