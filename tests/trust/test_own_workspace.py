"""The promises of a user's own workspace (issue: own workspace, items 1, 7, 11, 13): reproduce
with the tool's own hooks installed, cleanup after a failed reproduce, stage selection, live
runs only of active versions, and refusals that say what to do first."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from ita_vc.errors import DataValidationError, RuleValidationError, VcsError
from ita_vc.snapshot.reproduce import reproduce_run
from ita_vc.snapshot.runner import run_pipeline
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import invoke


def _reproduce_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("ita-vc-reproduce-*")}


def test_reproduce_works_with_the_hooks_ita_vc_installs(run_copy):
    assert invoke("hooks", "install").exit_code == 0
    hooks = run_copy / ".git" / "hooks"
    assert (hooks / "post-checkout").is_file()  # DVC's, which broke `git worktree add`
    before = run_copy.git("worktree", "list").stdout
    result = invoke("reproduce", run_copy.report.run_id)
    assert result.exit_code == 0, result.output
    assert "reproduced bit-exactly" in result.stdout
    assert run_copy.git("worktree", "list").stdout == before


def test_a_failed_reproduce_leaves_no_worktree_and_no_folder(run_copy, tmp_path, monkeypatch):
    from ita_vc.vcs.dvc import cache_dir

    private = tmp_path / "tmp"  # this test's own temp root: other processes' folders never count
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    workspace = Workspace.at(run_copy)
    before_dirs = _reproduce_dirs()
    before = run_copy.git("worktree", "list").stdout
    cache = cache_dir(run_copy) / "files" / "md5"
    moved = run_copy.parent / "cache-aside"
    cache.rename(moved)  # the recorded inputs cannot be checked out
    try:
        with pytest.raises(VcsError, match="no DVC remote is configured"):
            reproduce_run(workspace, run_copy.report.run_id)
    finally:
        moved.rename(cache)
    assert run_copy.git("worktree", "list").stdout == before
    assert _reproduce_dirs() == before_dirs == set()
    with pytest.raises(VcsError):  # a commit that is not there: git refuses the worktree
        snapshot = run_copy / run_copy.report.snapshot_path
        text = snapshot.read_text()
        snapshot.write_text(text.replace(run_copy.report.snapshot["git_commit_hash"], "0" * 40))
        reproduce_run(workspace, run_copy.report.run_id)
    assert run_copy.git("worktree", "list").stdout == before
    assert _reproduce_dirs() == before_dirs


@pytest.mark.slow
def test_runs_choose_their_stages_and_record_which_ran(run_copy):
    workspace = Workspace.at(run_copy)
    assert run_copy.report.snapshot["stages"]["grid"] == "not_run"
    assert not (run_copy / "results" / "grid").exists()  # the default run left the grid alone
    with_grid = run_pipeline(workspace, stages=["report", "grid"], overrides=[("grid.top_k", 3)])
    assert with_grid.snapshot["stages"] == {
        "prepare": "run",
        "backtest": "run",
        "report": "run",
        "grid": "run",
        "validate": "not_run",
    }
    assert "results/grid" in {o["path"] for o in with_grid.snapshot["outputs"]}
    assert (run_copy / "results" / "grid" / "topk.parquet").is_file()
    assert verify_run(workspace, with_grid.run_id).ok
    only_backtest = run_pipeline(
        workspace, stages=["backtest"], overrides=[("backtest.fee_pct", 0.3)]
    )
    assert only_backtest.snapshot["stages"] == {
        "prepare": "run",
        "backtest": "run",
        "report": "not_run",
        "grid": "not_run",
        "validate": "not_run",
    }
    assert {o["path"] for o in only_backtest.snapshot["outputs"]} == {
        "results/prepared",
        "results/backtest",
        "results/metrics.json",
    }
    assert verify_run(workspace, only_backtest.run_id).ok
    result = reproduce_run(workspace, only_backtest.run_id)
    assert result.bit_exact and result.stages == ["prepare", "backtest"]


@pytest.mark.slow
def test_live_runs_need_the_active_version_and_the_status_is_recorded(run_copy):
    from ita_vc.rules import RuleRegistry

    workspace = Workspace.at(run_copy)
    registry = RuleRegistry(workspace)
    registry.deprecate("example_ma_cross", "1.0", reason="superseded")
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "deprecate v1.0")
    with pytest.raises(
        RuleValidationError,
        match="is deprecated \\(superseded\\): only the active version runs live",
    ) as info:
        run_pipeline(workspace, mode="live")
    assert info.value.exit_code == 4
    backtest = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.2)])
    assert backtest.snapshot["rule_status"] == "deprecated"
    registry.bump("example_ma_cross", sets=["indicators.0.params.fast=5"])
    registry.activate("example_ma_cross", "1.1")
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "v1.1 active")
    live = run_pipeline(workspace, mode="live", version="1.1")
    assert live.run_id.startswith("lv_") and live.snapshot["rule_status"] == "active"
    assert live.snapshot["meta"]["run_mode"] == "live"


def test_a_run_says_what_to_import_or_create_first(tmp_repo):
    workspace = Workspace.at(tmp_repo)
    with pytest.raises(DataValidationError, match="ita-vc rule new example_ma_cross"):
        run_pipeline(workspace)
    from ita_vc.rules import RuleRegistry

    RuleRegistry(workspace).new("example_ma_cross")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "rule")
    with pytest.raises(
        DataValidationError, match="ita-vc data import FILE --market binance-spot --symbol BTCUSDT"
    ):
        run_pipeline(workspace)
    result = invoke("run")
    assert result.exit_code == 11 and "dvc repro" not in result.stdout
