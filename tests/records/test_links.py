"""Run links: a real `ita-vc run`, its manifest, attached artifacts, `store ls --run-id`,
`runs list --rule/--data`, `ita-vc lineage`, and the same answers on a fresh clone after
`index rebuild`. One real pipeline run for the module (``ran_repo``); tests work on copies."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ita_vc.errors import ItaVcError, PersistentStoreError, UsageError
from ita_vc.snapshot.capture import SnapshotStore, new_run_id, seal
from ita_vc.snapshot.history import recorded_runs
from ita_vc.snapshot.links import (
    attach_artifact,
    attached_relpath,
    lineage,
    link_rows,
    linked_artifacts,
    load_attached,
    parse_data_prefix,
    parse_rule_ref,
    sync_run_links,
)
from ita_vc.snapshot.manifest import build_manifest, load_manifest, save_manifest
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.hashing import hash_file
from ita_vc.workspace import Workspace
from tests.helpers import invoke, run


def _setup(repo):
    """The workspace, the recorded run's snapshot, and its manifest (committed by the run;
    written back when a test removed it)."""
    workspace = Workspace.at(repo)
    snapshot = repo.report.snapshot
    rid = snapshot["run_id"]
    manifest = load_manifest(workspace, rid)
    if manifest is None:
        manifest = build_manifest(workspace, rid, [o["path"] for o in snapshot["outputs"]])
        save_manifest(workspace, manifest)
    return workspace, snapshot, manifest


def _json(*args, cwd=None):
    result = invoke(*args, "--json", cwd=cwd)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_links_from_the_snapshot_then_from_the_manifest(run_copy):
    workspace = Workspace.at(run_copy)
    snapshot = run_copy.report.snapshot
    rid = snapshot["run_id"]
    # a run recorded before manifests (schema < 4): linked from its snapshot's outputs
    (run_copy / f"provenance/{rid}.manifest.json").unlink()
    assert sync_run_links(workspace) == 1
    index = MetadataIndex(workspace.index_path)
    rows = index.rows("run_artifacts", run_id=rid)
    assert {r["source"] for r in rows} == {"snapshot"}
    by_path = {r["path"]: r for r in rows}
    for out in snapshot["outputs"]:
        assert by_path[out["path"]]["sha256"] == f"md5:{out['md5']}"
    assert by_path["results/backtest"]["mime"] == "inode/directory"
    inputs = {(r["kind"], r["ref"]) for r in index.rows("run_inputs", run_id=rid)}
    assert ("rule", f"{snapshot['setup_id']}@{snapshot['rule_version']}") in inputs
    assert ("data", snapshot["data_hash"]) in inputs
    assert ("params_hash", snapshot["params_hash"]) in inputs
    assert ("commit", snapshot["git_commit_hash"]) in inputs
    rule_file = f"rules/{snapshot['setup_id']}/{snapshot['rule_version']}.yaml"
    assert ("dep", rule_file) in inputs
    rule_md5 = hashlib.md5((run_copy / rule_file).read_bytes(), usedforsecurity=False).hexdigest()
    assert ("dep_md5", rule_md5) in inputs

    _, _, manifest = _setup(run_copy)
    sync_run_links(workspace)
    rows = index.rows("run_artifacts", run_id=rid)
    assert [r["path"] for r in rows] == [f["path"] for f in manifest["files"]]
    assert {r["source"] for r in rows} == {"manifest"}
    for row in rows:
        assert (row["sha256"], row["size"]) == hash_file(run_copy / row["path"])
    # a preset reference becomes an input
    _arts, used = link_rows(
        workspace, {**snapshot, "preset_ref": {"name": "fast", "sha256": "sha256:" + "a" * 64}}
    )
    assert {"run_id": rid, "kind": "preset", "ref": "fast@sha256:" + "a" * 64} in used


def test_store_ls_run_id(run_copy):
    workspace, snapshot, manifest = _setup(run_copy)
    rid = snapshot["run_id"]
    listed = _json("store", "ls", "--run-id", "@latest")
    assert [r["path"] for r in listed] == [f["path"] for f in manifest["files"]]
    assert all(r["source"] == "manifest" and r["run_id"] == rid for r in listed)
    assert _json("store", "ls", "--run-id", rid[:14]) == listed  # a unique prefix
    table = invoke("store", "ls", "--run-id", rid)
    assert table.exit_code == 0 and f"file(s) of run {rid}" in table.stdout
    assert "manifest" in table.stdout and "application/vnd.apache.parquet" in table.stdout
    assert linked_artifacts(workspace, rid) == listed
    with pytest.raises(ItaVcError, match="no run"):
        linked_artifacts(workspace, "bt_2001_01_01_001_abc")


def test_attach_artifact_survives_index_rebuild(run_copy):
    from ita_vc.store import PersistentStore

    workspace, snapshot, _ = _setup(run_copy)
    rid = snapshot["run_id"]
    store = PersistentStore(workspace)
    ref = store.save_json({"note": "hand-made"}, "reports", "review.json")
    row = attach_artifact(workspace, rid, ref)
    assert row["source"] == "attached" and row["sha256"] == ref.sha256
    attach_artifact(workspace, rid, "results/reports/review.json")  # again: a no-op
    assert load_attached(workspace, rid) == [
        {"path": ref.path, "sha256": ref.sha256, "size": ref.size}
    ]
    assert (run_copy / attached_relpath(workspace, rid)).is_file()
    # the command line: paths from the current folder
    cli = invoke("store", "attach", "@latest", "metrics.json", cwd=run_copy / "results")
    assert cli.exit_code == 0 and "attached results/metrics.json" in cli.stdout
    assert invoke("store", "attach", "@latest", "/etc/hostname").exit_code == 2
    assert [e["path"] for e in load_attached(workspace, rid)] == [
        "results/metrics.json",
        ref.path,
    ]
    # the index is a cache: delete it, rebuild it, the link is still there
    os.unlink(workspace.index_path)
    assert invoke("index", "rebuild").exit_code == 0
    listed = _json("store", "ls", "--run-id", rid)
    sources = {r["path"]: r["source"] for r in listed}
    assert sources[ref.path] == "attached"
    assert sources["results/metrics.json"] == "manifest"  # the manifest's row wins


def test_attach_artifact_refuses(run_copy, tmp_path):
    workspace, snapshot, _ = _setup(run_copy)
    rid = snapshot["run_id"]
    with pytest.raises(UsageError):
        attach_artifact(workspace, "not-a-run", "results/metrics.json")
    with pytest.raises(ItaVcError, match="no run"):
        attach_artifact(workspace, "bt_2001_01_01_001_abc", "results/metrics.json")
    with pytest.raises(UsageError, match=r"'\.\.'"):
        attach_artifact(workspace, rid, "results/../../etc/passwd")
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    with pytest.raises(UsageError, match="outside the workspace"):
        attach_artifact(workspace, rid, outside)
    (run_copy / "results" / "escape.json").symlink_to(outside)
    with pytest.raises(UsageError, match="outside the workspace"):
        attach_artifact(workspace, rid, "results/escape.json")
    with pytest.raises(PersistentStoreError, match="no such artifact"):
        attach_artifact(workspace, rid, "results/missing.json")
    assert load_attached(workspace, rid) == []


def test_provenance_globs_ignore_manifests_and_attachments(run_copy):
    from ita_vc.snapshot.runner import _already_recorded

    workspace, snapshot, _ = _setup(run_copy)
    rid = snapshot["run_id"]
    attach_artifact(workspace, rid, "results/metrics.json")
    folder = run_copy / "provenance"
    assert sorted(p.name for p in folder.glob(f"{rid}*.json")) == sorted(
        [f"{rid}.json", f"{rid}.manifest.json", f"{rid}.attached.json"]
    )
    assert SnapshotStore(workspace).run_ids() == [rid]
    assert set(recorded_runs(workspace)) == {rid}
    found = _already_recorded(workspace, snapshot["run_hash"])
    assert found is not None and found["run_id"] == rid
    # the day's sequence number ignores the extra files' names
    import datetime as dt

    day = dt.datetime.strptime(rid[3:13], "%Y_%m_%d").replace(tzinfo=dt.UTC)
    assert new_run_id(folder, "backtest", day, "me").split("_")[4] == "002"


def _fake_run(repo, snapshot, *, version, data_hash):
    """A second recorded run (a snapshot file) of another rule version and data."""
    workspace = Workspace.at(repo)
    other = dict(snapshot)
    other["run_id"] = snapshot["run_id"][:-7] + "009_fff"
    other["rule_version"], other["data_hash"] = version, data_hash
    other["timestamp"] = "2099-01-01T00:00:00Z"
    other.pop("artifacts_manifest_sha")  # as a run from before manifests
    SnapshotStore(workspace).save(seal(other))
    return other["run_id"]


def test_runs_list_rule_and_data_filters(run_copy):
    snapshot = run_copy.report.snapshot
    rid = snapshot["run_id"]
    other = _fake_run(run_copy, snapshot, version="v1.1", data_hash="sha256:" + "ab" * 32)
    setup = snapshot["setup_id"]

    def ids(*args):
        return [r["run_id"] for r in _json("runs", "list", *args)]

    assert ids() == [other, rid]
    assert ids("--rule", f"{setup}@v1.0") == [rid]
    assert ids("--rule", f"{setup}@1.1") == [other]
    assert ids("--rule", f"{setup}@v2.0") == []
    data = snapshot["data_hash"]
    assert ids("--data", data[:13]) == [rid]
    assert ids("--data", data[7:15].upper()) == [rid]
    assert ids("--data", "ababab") == [other]
    assert ids("--rule", f"{setup}@v1.0", "--data", "ababab") == []
    assert ids("--limit", "1", "--rule", f"{setup}@v1.0") == [rid]
    for args, shown in (
        (("--rule", "nope"), "nope"),
        (("--rule", f"{setup}@1"), f"{setup}@1"),
        (("--rule", "Bad Name@v1.0"), "Bad Name@v1.0"),
        (("--data", "xyz123"), "xyz123"),
        (("--data", "abc"), "abc"),
    ):
        result = invoke("runs", "list", *args)
        assert result.exit_code == 2, (args, result.output)
        assert shown in result.stderr
    assert invoke("runs", "list", "--data", "sha256:abab").exit_code == 2
    assert parse_rule_ref(f" {setup}@1.0 ") == f"{setup}@v1.0"
    assert parse_data_prefix("ABCDEF") == "sha256:abcdef"


def test_lineage_by_path_and_by_hash(run_copy):
    workspace, snapshot, manifest = _setup(run_copy)
    rid = snapshot["run_id"]
    rule = f"{snapshot['setup_id']}@{snapshot['rule_version']}"
    trades = next(f for f in manifest["files"] if f["name"] == "trades.parquet")
    by_path = lineage(workspace, trades["path"])
    assert [(h.run_id, h.rule, h.via) for h in by_path.produced] == [
        (rid, rule, f"manifest {trades['path']}")
    ]
    assert by_path.used == [] and by_path.produced[0].commit == snapshot["git_commit_hash"]
    assert lineage(workspace, trades["sha256"][:15]).produced == by_path.produced
    rule_file = f"rules/{snapshot['setup_id']}/{snapshot['rule_version']}.yaml"
    used = lineage(workspace, rule_file)
    assert [(h.run_id, h.via) for h in used.used] == [(rid, f"dep {rule_file}")]
    assert used.produced == []
    data = lineage(workspace, snapshot["data_hash"])
    assert [(h.run_id, h.via) for h in data.used] == [(rid, f"data {snapshot['data_hash']}")]
    # the CLI: JSON, a table, nothing found (exit 0), bad queries (exit 2)
    assert _json("lineage", trades["path"]) == by_path.to_dict()
    table = invoke("lineage", rule_file)
    assert table.exit_code == 0 and "used" in table.stdout and rid in table.stdout
    nothing = invoke("lineage", "sha256:" + "0" * 64)
    assert nothing.exit_code == 0 and "no run produced or used" in nothing.stdout
    for bad in ("no-such-file.txt", "results", "../outside", "/etc/hostname", "abc"):
        result = invoke("lineage", bad)
        assert result.exit_code == 2, (bad, result.output)


def _answers(cwd, queries):
    return {q: _json("lineage", q, cwd=cwd) for q in queries}


def test_lineage_on_a_fresh_clone_after_index_rebuild(run_copy, tmp_path):
    workspace, snapshot, manifest = _setup(run_copy)
    rid = snapshot["run_id"]
    attach_artifact(workspace, rid, "results/metrics.json")
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "manifest and attachment")
    rule_file = f"rules/{snapshot['setup_id']}/{snapshot['rule_version']}.yaml"
    queries = [
        rule_file,
        "configs/indicators.yaml",
        snapshot["data_hash"],
        snapshot["data_hash"][:15],
        *(f["sha256"] for f in manifest["files"]),
        *(o["md5"] for o in snapshot["outputs"]),
        snapshot["params_hash"],
    ]
    assert invoke("index", "rebuild", cwd=run_copy).exit_code == 0
    before = _answers(run_copy, queries)
    files_before = _json("store", "ls", "--run-id", rid, cwd=run_copy)
    assert all(before[q]["produced"] or before[q]["used"] for q in queries)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(run_copy), str(clone)], cwd=tmp_path)
    assert not Workspace.at(clone).index_path.exists()
    rebuilt = invoke("index", "rebuild", cwd=clone)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert _answers(clone, queries) == before
    assert _json("store", "ls", "--run-id", rid, cwd=clone) == files_before


def test_a_malformed_attachment_file_is_reported_not_fatal(run_copy):
    from ita_vc.errors import IntegrityError

    workspace, snapshot, _ = _setup(run_copy)
    rid = snapshot["run_id"]
    (run_copy / attached_relpath(workspace, rid)).write_text('{"run_id": "other"}')
    with pytest.raises(IntegrityError, match="attached.json"):
        load_attached(workspace, rid)
    assert sync_run_links(workspace) == 1  # `index rebuild` goes on: the manifest's links
    rows = MetadataIndex(workspace.index_path).rows("run_artifacts", run_id=rid)
    assert rows and {r["source"] for r in rows} == {"manifest"}
    (run_copy / "provenance" / f"{rid}.manifest.json").write_text("[]")
    sync_run_links(workspace)
    rows = MetadataIndex(workspace.index_path).rows("run_artifacts", run_id=rid)
    assert rows and {r["source"] for r in rows} == {"snapshot"}
    result = invoke("store", "attach", rid, "results/metrics.json")
    assert result.exit_code == 6 and "attached.json" in result.stderr
