"""Hostile input for the Persistent Store and the workspace layout: containment (symlinks),
names filesystems refuse, concurrent writers of one artifact, and an index rebuild that skips
what cannot be an artifact instead of aborting."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from ita_vc.errors import ConfigError, PersistentStoreError
from ita_vc.store import PersistentStore
from ita_vc.utils.hashing import hash_file
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke, ita_vc_subprocess


def _tree(folder):
    return (
        sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        if folder.exists()
        else []
    )


# -- containment --------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["results", "provenance", "logs", "data/png"])
def test_a_configured_folder_symlinked_outside_is_refused_when_the_config_loads(
    tmp_repo, tmp_path, key
):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tmp_repo / key
    if link.exists():
        link.rmdir()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside the workspace"):
        Workspace.at(tmp_repo)
    for command in (
        ("store", "ls"),
        ("data", "status"),
        ("index", "rebuild"),
        ("grid", "run"),
        ("run",),
    ):
        result = invoke(*command)
        assert result.exit_code == 8, (command, result.output)
        assert key in result.stderr and "symbolic link" in result.stderr
    assert _tree(outside) == []


def test_the_issue_recipe_results_moved_out_and_linked_back(tmp_repo, tmp_path):
    (tmp_repo / "results").mkdir(exist_ok=True)
    (tmp_repo / "results").rename(tmp_path / "o")
    (tmp_repo / "results").symlink_to(tmp_path / "o", target_is_directory=True)
    proc = ita_vc_subprocess("grid", "run", cwd=tmp_repo)
    assert proc.returncode == 8, proc.stderr
    assert _tree(tmp_path / "o") == []


def test_a_symlink_met_at_write_time_is_refused_and_nothing_is_written(store, tmp_repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_repo / "results").mkdir(exist_ok=True)
    (tmp_repo / "results" / "grid").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PersistentStoreError, match="leads outside the workspace") as info:
        store.save_json({"a": 1}, "results", "summary.json", subdir="grid")
    assert info.value.exit_code == 9
    with pytest.raises(PersistentStoreError, match="leads outside"):
        store.save_json({"a": 1}, "results", "x.json", subdir="grid/deeper/still")
    assert _tree(outside) == []


def test_symlinks_inside_the_workspace_are_fine(store, tmp_repo):
    (tmp_repo / "results" / "real").mkdir(parents=True)
    (tmp_repo / "results" / "alias").symlink_to(tmp_repo / "results" / "real")
    ref = store.save_json({"a": 1}, "results", "x.json", subdir="alias")
    assert (tmp_repo / "results" / "real" / "x.json").is_file() and ref.size > 0


def test_atomic_writes_replace_a_file_symlink_never_its_target(store, tmp_repo, tmp_path):
    target = tmp_path / "cache-object"
    target.write_text("cached")
    (tmp_repo / "results").mkdir(exist_ok=True)
    (tmp_repo / "results" / "m.json").symlink_to(target)  # as `cache.type symlink` checks out
    store.save_json({"new": 1}, "results", "m.json")
    assert target.read_text() == "cached"
    assert not (tmp_repo / "results" / "m.json").is_symlink()


def test_logs_never_follow_a_symlinked_log_file(tmp_repo, tmp_path):
    (tmp_repo / "logs").mkdir(exist_ok=True)
    outside = tmp_path / "stolen.log"
    outside.write_text("")
    (tmp_repo / "logs" / "ita-vc.log").symlink_to(outside)
    assert invoke("store", "ls").exit_code == 0
    assert outside.read_text() == ""


# -- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filename", "subdir", "match"),
    [
        ("x" * 300 + ".json", "", "305 bytes, the limit is 255"),
        ("m.json", "/".join(["d"] * 2000), "2000 folders deep, the limit is 32"),
        ("bad\udc80.json", "", "lone surrogate"),
        ("m.json", "ok/\udcff", "lone surrogate"),
        ("m.json", ".x", "hidden folder '.x'"),
        ("m.json", "a/.git/b", "hidden folder '.git'"),
        ("line\nbreak.json", "", "control characters"),
        ("m.json", "é" * 130, "260 bytes, the limit is 255"),
    ],
)
def test_names_filesystems_refuse_are_refused_before_writing(
    store, tmp_repo, filename, subdir, match
):
    before = _tree(tmp_repo / "results")
    with pytest.raises(PersistentStoreError, match=match):
        store.save_json({"a": 1}, "results", filename, subdir=subdir)
    assert _tree(tmp_repo / "results") == before


def test_canonical_candles_are_written_only_by_the_importer(store, tmp_repo):
    import pandas as pd

    frame = pd.DataFrame({"ts_utc": [0], "open": [1.0], "_row": [1]})
    with pytest.raises(PersistentStoreError, match="canonical candle store"):
        store.save_dataframe(frame, "candles", "1m", subdir="binance-spot/BTCUSDT")
    with pytest.raises(PersistentStoreError, match="canonical candle store"):
        store.save_json({}, "candles", "x.json")
    assert not (tmp_repo / "data" / "candles").exists()


# -- the index rebuild ------------------------------------------------------------------------
def test_rebuild_skips_and_reports_what_cannot_be_an_artifact(store, tmp_repo, tmp_path):
    good = store.save_json({"a": 1}, "results", "good.json", meta={"run_id": "r1"})
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (tmp_repo / "results" / "escape.txt").symlink_to(secret)
    (tmp_repo / "results" / "broken.txt").symlink_to(tmp_path / "nowhere")
    png = tmp_repo / "data" / "png"
    png.mkdir(parents=True, exist_ok=True)
    (png / os.fsdecode(b"chart-\xff.png")).write_bytes(b"\x89PNG")
    result = invoke("index", "rebuild")
    assert result.exit_code == 0, result.output
    assert "escape.txt: a symbolic link to" in result.stderr
    assert "outside the workspace and the DVC cache" in result.stderr
    assert "broken.txt: a broken symbolic link" in result.stderr
    assert "not valid UTF-8" in result.stderr
    assert [r.path for r in store.list()] == ["results/good.json"]
    assert store.list()[0].meta == {"run_id": "r1"} and store.list()[0].sha256 == good.sha256


def test_rebuild_indexes_dvc_checkouts_with_cache_type_symlink(tmp_repo):
    tmp_repo.dvc("config", "cache.type", "symlink")
    tmp_repo.gen({"data/png/a.png": b"\x89PNG one", "data/png/b.png": b"\x89PNG two"})
    tmp_repo.dvc("add", "-q", "data")
    assert (tmp_repo / "data" / "png" / "a.png").is_symlink()
    result = invoke("index", "rebuild")
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr
    store = PersistentStore(Workspace.at(tmp_repo))
    assert [r.path for r in store.list()] == ["data/png/a.png", "data/png/b.png"]
    assert store.list()[0].sha256 == hash_file(tmp_repo / "data" / "png" / "a.png")[0]


def test_rebuild_with_an_external_symlinked_cache(tmp_repo, tmp_path):
    tmp_repo.dvc("cache", "dir", str(tmp_path / "shared-cache"))
    tmp_repo.dvc("config", "cache.type", "symlink")
    tmp_repo.gen({"data/png/a.png": b"\x89PNG one"})
    tmp_repo.dvc("add", "-q", "data")
    result = invoke("index", "rebuild")
    assert result.exit_code == 0 and "skipped" not in result.stderr, result.output
    assert [r.path for r in PersistentStore(Workspace.at(tmp_repo)).list()] == ["data/png/a.png"]


# -- concurrent writers of one artifact -----------------------------------------------------
_WRITER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from ita_vc.store import PersistentStore
    from ita_vc.store.artifacts import _stripe_lock
    from ita_vc.utils.hashing import hash_file
    from ita_vc.workspace import Workspace
    worker, start = sys.argv[1], Path(sys.argv[2])
    while not start.exists():  # a barrier: every writer starts together
        time.sleep(0.01)
    store = PersistentStore(Workspace.discover())
    bad = []
    for i in range(60):
        ref = store.save_json({"w": worker, "i": i, "pad": "x" * (i * 37 % 400)},
                              "results", "shared.json", meta={"run_id": f"{worker}-{i}"})
        # under the artifact's lock nobody else writes: file, sidecar and index must agree
        with store.workspace.lock(name=_stripe_lock(ref.path), timeout=60):
            on_disk = hash_file(store.workspace.path(ref.path))[0]
            row = store.index.get(ref.path)
            side = json.loads(store.workspace.path(ref.path + ".ita-meta.json").read_text())
            if row.sha256 != on_disk or on_disk not in side["entries"]:
                bad.append(i)
    print(json.dumps(bad))
""")


def test_concurrent_writers_of_one_artifact_keep_file_sidecar_and_index_together(tmp_repo):
    start = tmp_repo.parent / "start"
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "python"), "-c", _WRITER, str(w), str(start)],
            cwd=tmp_repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    start.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert json.loads(out) == []
    store = PersistentStore(Workspace.at(tmp_repo))
    path = "results/shared.json"
    on_disk = hash_file(tmp_repo / path)[0]
    assert store.index.get(path).sha256 == on_disk
    content = json.loads((tmp_repo / path).read_text())
    expected_meta = {"run_id": f"{content['w']}-{content['i']}"}
    assert store.ref_for(path).meta == expected_meta
    (tmp_repo / ".ita" / "index.sqlite").unlink()
    assert invoke("index", "rebuild").exit_code == 0
    rebuilt = PersistentStore(Workspace.at(tmp_repo)).index.get(path)
    assert rebuilt.sha256 == on_disk and json.loads(rebuilt.meta_json) == expected_meta
