"""The grid with the feature cache: outputs byte-identical cold, warm and disabled, a warm
run computes no indicator, and 4 processes released together share one cache safely."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import prepare_candles
from ita_vc.backtest.signals import indicator_state
from ita_vc.catalog import load_catalog
from ita_vc.features import FeatureCache, FeatureCacheSettings, FeatureSession, FeatureSource
from ita_vc.features import cache as cache_module
from ita_vc.features.cache import activate
from ita_vc.grid import evaluate as evaluate_module
from ita_vc.grid import parse_grid, run_grid
from ita_vc.pipeline.outputs import DirSink, write_grid
from ita_vc.rules.validate import parse_rule
from tests.helpers import walk_candles

CATALOG = load_catalog()
RULE_TEXT = b"""setup_id: g
version: "1.0"
indicators: [{name: ma_cross, params: {fast: 10, slow: 20}}, {name: rsi, params: {window: 14}}]
direction: long-short
"""


@pytest.fixture(scope="module")
def inputs():
    rule, problems = parse_rule(
        RULE_TEXT, "g.yaml", catalog=CATALOG, rules_root=None, require_hash=False
    )
    assert not problems
    params = parse_params({"data": {"start": "2025-01-05"}, "backtest": {"warmup_bars": 50}})
    prepared = prepare_candles(
        walk_candles(1500, step=3_600_000, seed=5, vol=4e-3, spread=0.1), params
    )[0]
    request = parse_grid(
        {
            "indicators": [
                {"name": "ma_cross", "params": {"fast": [4, 8, 12], "slow": [20, 40]}},
                {"name": "rsi", "params": {"window": [7, 14], "lower": [30], "upper": [70]}},
            ],
            "targets": {"sl_pct": [None, 1.5], "tp_pct": [None, 3.0]},
            "top_k": 5,
            "top_trades_n": 2,
            "batch_size": 4,
        },
        CATALOG,
    )
    return prepared, rule, params, request


@pytest.fixture
def cache_everything(monkeypatch):
    """Small test series compute faster than they load: make every one worth caching."""
    monkeypatch.setattr(cache_module, "LOAD_FIXED_S", -1.0)


def _grid(inputs, out: Path, settings: FeatureCacheSettings | None) -> dict[str, bytes]:
    prepared, rule, params, request = inputs
    evaluate_module._EVALUATORS.clear()  # a fresh process's state
    with activate(settings):
        outcome = run_grid(prepared, rule, params, request, workers=1, keep_partial=False)
    write_grid(outcome, DirSink(out), timings=False)
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_outputs_are_byte_identical_disabled_cold_and_warm(
    inputs, tmp_path, cache_everything, monkeypatch
):
    settings = FeatureCacheSettings(tmp_path / "cache", tmp_path / "index.sqlite", 1 << 30)
    disabled = _grid(inputs, tmp_path / "off", None)
    assert "topk.parquet" in disabled and "summary.json" in disabled
    assert not (tmp_path / "cache").exists()
    cold = _grid(inputs, tmp_path / "cold", settings)
    entries = FeatureCache(settings).rows()
    assert len(entries) == 6 + 2  # every distinct state: ma_cross 3 x 2, rsi 2
    computed = []
    real = evaluate_module.indicator_state

    def counting(*args, **kwargs):
        computed.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "indicator_state", counting)
    warm = _grid(inputs, tmp_path / "warm", settings)
    assert computed == []  # every series came from the cache
    assert cold == disabled
    assert warm == disabled


def _one_grid(barrier, inputs, out, settings):  # pragma: no cover - runs in a child process
    barrier.wait()
    _grid(inputs, out, settings)


def test_four_concurrent_grid_processes_share_one_cache(inputs, tmp_path, cache_everything):
    settings = FeatureCacheSettings(tmp_path / "cache", tmp_path / "index.sqlite", 1 << 30)
    baseline = _grid(inputs, tmp_path / "off", None)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_one_grid, args=(barrier, inputs, tmp_path / f"p{i}", settings))
        for i in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    for i in range(4):
        out = tmp_path / f"p{i}"
        got = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }
        assert got == baseline
    cache = FeatureCache(settings)
    rows = cache.rows()
    assert len(rows) == 6 + 2
    for row in rows.values():
        assert cache.load(row, len(inputs[0])) is not None  # every entry verifies
    leftovers = [
        p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".parquet"
    ]
    assert leftovers == []  # no temp file left behind


def _churn(barrier, settings, bars, worker):  # pragma: no cover - runs in a child process
    source = FeatureSource(settings, "sha256:" + "4" * 64, "1+2.0")
    barrier.wait()
    for round_ in range(6):
        session = FeatureSession(source, len(bars[2]))
        for window in range(2, 10):
            params = {"window": window}
            found = session.get("sma", params)
            fresh = indicator_state("sma", params, *bars)
            if found is not None and found.tobytes() != fresh.tobytes():
                raise AssertionError(f"worker {worker} round {round_}: a wrong hit")
            if found is None:
                session.offer("sma", params, fresh, compute_s=1.0)
        session.flush()


def test_concurrent_writers_readers_and_eviction(tmp_path, bars):
    """A budget of about three entries: 4 processes write, hit and evict the same entries at
    once; no hit is ever wrong, nothing raises, the budget holds at the end."""
    probe = FeatureCacheSettings(tmp_path / "probe", tmp_path / "probe.sqlite", 1 << 30)
    source = FeatureSource(probe, "sha256:" + "4" * 64, "1+2.0")
    session = FeatureSession(source, len(bars[2]))
    session.offer("sma", {"window": 5}, indicator_state("sma", {"window": 5}, *bars), 1.0)
    session.flush()
    size = next(iter(FeatureCache(probe).rows().values()))["size"]
    settings = FeatureCacheSettings(tmp_path / "cache", tmp_path / "index.sqlite", 3 * size)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_churn, args=(barrier, settings, bars, i)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    cache = FeatureCache(settings)
    assert cache.evict(settings.max_bytes) == 0
    rows = cache.rows()
    assert sum(r["size"] for r in rows.values()) <= 4 * size  # sizes differ by a few bytes
    for row in rows.values():
        assert cache.load(row, len(bars[2])) is not None
    assert isinstance(np.int8(0), np.int8)
