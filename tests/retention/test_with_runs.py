"""Retention around real `ita-vc run` runs: pins protect, reproduce still works after gc."""

from __future__ import annotations

import pytest

from ita_vc.retention.apply import compute_plan, execute_plan
from ita_vc.retention.policy import load_policy
from ita_vc.snapshot.reproduce import reproduce_run
from ita_vc.snapshot.runner import run_pipeline
from ita_vc.snapshot.runs import keep_run
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace

STRICT = """\
annotated_pngs:   {paths: ["results/**/*.png"], retain_days: 0, strategy: delete}
backtest_results: {paths: ["results/**"], retain_days: null, strategy: keep_forever}
keep_last_runs: 0
max_runs: null
exceptions: {tags: [], active_rules: false}
"""


def _gc(repo):
    workspace = Workspace.at(repo)
    plan, facts = compute_plan(workspace)
    return execute_plan(workspace, plan, load_policy(repo), facts)


def _strict_policy_then_a_second_run(repo):
    """Commit the strict policy, then run again with other fees: (workspace, first run id,
    second run id)."""
    workspace = Workspace.at(repo)
    (repo / "configs/retention.yaml").write_text(STRICT)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "strict retention")
    second = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    return workspace, repo.report.run_id, second.run_id


@pytest.mark.slow
def test_a_pinned_run_survives_gc_and_reproduces(run_copy):
    workspace, first, second = _strict_policy_then_a_second_run(run_copy)
    keep_run(workspace, first, "keep it")
    report = _gc(run_copy)
    assert report.trashed == []  # the first run's charts are pinned; the second's in use
    assert verify_run(workspace, first).ok and verify_run(workspace, second).ok
    result = reproduce_run(workspace, first)
    assert result.bit_exact, (result.output_diffs, result.metric_diffs)


def test_without_the_pin_the_old_charts_go_to_the_trash(run_copy):
    workspace, first, _second = _strict_policy_then_a_second_run(run_copy)
    report = _gc(run_copy)
    assert sorted(t["path"] for t in report.trashed) == [
        "results/report/drawdown.png",
        "results/report/equity.png",
        "results/report/price.png",
    ]
    lost = verify_run(workspace, first)
    detail = {c.name: c.detail for c in lost.checks if not c.ok}["objects in the DVC cache"]
    assert "results/report/equity.png" in detail and "in the trash" in detail
