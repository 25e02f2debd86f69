"""snapshot verify (light and deep), reproduce, and the runs commands."""

from __future__ import annotations

import json

import pytest

from ita_vc.snapshot.runs import diff_runs, keep_run, list_runs, pinned_runs
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import invoke


def _cache_object(repo, md5: str):
    return repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def _failures(report):
    return {c.name: c.detail for c in report.checks if not c.ok}


def test_verify_passes_light_and_deep(ran_repo):
    workspace = Workspace.at(ran_repo)
    run_id = ran_repo.report.run_id
    light = verify_run(workspace, run_id)
    assert light.ok, _failures(light)
    assert [c.name for c in light.checks] == [
        "snapshot hash",
        "rule params_hash",
        "git-tracked deps at the run's commit",
        "objects in the DVC cache",
        "manifest",
    ]
    deep = verify_run(workspace, run_id, deep=True)
    assert deep.ok, _failures(deep)
    assert deep.bytes_hashed > 100_000


def test_an_edited_snapshot_is_reported_as_tampered(run_copy):
    run_id = run_copy.report.run_id
    path = run_copy / f"provenance/{run_id}.json"
    data = json.loads(path.read_text())
    data["metrics"]["Sharpe Ratio"] = 9.99
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    report = verify_run(Workspace.at(run_copy), run_id)
    assert "tampered" in _failures(report)["snapshot hash"]
    result = invoke("snapshot", "verify", run_id)
    assert result.exit_code == 6 and "FAIL" in result.stdout


def test_one_changed_byte_of_a_cached_out_is_named_by_deep_verify(run_copy):
    snapshot = run_copy.report.snapshot
    trades = next(o for o in snapshot["outputs"] if o["path"] == "results/metrics.json")
    obj = _cache_object(run_copy, trades["md5"])
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[10] ^= 1
    obj.write_bytes(bytes(data))
    run_id = run_copy.report.run_id
    assert verify_run(Workspace.at(run_copy), run_id).ok  # presence only: not re-hashed
    deep = verify_run(Workspace.at(run_copy), run_id, deep=True)
    assert "out results/metrics.json" in _failures(deep)["deep: object content"]


def test_one_changed_byte_of_the_candles_is_named(run_copy):
    stages = run_copy.report.snapshot["dvc_lock"]["stages"]
    dep = next(d for d in stages["prepare"]["deps"] if d["path"].startswith("data/candles"))
    obj = _cache_object(run_copy, dep["md5"])
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[-20] ^= 1
    obj.write_bytes(bytes(data))
    deep = verify_run(Workspace.at(run_copy), run_copy.report.run_id, deep=True)
    detail = _failures(deep)["deep: object content"]
    assert "dep data/candles/binance-spot/BTCUSDT/1m.parquet" in detail


def test_a_missing_cache_object_is_named_without_rehashing(run_copy):
    out = next(o for o in run_copy.report.snapshot["outputs"] if o["path"] == "results/backtest")
    manifest = json.loads(_cache_object(run_copy, out["md5"]).read_text())
    trades = next(e for e in manifest if e["relpath"] == "trades.parquet")
    _cache_object(run_copy, trades["md5"]).unlink()
    report = verify_run(Workspace.at(run_copy), run_copy.report.run_id)
    assert "out results/backtest/trades.parquet" in _failures(report)["objects in the DVC cache"]


def test_a_changed_rule_file_fails_the_rule_check(run_copy):
    path = run_copy / "rules/example_ma_cross/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    report = verify_run(Workspace.at(run_copy), run_copy.report.run_id)
    assert "params_hash" in _failures(report)["rule params_hash"]


@pytest.mark.slow
def test_reproduce_an_old_run_bit_exactly_after_later_changes(run_copy):
    from ita_vc.rules import RuleRegistry
    from ita_vc.snapshot.reproduce import reproduce_run
    from ita_vc.snapshot.runner import run_pipeline

    workspace = Workspace.at(run_copy)
    first = run_copy.report
    RuleRegistry(workspace).bump("example_ma_cross", sets=["indicators.0.params.fast=5"])
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "v1.1")
    second = run_pipeline(workspace, version="1.1", overrides=[("backtest.fee_pct", 0.05)])
    assert second.snapshot["metrics"] != first.snapshot["metrics"]
    report = reproduce_run(workspace, first.run_id)
    assert report.bit_exact, (report.output_diffs, report.metric_diffs, report.input_diffs)
    assert report.commit == first.snapshot["git_commit_hash"]
    assert run_copy.git("status", "--porcelain").stdout == ""  # the workspace is untouched
    assert len(run_copy.git("worktree", "list").stdout.splitlines()) == 1  # removed again
    summary = json.loads((run_copy / "results/backtest/summary.json").read_text())
    assert summary["rule_version"] == "v1.1"  # still the second run's outputs
    cli = invoke("reproduce", first.run_id)
    assert cli.exit_code == 0 and "reproduced bit-exactly" in cli.stdout


@pytest.mark.slow
def test_runs_list_show_diff_and_keep(run_copy):
    from ita_vc.snapshot.runner import run_pipeline

    workspace = Workspace.at(run_copy)
    first = run_copy.report.run_id
    second = run_pipeline(workspace, overrides=[("backtest.slippage_pct", 0.05)]).run_id
    rows = list_runs(workspace)
    assert [r["run_id"] for r in rows] == [second, first]  # newest first
    by_sharpe = list_runs(workspace, sort="Sharpe Ratio", limit=1)
    assert len(by_sharpe) == 1
    with pytest.raises(Exception, match="unknown metric"):
        list_runs(workspace, sort="Happiness")
    diff = {(d.section, d.key): (d.a, d.b) for d in diff_runs(workspace, first, second)}
    assert diff[("params", "backtest.slippage_pct")] == (0.01, 0.05)
    assert ("metrics", "Total Return [%]") in diff
    tag = keep_run(workspace, first, "baseline for the paper")
    assert tag == f"ita/keep/{first}"
    assert pinned_runs(workspace) == {first: "baseline for the paper"}
    listed = json.loads(invoke("runs", "list", "--json").stdout)
    assert {r["run_id"]: r["kept"] for r in listed} == {first: True, second: False}
    shown = json.loads(invoke("runs", "show", first, "--json").stdout)
    assert shown["run_id"] == first
    assert "slippage_pct" in invoke("runs", "diff", first, second).stdout
    assert invoke("runs", "keep", "bt_2020_01_01_001_abc").exit_code == 1
    assert invoke("runs", "show", "../etc/passwd").exit_code == 2  # a usage error
    assert invoke("snapshot", "verify", "../x").exit_code == 2
    assert invoke("runs", "list", "--limit", "-1").exit_code == 2


def test_index_rebuild_and_fresh_clones_see_runs_and_pins(run_copy, tmp_path):
    from ita_vc.store.artifacts import PersistentStore

    workspace = Workspace.at(run_copy)
    keep_run(workspace, run_copy.report.run_id, "pinned")
    (run_copy / ".ita/index.sqlite").unlink()
    PersistentStore(workspace).rebuild_index()
    assert [r["run_id"] for r in list_runs(workspace)] == [run_copy.report.run_id]
    clone = tmp_path / "clone"
    run_copy.git("clone", "-q", str(run_copy), str(clone))
    assert pinned_runs(Workspace.at(clone)) == {run_copy.report.run_id: "pinned"}
    assert [r["run_id"] for r in list_runs(Workspace.at(clone))] == [run_copy.report.run_id]


@pytest.mark.slow
def test_run_cli(run_copy):
    result = invoke("run", "-S", "backtest.fee_pct=0.1", "--note", "cli")
    assert result.exit_code == 0, result.output
    assert "run bt_" in result.stdout and "Sharpe Ratio" in result.stdout
    dirty = run_copy / "scratch.txt"
    dirty.write_text("x")
    refused = invoke("run")
    assert refused.exit_code == 12 and "--allow-dirty" in refused.stderr
    assert "running dvc repro" not in refused.output  # checks before any progress
    assert invoke("snapshot", "verify", "--all").exit_code == 0
    assert invoke("snapshot", "verify").exit_code == 2
