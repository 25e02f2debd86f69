"""Retention never trashes what a run, a pin or the workspace needs (issue: nothing lost, 2-4, 9).

Every test runs real `ita-vc run`s (dvc repro, git commits) in a copy of one recorded workspace,
under a retention policy that would delete every chart at once (0 days).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time

import pytest

from ita_vc.retention.apply import collect_garbage
from ita_vc.snapshot.runner import run_pipeline
from ita_vc.snapshot.runs import keep_run
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke, ita_vc_subprocess

STRICT = """\
annotated_pngs:   {paths: ["results/**/*.png"], retain_days: 0, strategy: delete}
backtest_results: {paths: ["results/**"], retain_days: null, strategy: keep_forever}
keep_last_runs: 0
max_runs: null
exceptions: {tags: [important], active_rules: false}
"""


def _strict(repo):
    (repo / "configs/retention.yaml").write_text(STRICT)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "strict retention")


def _trashed_paths(report):
    return sorted(t["path"] for t in report.trashed)


@pytest.mark.slow
def test_a_pinned_run_on_another_branch_keeps_its_objects(run_copy):
    _strict(run_copy)
    run_copy.git("checkout", "-q", "-b", "exp")
    workspace = Workspace.at(run_copy)
    exp = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)], note="on exp")
    assert invoke("runs", "keep", exp.run_id, "--reason", "exp result").exit_code == 0
    run_copy.git("checkout", "-q", "main")
    run_copy.dvc("checkout", "-q", "--with-deps", "report")
    assert not (run_copy / exp.snapshot_path).exists()  # the run lives only on exp
    _plan, _facts, report = collect_garbage(workspace)
    # main's own old charts may go; nothing of the pinned exp run does
    assert "pinned run" in json.dumps([d.to_dict() for d in _plan.decisions])
    run_copy.git("checkout", "-q", "exp")
    run_copy.dvc("checkout", "-q", "--with-deps", "report")
    result = verify_run(Workspace.at(run_copy), exp.run_id)
    assert result.ok, result.failures()
    assert report.trashed == []


def test_pinning_a_run_of_another_branch_tags_the_commit_that_recorded_it(run_copy):
    run_copy.git("checkout", "-q", "-b", "exp")
    exp = run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.3)])
    run_copy.git("checkout", "-q", "main")
    result = invoke("runs", "keep", exp.run_id)
    assert result.exit_code == 0, result.output
    tagged = run_copy.git("rev-list", "-n1", f"ita/keep/{exp.run_id}").stdout.strip()
    assert tagged == exp.committed


@pytest.mark.slow
def test_the_important_tag_protects_the_run_whose_commit_it_tags(run_copy):
    _strict(run_copy)
    workspace = Workspace.at(run_copy)
    a = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.2)])
    run_copy.git("tag", "important", a.committed)  # the user tags the run's commit
    b = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    c = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.4)])
    plan, _facts, report = collect_garbage(workspace)
    assert verify_run(workspace, a.run_id).ok  # protected by the tag on its own commit
    assert not verify_run(workspace, b.run_id).ok  # b is not (it started from a's commit)
    assert not verify_run(workspace, run_copy.report.run_id).ok
    assert verify_run(workspace, c.run_id).ok  # c is the workspace
    assert any("tag important" in d.reason for d in plan.decisions)
    assert _trashed_paths(report) == ["results/report/drawdown.png"] * 2 + [
        "results/report/equity.png"
    ] * 2 + [
        "results/report/price.png"
    ]  # the charts of the first run and of b (whose trades' P&L signs, which colour the
    # price chart, are those of one other run: one price chart object less)


_GC_HOLDS_THE_LOCK = textwrap.dedent("""
    import pathlib, sys, time
    import ita_vc.retention.apply as apply
    started, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    real = apply.compute_plan
    def compute_plan(*args, **kwargs):  # inside the lock: say so, wait to be released
        started.touch()
        while not release.exists():
            time.sleep(0.02)
        return real(*args, **kwargs)
    apply.compute_plan = compute_plan
    from ita_vc.cli import main
    sys.argv = ["ita-vc", "gc", "--yes"]
    main()
""")


def _wait_for(path, proc, what):
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, f"{what} ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{what} never got there"
        time.sleep(0.02)


@pytest.mark.slow
def test_gc_and_run_exclude_each_other(run_copy):
    _strict(run_copy)
    started, release = run_copy.parent / "gc-started", run_copy.parent / "gc-release"
    gc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", _GC_HOLDS_THE_LOCK, str(started), str(release)],
        cwd=run_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(started, gc, "gc")
        refused = ita_vc_subprocess("run", "-S", "backtest.fee_pct=0.3", cwd=run_copy)
        assert refused.returncode == 10, refused.stderr
        assert "ita-vc gc" in refused.stderr and "--wait" in refused.stderr
        assert "dvc repro" not in refused.stdout  # nothing started
        waiting = subprocess.Popen(
            [str(VENV_BIN / "ita-vc"), "run", "-S", "backtest.fee_pct=0.3", "--wait", "300"],
            cwd=run_copy,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        release.touch()
        assert gc.wait(timeout=300) == 0, gc.communicate()
        out, err = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, err
    finally:
        release.touch()
        if gc.poll() is None:
            gc.kill()
        gc.communicate()
    run_id = re.search(r"bt_\d{4}_\d\d_\d\d_\d{3}_[0-9a-f]{3}", out).group(0)
    result = verify_run(Workspace.at(run_copy), run_id)
    assert result.ok, result.failures()  # gc ran first; the run's objects are all there
    # and the other way round: gc waits for (or is refused by) a command holding the lock
    from tests.helpers import lock_held_elsewhere

    with lock_held_elsewhere(Workspace.at(run_copy)):
        assert invoke("gc", "--yes").exit_code == 10
        assert invoke("trash", "purge", "--older-than", "0").exit_code == 10
        assert invoke("trash", "restore", "--all").exit_code == 10
        assert invoke("runs", "keep", run_id).exit_code == 10


_KILL_AT_MOVE = textwrap.dedent("""
    import os, signal, sys
    from ita_vc.cli import main
    limit, real_replace, moves = int(sys.argv[1]), os.replace, [0]
    def replace(src, dst, *args, **kwargs):
        if "/.dvc/cache/" in os.fspath(src):
            if moves[0] == limit:
                os.kill(os.getpid(), signal.SIGKILL)
            moves[0] += 1
        return real_replace(src, dst, *args, **kwargs)
    os.replace = replace
    sys.argv = ["ita-vc", "gc", "--yes"]
    main()
""")


@pytest.mark.slow
def test_recovery_after_a_killed_gc_keeps_what_the_new_plan_keeps(run_copy):
    _strict(run_copy)
    workspace = Workspace.at(run_copy)
    first = run_copy.report
    second = run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _KILL_AT_MOVE, "1"],
        cwd=run_copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journal = (run_copy / ".ita/trash/journal.jsonl").read_text()
    assert '"begin"' in journal and '"done"' not in journal  # killed mid-batch, one moved
    # the user reverts the run that made the first run's charts collectable
    run_copy.git("revert", "--no-edit", second.committed)
    result = invoke("gc", "--yes", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert len(done["recovered_interrupted_steps"]) > 0
    run_copy.dvc("checkout", "-q", "--force", "--with-deps", "report")  # all in the cache
    check = verify_run(workspace, first.run_id)
    assert check.ok, check.failures()  # the reverted-to run lost nothing
    assert not verify_run(workspace, second.run_id).ok  # the reverted run's charts may go now
    assert done["total_files_trashed"] == 3


def test_gc_brings_back_trashed_objects_a_new_pin_keeps(run_copy):
    _strict(run_copy)
    workspace = Workspace.at(run_copy)
    first = run_copy.report
    run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    _plan, _facts, report = collect_garbage(workspace)
    assert _trashed_paths(report) == [
        "results/report/drawdown.png",
        "results/report/equity.png",
        "results/report/price.png",
    ]
    assert not verify_run(workspace, first.run_id).ok
    keep_run(workspace, first.run_id, "after all")
    dry = invoke("gc", "--dry-run")
    assert "3 trashed object(s) are kept by this plan" in dry.stdout
    _plan, _facts, again = collect_garbage(workspace)
    assert sorted(r["path"] for r in again.restored) == [
        "results/report/drawdown.png",
        "results/report/equity.png",
        "results/report/price.png",
    ]
    assert verify_run(workspace, first.run_id).ok


@pytest.mark.slow
def test_purge_never_deletes_what_the_plan_keeps(run_copy):
    _strict(run_copy)
    workspace = Workspace.at(run_copy)
    first = run_copy.report
    run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    collect_garbage(workspace)
    keep_run(workspace, first.run_id)
    result = invoke("trash", "purge", "--older-than", "0")
    assert result.exit_code == 0, result.output
    assert "purged 0 object(s)" in result.stdout and "brought back 3" in result.stdout
    assert verify_run(workspace, first.run_id).ok
    for bad in ("-1", "nan", "inf"):
        assert invoke("trash", "purge", "--older-than", bad).exit_code == 2, bad
    assert os.path.isdir(run_copy / ".ita")
