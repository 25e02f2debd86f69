"""`ita-vc run` and the snapshot contract, on a real git + DVC workspace."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from ita_vc.errors import (
    DataValidationError,
    DirtyWorkspaceError,
    PersistentStoreError,
    UsageError,
    WorkspaceLockedError,
)
from ita_vc.snapshot.capture import SnapshotStore, snapshot_hash
from ita_vc.snapshot.runner import apply_param_overrides, run_pipeline
from ita_vc.utils.hashing import hash_canonical
from ita_vc.workspace import Workspace
from tests.helpers import lock_held_elsewhere

FIELDS = {
    "artifacts_manifest_sha",
    "preset_ref",
    "schema_version",
    "run_id",
    "setup_id",
    "rule_version",
    "params_hash",
    "data_hash",
    "data_range",
    "market",
    "symbol",
    "timeframe",
    "config_hash",
    "engine_version",
    "git_commit_hash",
    "git_branch",
    "git_dirty",
    "dirty_paths",
    "dvc_lock",
    "dvc_lock_sha256",
    "params",
    "metrics",
    "outputs",
    "env",
    "timestamp",
    "meta",
    "snapshot_sha256",
    # schema_version 2
    "rule_status",
    "ita_vc_version",
    "stages",
    "run_hash",
    # schema_version 3
    "validation",
}


def test_the_snapshot_has_every_field_and_each_is_right(ran_repo):
    report = ran_repo.report
    s = report.snapshot
    assert set(s) == FIELDS
    assert re.fullmatch(r"bt_\d{4}_\d{2}_\d{2}_001_[0-9a-f]{3}", s["run_id"])
    assert (s["setup_id"], s["rule_version"], s["schema_version"]) == (
        "example_ma_cross",
        "v1.0",
        4,
    )
    assert s["validation"] is None  # the validate stage did not run
    rule = yaml.safe_load((ran_repo / "rules/example_ma_cross/v1.0.yaml").read_text())
    assert s["params_hash"] == rule["params_hash"]
    summary = json.loads((ran_repo / "results/backtest/summary.json").read_text())
    assert s["data_hash"] == summary["data_hash"] and s["config_hash"] == summary["config_hash"]
    assert s["data_range"] == ["2025-01-04T00:00:00Z", summary["range"]["last_bar"]]
    assert (s["market"], s["symbol"], s["timeframe"]) == ("binance-spot", "BTCUSDT", "1h")
    assert s["git_commit_hash"] == ran_repo.head_before  # the code commit the run started from
    assert s["git_branch"] == "main" and s["git_dirty"] is False and s["dirty_paths"] == []
    lock_bytes = ran_repo.git("show", "HEAD:dvc.lock").stdout.encode()
    assert s["dvc_lock_sha256"] == "sha256:" + hashlib.sha256(lock_bytes).hexdigest()
    assert s["dvc_lock"]["stages"] == yaml.safe_load(lock_bytes)["stages"]
    assert s["params"]["rule"] == {"setup_id": "example_ma_cross", "version": "1.0"}
    assert s["metrics"] == json.loads((ran_repo / "results/metrics.json").read_text())
    outs = {o["path"]: o["md5"] for o in s["outputs"]}
    assert set(outs) == {
        "results/prepared",
        "results/backtest",
        "results/metrics.json",
        "results/report",
        "results/plots/equity.csv",
    }  # the grid did not run
    assert s["stages"] == {
        "prepare": "run",
        "backtest": "run",
        "report": "run",
        "grid": "not_run",
        "validate": "not_run",
    }
    assert s["rule_status"] == "inactive" and s["run_hash"].startswith("sha256:")
    from ita_vc import __version__

    assert s["ita_vc_version"] == __version__
    assert outs["results/backtest"].endswith(".dir")
    env = s["env"]
    assert {"python", "os", "cpu", "gpu", "packages", "packages_sha256"} <= set(env)
    assert "dvc" in env["packages"] and "ita-vc" in env["packages"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["timestamp"])
    assert s["meta"] == {
        "author": "Test User",
        "run_mode": "backtest",
        "flow": "dvc repro: prepare -> backtest -> report",
        "note": "first run",
    }
    assert s["snapshot_sha256"] == snapshot_hash(s)
    assert s["preset_ref"] is None  # params.yaml names no preset
    # the manifest: every file of every output, hashed, and the snapshot's sha of it
    manifest = json.loads((ran_repo / f"provenance/{s['run_id']}.manifest.json").read_text())
    assert s["artifacts_manifest_sha"] == hash_canonical(manifest)
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = sorted(
        p.relative_to(ran_repo).as_posix()
        for out in outs
        for p in ([ran_repo / out] if (ran_repo / out).is_file() else (ran_repo / out).rglob("*"))
        if p.is_file()
    )
    assert sorted(files) == on_disk and len(files) > len(outs)
    for rel, entry in files.items():
        data = (ran_repo / rel).read_bytes()
        assert entry["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data) and entry["name"] == rel.rsplit("/", 1)[-1]
    assert files["results/backtest/trades.parquet"]["mime"] == "application/vnd.apache.parquet"
    assert files["results/metrics.json"]["mime"] == "application/json"


def test_the_run_is_committed_and_indexed(ran_repo):
    report = ran_repo.report
    log = ran_repo.git("log", "-1", "--format=%s").stdout.strip()
    assert log == f"ita-vc run {report.run_id}: example_ma_cross v1.0 (backtest)"
    committed = ran_repo.git("show", "--name-only", "--format=", "HEAD").stdout.split()
    assert f"provenance/{report.run_id}.json" in committed and "dvc.lock" in committed
    assert f"provenance/{report.run_id}.manifest.json" in committed
    assert ran_repo.git("status", "--porcelain").stdout == ""
    on_disk = json.loads((ran_repo / report.snapshot_path).read_text())
    assert on_disk == report.snapshot
    provenance = SnapshotStore(Workspace.at(ran_repo))
    assert provenance.load_snapshot(report.run_id) == report.snapshot
    (row,) = provenance.store.index.runs(run_id=report.run_id)
    assert row["setup_id"] == "example_ma_cross" and row["snapshot_path"] == report.snapshot_path
    log_text = (ran_repo / "logs/ita-vc.log").read_text()
    assert f"Run snapshot saved: {report.run_id} -> {report.snapshot_path}" in log_text


def test_data_hash_checks_prepared_and_canonical_candles(ran_repo):
    provenance = SnapshotStore(Workspace.at(ran_repo))
    run_id = ran_repo.report.run_id
    assert provenance.verify_data_hash(run_id, ran_repo / "results/prepared/candles.parquet")
    assert provenance.verify_data_hash(
        run_id, ran_repo / "data/candles/binance-spot/BTCUSDT/1m.parquet"
    )


def test_snapshots_are_never_overwritten(run_copy):
    provenance = SnapshotStore(Workspace.at(run_copy))
    snapshot = dict(run_copy.report.snapshot)
    with pytest.raises(PersistentStoreError, match="never overwritten"):
        provenance.save(snapshot)


def test_a_second_run_gets_the_next_number_and_overrides_are_recorded(run_copy):
    report = run_pipeline(
        Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.2)], note="higher fees"
    )
    assert re.fullmatch(r"bt_\d{4}_\d{2}_\d{2}_002_[0-9a-f]{3}", report.run_id)
    assert report.snapshot["params"]["backtest"]["fee_pct"] == 0.2
    assert "fee_pct: 0.2" in (run_copy / "params.yaml").read_text()
    assert report.snapshot["metrics"] != run_copy.report.snapshot["metrics"]


def test_a_dirty_tree_is_refused_unless_allowed_and_then_flagged(run_copy):
    (run_copy / "notes.txt").write_text("scratch")
    workspace = Workspace.at(run_copy)
    with pytest.raises(
        DirtyWorkspaceError, match=r"uncommitted changes: notes.txt.*--allow-dirty"
    ) as info:
        run_pipeline(workspace)
    assert info.value.exit_code == 12
    report = run_pipeline(workspace, allow_dirty=True)
    assert report.snapshot["git_dirty"] is True and report.snapshot["dirty_paths"] == ["notes.txt"]


def test_an_uncommitted_rule_version_is_refused(run_copy):
    from ita_vc.rules import RuleRegistry

    workspace = Workspace.at(run_copy)
    RuleRegistry(workspace).bump("example_ma_cross", sets=["indicators.0.params.fast=5"])
    params_before = (run_copy / "params.yaml").read_text()
    with pytest.raises(DirtyWorkspaceError, match=r"v1.1.yaml is not committed"):
        run_pipeline(workspace, version="v1.1", allow_dirty=True)
    assert (run_copy / "params.yaml").read_text() == params_before


def test_bad_params_are_refused_and_params_restored(run_copy):
    workspace = Workspace.at(run_copy)
    before = (run_copy / "params.yaml").read_text()
    with pytest.raises(DataValidationError, match="unknown key"):
        run_pipeline(workspace, overrides=[("backtest.fees", 1)])
    with pytest.raises(UsageError, match="--mode"):
        run_pipeline(workspace, mode="paper")
    with pytest.raises(DataValidationError, match="--setup"):
        run_pipeline(workspace, setup_id="bad/id")
    assert (run_copy / "params.yaml").read_text() == before


def test_a_repeated_run_is_already_recorded_unless_forced(run_copy):
    from tests.helpers import invoke

    head = run_copy.git("rev-parse", "HEAD").stdout
    first = run_copy.report.run_id
    again = run_pipeline(Workspace.at(run_copy))
    assert again.already and again.run_id == first
    assert run_copy.git("rev-parse", "HEAD").stdout == head  # no new commit, no new snapshot
    result = invoke("run")
    assert result.exit_code == 0 and f"already recorded as {first}" in result.stdout
    forced = run_pipeline(Workspace.at(run_copy), force=True)
    assert not forced.already and forced.run_id != first
    assert forced.snapshot["run_hash"] == run_copy.report.snapshot["run_hash"]


def test_no_commit_leaves_the_run_staged(run_copy):
    report = run_pipeline(Workspace.at(run_copy), commit=False, force=True)
    assert report.committed is None and report.warnings
    staged = run_copy.git("diff", "--cached", "--name-only").stdout.split()
    assert f"provenance/{report.run_id}.json" in staged


def test_concurrent_runs_do_not_interleave(run_copy):
    workspace = Workspace.at(run_copy)
    with (
        lock_held_elsewhere(workspace),
        pytest.raises(WorkspaceLockedError, match="another ita-vc command is running"),
    ):
        run_pipeline(workspace)


def test_param_overrides_keep_comments_and_quote_versions():
    text = '# top\nrule:\n  setup_id: a  # keep\n  version: "1.0"\n'
    out = apply_param_overrides(text, [("rule.version", "v1.10"), ("data.symbol", "ETHUSDT")])
    assert "# top" in out and "# keep" in out
    assert 'version: "1.10"' in out and "symbol: ETHUSDT" in out


def test_param_overrides_write_dates_as_strings():
    from ita_vc.yaml_rewrite import parse_set_value

    out = apply_param_overrides(
        "data: {}\n",
        [
            ("data.start", parse_set_value("2006-01-01")),
            ("data.end", parse_set_value("2007-01-01 10:00:00")),
        ],
    )
    assert yaml.safe_load(out)["data"] == {"start": "2006-01-01", "end": "2007-01-01T10:00:00"}
    with pytest.raises(DataValidationError, match="a bytes is not a params value"):
        apply_param_overrides("", [("data.x", parse_set_value("!!binary aGk="))])


@pytest.mark.slow
def test_periods_per_year_through_the_pinned_pipeline(run_copy):
    """The stage's engine pin decides: under --engine 1.0 periods_per_year is refused before
    anything runs (with its line); under 1.1 it reaches the backtest and is recorded."""
    from ita_vc.backtest.run import ENGINE_VERSION

    workspace = Workspace.at(run_copy)
    dvc_yaml = (run_copy / "dvc.yaml").read_text()
    (run_copy / "dvc.yaml").write_text(
        dvc_yaml.replace(f"--engine {ENGINE_VERSION}", "--engine 1.0")
    )
    run_copy.git("commit", "-q", "-am", "pin engine 1.0")
    before = (run_copy / "params.yaml").read_text()
    with pytest.raises(
        DataValidationError,
        match=r"params\.yaml:\d+: backtest\.periods_per_year: "
        r"252: needs engine 1\.1",
    ):
        run_pipeline(workspace, overrides=[("backtest.periods_per_year", 252)])
    assert (run_copy / "params.yaml").read_text() == before
    (run_copy / "dvc.yaml").write_text(dvc_yaml)
    run_copy.git("commit", "-q", "-am", f"pin engine {ENGINE_VERSION}")
    report = run_pipeline(workspace, overrides=[("backtest.periods_per_year", 252)])
    summary = json.loads((run_copy / "results/backtest/summary.json").read_text())
    assert summary["engine_version"] == "1.1" == report.snapshot["engine_version"]
    assert summary["periods_per_year"] == 252
    first = run_copy.report.snapshot["metrics"]
    assert report.snapshot["metrics"]["Sharpe Ratio"] != first["Sharpe Ratio"]
    assert report.snapshot["metrics"]["Total Return [%]"] == first["Total Return [%]"]
