from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import ita_vc.store as store_module
from ita_vc.errors import IntegrityError, PersistentStoreError
from ita_vc.store import ArtifactRef, hash_dataframe
from ita_vc.utils.hashing import hash_bytes, hash_file

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def candles() -> pd.DataFrame:
    n = 50
    return pd.DataFrame(
        {
            "ts_utc": np.arange(n, dtype="int64") * 60_000,
            "open": np.linspace(100, 110, n),
            "close": np.linspace(100.5, 111, n) / 3,
            "volume": np.arange(n) * 0.1,
            "gap_flag": np.arange(n) % 7 == 0,
            "note": ["x"] * (n - 1) + [None],
            "stamp": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
        }
    )


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_dataframe_round_trip_is_value_exact(store, workspace, candles, fmt):
    ref = store.save_dataframe(
        candles,
        "raw",
        "1m",
        subdir="binance-spot/BTCUSDT",
        fmt=fmt,
        meta={"symbol": "BTCUSDT", "timeframe": "1m"},
    )
    assert ref.path == f"data/raw/binance-spot/BTCUSDT/1m.{fmt}"
    assert ref.format == fmt and ref.kind == "raw"
    assert (ref.sha256, ref.size) == hash_file(workspace.path(ref.path))
    loaded = store.load_dataframe(ref)
    pd.testing.assert_frame_equal(loaded, candles, check_dtype=False)
    assert hash_dataframe(loaded) == hash_dataframe(candles)


def test_parquet_and_csv_of_one_table_have_one_content_hash(store, candles):
    a = store.load_dataframe(store.save_dataframe(candles, "results", "t.parquet"))
    b = store.load_dataframe(store.save_dataframe(candles, "results", "t.csv", fmt="csv"))
    assert hash_dataframe(a) == hash_dataframe(b) == hash_dataframe(candles)


def test_parquet_uses_the_configured_compression(store, workspace, candles):
    import pyarrow.parquet as pq

    ref = store.save_dataframe(candles, "results", "t")
    meta = pq.ParquetFile(workspace.path(ref.path)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_same_input_same_bytes(store, candles):
    first = store.save_dataframe(candles, "results", "a")
    second = store.save_dataframe(candles, "results", "b")
    assert first.sha256 == second.sha256


def test_json_round_trip_is_deterministic_and_unwrapped(store, workspace):
    ref = store.save_json(
        {"b": 1, "a": [1.5, None]}, "results", "metrics.json", meta={"run_id": "r1"}
    )
    text = workspace.path(ref.path).read_text()
    assert json.loads(text) == {"a": [1.5, None], "b": 1}  # no envelope: dvc metrics can read it
    assert text == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert store.load_json(ref) == {"a": [1.5, None], "b": 1}


def test_binary_and_png(store):
    png = store.save_binary(PNG, "png", "chart.png", meta={"symbol": "BTC"})
    blob = store.save_binary(b"\x00\x01", "raw", "blob.bin")
    assert png.format == "png" and blob.format == "binary"
    assert store.load_binary(png) == PNG
    assert store.load_binary(blob.path) == b"\x00\x01"
    assert store.file_exists(png) and store.file_exists("data/png/chart.png")
    assert not store.file_exists("data/png/nope.png")


def test_module_level_functions_use_the_current_workspace(tmp_repo, candles):
    (tmp_repo / "deep" / "er").mkdir(parents=True)
    os.chdir(tmp_repo / "deep" / "er")
    ref = store_module.save_dataframe(candles, "results", "t")
    assert isinstance(ref, ArtifactRef)
    pd.testing.assert_frame_equal(store_module.load_dataframe(ref), candles, check_dtype=False)
    j = store_module.save_json([1], "results", "x.json")
    assert store_module.load_json(j) == [1]
    b = store_module.save_binary(b"z", "raw", "z.bin")
    assert store_module.load_binary(b) == b"z"
    assert store_module.file_exists(b)


def test_ref_round_trips_through_dict(store):
    ref = store.save_json({}, "results", "e.json", meta={"k": [1]})
    assert ArtifactRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert store.ref_for(ref.path) == ref


# -- overwrite, integrity ----------------------------------------------------------------------
def test_overwrite_false_refuses_and_changes_nothing(store, workspace):
    ref = store.save_json({"v": 1}, "results", "x.json")
    before = store.index.query()
    with pytest.raises(PersistentStoreError, match="already exists and overwrite=False"):
        store.save_json({"v": 2}, "results", "x.json", overwrite=False, meta={"a": 1})
    assert store.load_json(ref) == {"v": 1}
    assert store.index.query() == before
    assert not workspace.path("results/x.json.ita-meta.json").exists()


def test_changed_file_is_an_integrity_error(store, workspace):
    ref = store.save_binary(b"abc", "raw", "a.bin")
    workspace.path(ref.path).write_bytes(b"abd")
    with pytest.raises(IntegrityError, match="does not match the recorded"):
        store.load_binary(ref)
    assert IntegrityError.exit_code == 6


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, df: s.save_dataframe(df, "results", "t", fmt="xlsx"), "unknown table format"),
        (lambda s, df: s.save_dataframe(df, "nope", "t"), "unknown artifact kind 'nope'"),
        (lambda s, df: s.save_dataframe(df, "results", "../t"), "may not contain '..'"),
        (lambda s, df: s.save_dataframe(df, "results", "t", subdir="a/../.."), "'..'"),
        (lambda s, df: s.save_dataframe(df, "results", "/etc/t"), "must be relative"),
        (lambda s, df: s.save_dataframe(df, "results", "t", subdir="/tmp"), "must be relative"),
        (lambda s, df: s.save_dataframe(df, "results", "a/b"), "plain, non-hidden file name"),
        (lambda s, df: s.save_dataframe(df, "results", ".hidden"), "plain, non-hidden"),
        (lambda s, df: s.save_dataframe(df, "results", "t.csv"), "does not match format"),
        (lambda s, df: s.save_dataframe(df, "results", "x.ita-meta.json"), "reserved"),
        (lambda s, df: s.save_dataframe([1], "results", "t"), "needs a pandas DataFrame"),
        (
            lambda s, df: s.save_dataframe(df.set_axis(["a"] * 7, axis=1), "results", "t"),
            "unique strings",
        ),
        (lambda s, df: s.save_json({"a": {1, 2}}, "results", "x.json"), "not JSON-serialisable"),
        (
            lambda s, df: s.save_json({"a": float("nan")}, "results", "x.json"),
            "not JSON-serialisable",
        ),
        (lambda s, df: s.save_json({1: 2}, "results", "x.json"), "keys must be strings"),
        (
            lambda s, df: s.save_json({}, "results", "x.json", meta={"a": object()}),
            "meta is not JSON-serialisable",
        ),
        (lambda s, df: s.save_json({}, "results", "x.json", meta=[1]), "meta must be a mapping"),
        (lambda s, df: s.save_binary("text", "raw", "x.bin"), "needs bytes"),
        (lambda s, df: s.save_binary(b"x", "raw", "x.json"), "use save_json"),
        (lambda s, df: s.load_json("results/missing.json"), "no such artifact"),
        (lambda s, df: s.load_dataframe("results/missing.parquet"), "no such artifact"),
    ],
)
def test_bad_input_raises_store_error_and_writes_nothing(store, workspace, candles, call, match):
    before = store.index.query()
    files_before = sorted(str(p) for p in workspace.root.rglob("*") if ".git" not in p.parts)
    with pytest.raises(PersistentStoreError, match=match):
        call(store, candles)
    assert store.index.query() == before
    files_after = sorted(str(p) for p in workspace.root.rglob("*") if ".git" not in p.parts)
    new = set(files_after) - set(files_before)
    assert all("logs" in p or ".ita" in p for p in new), new


def test_unreadable_table_is_a_store_error(store, workspace):
    workspace.path("results").mkdir(exist_ok=True)
    workspace.path("results/bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(PersistentStoreError, match="cannot read parquet"):
        store.load_dataframe("results/bad.parquet")
    workspace.path("results/bad.json").write_bytes(b"{oops")
    with pytest.raises(PersistentStoreError, match="invalid JSON"):
        store.load_json("results/bad.json")
    with pytest.raises(PersistentStoreError, match="not a table artifact"):
        store.load_dataframe("results/bad.json")


def test_disk_error_mid_write_keeps_old_file_and_index(store, workspace, candles, monkeypatch):
    ref = store.save_dataframe(candles, "results", "t")
    before = store.index.query()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(PersistentStoreError, match="write failed: No space left on device") as info:
        store.save_dataframe(candles.iloc[:3], "results", "t")
    assert info.value.path == "results/t.parquet"
    monkeypatch.undo()
    assert hash_file(workspace.path(ref.path))[0] == ref.sha256
    assert store.index.query() == before
    assert [p for p in workspace.path("results").iterdir() if p.name.startswith(".")] == []
    log = (workspace.logs_dir / "ita-vc.log").read_text()
    assert "results/t.parquet: write failed" in log


# -- meta and the index as a derived cache ---------------------------------------------------
def test_meta_survives_index_rebuild_for_every_format(store, workspace, candles):
    refs = [
        store.save_dataframe(
            candles, "raw", "1m", subdir="bybit-spot/ETH", meta={"symbol": "ETH", "timeframe": "1m"}
        ),
        store.save_dataframe(candles, "results", "t.csv", fmt="csv", meta={"run_id": "r7"}),
        store.save_json({"x": 1}, "results", "m.json", meta={"rule_version": "v1.2"}),
        store.save_binary(PNG, "png", "c.png", meta={"symbol": "ETH", "note": "chart"}),
        store.save_binary(b"no meta", "raw", "plain.bin"),
    ]
    workspace.index_path.unlink()
    assert store.rebuild_index() == len(refs)
    listed = {r.path: r for r in store.list()}
    for ref in refs:
        assert listed[ref.path] == ref
    row = store.index.get(refs[0].path)
    assert (row.symbol, row.timeframe) == ("ETH", "1m")
    assert store.index.get(refs[1].path).run_id == "r7"
    assert store.index.get(refs[2].path).rule_version == "v1.2"
    assert [r.path for r in store.list(symbol="ETH")] == sorted([refs[0].path, refs[3].path])
    assert [r.path for r in store.list(kind="results", run_id="r7")] == [refs[1].path]


def test_overwriting_without_meta_drops_the_old_meta(store):
    ref = store.save_json({"v": 1}, "results", "m.json", meta={"run_id": "r1"})
    store.save_json({"v": 2}, "results", "m.json")
    store.rebuild_index()
    assert store.ref_for(ref.path).meta == {}


def test_sidecar_of_other_content_is_ignored(store, workspace):
    store.save_json({"v": 1}, "results", "m.json", meta={"run_id": "r1"})
    workspace.path("results/m.json").write_text('{"v": 99}\n')  # edited behind the store's back
    store.rebuild_index()
    ref = store.ref_for("results/m.json")
    assert ref.meta == {} and ref.sha256 == hash_bytes(b'{"v": 99}\n')


def test_corrupt_index_is_cured_by_rebuild(store, workspace):
    store.save_json({"v": 1}, "results", "m.json")
    workspace.index_path.write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        workspace.index_path.with_name(workspace.index_path.name + suffix).unlink(missing_ok=True)
    with pytest.raises(PersistentStoreError, match="index rebuild"):
        store.list()
    assert store.rebuild_index() == 1
    assert [r.path for r in store.list()] == ["results/m.json"]


def test_rebuild_skips_temp_and_sidecar_files_and_unknown_folders(store, workspace):
    store.save_binary(b"x", "raw", "x.bin", meta={"a": 1})
    workspace.path("data/raw/.x.bin.123.ita-tmp").write_bytes(b"partial")
    workspace.path("elsewhere").mkdir()
    workspace.path("elsewhere/y.bin").write_bytes(b"y")
    assert store.rebuild_index() == 1


def test_duplicate_content_is_detected_by_hash(store, caplog):
    store.save_binary(b"same", "raw", "a.bin")
    with caplog.at_level("INFO", logger="ita_vc"):
        store.save_binary(b"same", "raw", "b.bin")
    assert store.index.duplicates() == {hash_bytes(b"same"): ["data/raw/a.bin", "data/raw/b.bin"]}
    assert "duplicate content" in caplog.text


def test_unindexed_file_ref_and_missing_ref(store, workspace):
    workspace.path("results").mkdir(exist_ok=True)
    workspace.path("results/loose.json").write_text("{}")
    assert store.ref_for("results/loose.json").sha256 == hash_bytes(b"{}")
    with pytest.raises(PersistentStoreError, match="no such artifact"):
        store.ref_for("results/none.json")


# -- crash safety ------------------------------------------------------------------------------
_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace
    store = PersistentStore(Workspace.at(sys.argv[1]))
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((2_000_000, 8)), columns=[f"c{i}" for i in range(8)])
    i = 0
    while True:
        df.iloc[0, 0] = i
        store.save_dataframe(df, "results", "big")
        i += 1
    """
)


def test_sigkill_mid_write_leaves_no_partial_file_and_a_consistent_index(store, workspace):
    small = pd.DataFrame({"c0": [1.0]})
    old = store.save_dataframe(small, "results", "big")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(workspace.root)])
    folder = workspace.path("results")
    deadline = time.monotonic() + 120
    killed_mid_write = False
    try:
        while time.monotonic() < deadline:
            temps = [p for p in folder.iterdir() if p.name.endswith(".ita-tmp")]
            if temps and any(p.stat().st_size > 0 for p in temps):
                proc.send_signal(signal.SIGKILL)
                killed_mid_write = True
                break
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait()
    assert killed_mid_write, "the writer never started a write"
    assert _visible(folder) == ["big.parquet"]
    target = workspace.path("results/big.parquet")
    sha, _ = hash_file(target)
    loaded = store.load_dataframe("results/big.parquet")  # a complete, readable parquet file
    assert len(loaded) in (1, 2_000_000)
    rows = store.index.query()
    assert [r.path for r in rows] == ["results/big.parquet"]
    assert rows[0].sha256 in (sha, old.sha256)
    assert store.rebuild_index() == 1
    assert store.index.get("results/big.parquet").sha256 == sha
