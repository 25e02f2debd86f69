"""Executing the plan: soft delete, archive, purge, restore, reports, and every safety rule."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from ita_vc.errors import RetentionRefusedError
from ita_vc.retention.apply import compute_plan, execute_plan, purge_trash, restore_from_trash
from ita_vc.retention.policy import load_policy
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke, run
from tests.retention.conftest import NOW, run_id_of


def _cache(repo, oid):
    return repo / ".dvc/cache/files/md5" / oid[:2] / oid[2:]


def _trash(repo, oid):
    return repo / ".ita/trash/objects" / oid[:2] / oid[2:]


def _trashed(repo):
    folder = repo / ".ita/trash/objects"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _execute(repo, **kwargs):
    workspace = Workspace.at(repo)
    plan, facts = compute_plan(workspace, now=NOW)
    return plan, execute_plan(workspace, plan, load_policy(repo), facts, **kwargs)


def test_the_cli_executes_exactly_the_dry_run_plan(history):
    repo, _facts = history
    planned = json.loads(invoke("gc", "--dry-run", "--json").stdout)
    to_remove = {d["oid"] for d in planned["decisions"] if d["action"] != "keep"}
    assert to_remove and _trashed(repo) == []
    executed = json.loads(invoke("gc", "--json").stdout)
    assert {o["oid"] for o in executed["affected_objects"]} == to_remove
    assert {e["oid"] for e in json.loads(invoke("trash", "list", "--json").stdout)} == to_remove


def test_gc_executes_exactly_the_plan(history):
    repo, _facts = history
    plan, report = _execute(repo)
    removed = sorted(d.oid for d in plan.decisions if d.action != "keep")
    assert sorted(t["oid"] for t in report.trashed) == removed
    for oid in removed:
        assert _trash(repo, oid).is_file() and not _cache(repo, oid).exists()
    for decision in plan.decisions:
        if decision.action == "keep":
            assert _cache(repo, decision.oid).is_file(), decision
    data = report.to_dict()
    assert data["total_files_trashed"] == 4 and data["total_files_purged"] == 0
    assert set(data["by_type"]) == {"annotated_pngs", "scratch"}
    assert (repo / report.report_path).is_file()
    audit = (repo / "logs/retention-audit.jsonl").read_text().splitlines()
    assert len(audit) == 4 and all(json.loads(line)["op"] == "trash" for line in audit)
    assert repo.git("status", "--porcelain").stdout.strip() == ""  # git is not touched


def test_kept_runs_verify_and_a_non_kept_run_names_its_trashed_objects(history):
    repo, _facts = history
    _execute(repo)
    workspace = Workspace.at(repo)
    for day in (0, 15, 30, 60, 120, 180):
        report = verify_run(workspace, run_id_of(day))
        assert report.ok, (day, report.failures())
    lost = verify_run(workspace, run_id_of(240))
    detail = {c.name: c.detail for c in lost.checks if not c.ok}["objects in the DVC cache"]
    assert "results/latest/scratch.bin" in detail and "in the trash" in detail
    assert "1 missing" in detail


def test_restore_brings_back_a_run_and_dvc_checkout_works_again(history):
    repo, facts = history
    _execute(repo)
    restored = restore_from_trash(Workspace.at(repo), run_id=run_id_of(240))
    assert restored == [facts[240]["scratch"]]
    assert verify_run(Workspace.at(repo), run_id_of(240)).ok
    repo.git("checkout", "-q", facts[240]["commit"])
    repo.dvc("checkout", "-q", "results/latest.dvc")
    assert (repo / "results/latest/scratch.bin").read_bytes().startswith(b"scratch 240")
    result = invoke("trash", "restore", "--all")
    assert result.exit_code == 0 and "restored 3 object(s)" in result.stdout
    repo.dvc("checkout", "-q", "data.dvc")
    assert (repo / "data/png/shot.png").read_bytes().startswith(b"\x89PNG shot 240")


def test_purge_after_the_safety_window_only(history):
    import datetime as dt

    repo, _facts = history
    _execute(repo)
    workspace = Workspace.at(repo)
    assert purge_trash(workspace, 7).purged == []  # trashed just now: inside the window
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    report = purge_trash(workspace, 7, now=later)
    assert len(report.purged) == 4
    assert _trashed(repo) == []
    assert invoke("trash", "list", "--json").stdout.strip() == "[]"
    assert "purged 0 object(s)" in invoke("trash", "purge", "--older-than", "0").stdout


def test_gc_cli_dry_run_and_execution(history):
    repo, _facts = history
    table = invoke("gc", "--dry-run")
    assert table.exit_code == 0 and "annotated_pngs" in table.stdout
    assert "dry run: nothing changed" in table.stdout
    assert _trashed(repo) == []
    result = invoke("gc")
    assert result.exit_code == 0 and "to the trash" in result.stdout
    listed = json.loads(invoke("trash", "list", "--json").stdout)
    assert listed and all(item["trashed_at"] for item in listed)


def test_confirmation_above_the_threshold(history):
    repo, _facts = history
    (repo / "configs/retention.yaml").write_text(
        (repo / "configs/retention.yaml")
        .read_text()
        .replace("confirm_above_gb: 10", "confirm_above_gb: 0")
    )
    with pytest.raises(RetentionRefusedError, match="pass --yes"):
        _execute(repo)
    assert _trashed(repo) == []
    assert invoke("gc").exit_code == 7
    _plan, report = _execute(repo, yes=True)
    assert len(report.trashed) == 4


def test_a_shared_cache_is_refused_unless_forced(history):
    repo, _facts = history
    repo.dvc("config", "cache.shared", "group")
    with pytest.raises(RetentionRefusedError, match="shared"):
        _execute(repo)
    result = invoke("gc")
    assert result.exit_code == 7 and "--force-shared-cache" in result.stderr
    _plan, report = _execute(repo, force_shared_cache=True)
    assert len(report.trashed) == 4


def test_archive_pushes_verifies_then_trashes(history, tmp_path):
    repo, facts = history
    policy = (
        (repo / "configs/retention.yaml")
        .read_text()
        .replace(
            'annotated_pngs:   {paths: ["data/png/**", "results/**/*.png"], retain_days: 90, '
            "strategy: delete}",
            'annotated_pngs:   {paths: ["data/png/**", "results/**/*.png"], retain_days: 90, '
            "strategy: archive}",
        )
    )
    (repo / "configs/retention.yaml").write_text(policy)
    with pytest.raises(RetentionRefusedError, match="nothing was removed"):
        _execute(repo)  # no `archive` remote configured yet
    assert _trashed(repo) == []
    assert all(_cache(repo, facts[d]["shot"]).is_file() for d in (120, 180, 240))
    remote = tmp_path / "archive-remote"
    repo.dvc("remote", "add", "archive", str(remote))
    _plan, report = _execute(repo)
    assert sorted(report.archived) == sorted(facts[d]["shot"] for d in (120, 180, 240))
    for day in (120, 180, 240):
        oid = facts[day]["shot"]
        assert (remote / "files/md5" / oid[:2] / oid[2:]).is_file()
        assert _trash(repo, oid).is_file()


# A real `ita-vc gc` process that SIGKILLs itself just before its (k+1)-th move out of the
# DVC cache: the crash point is exact, so the test never races the scheduler.
_KILL_AT_MOVE = """
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
"""


@pytest.mark.parametrize("kill_after", [0, 137])
@pytest.mark.slow
def test_sigkill_mid_gc_loses_nothing_and_a_rerun_completes(history, kill_after):
    repo, _facts = history
    # many more old objects, so that the execution has several hundred moves to make
    import datetime as dt

    stamp = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).timestamp())
    repo.gen({f"data/png/bulk/{i:04d}.png": f"bulk {i}".encode() * 50 for i in range(400)})
    repo.dvc("add", "-q", "data")
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": f"@{stamp} +0000",
        "GIT_COMMITTER_DATE": f"@{stamp} +0000",
    }
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "--no-verify", "-m", "bulk"], cwd=repo, env=env)
    run(["git", "rm", "-q", "-r", "--cached", "data.dvc"], cwd=repo)
    (repo / "data/png/bulk").rename(repo.parent / "bulk-moved")
    repo.dvc("add", "-q", "data")
    run(["git", "add", "-A"], cwd=repo)
    run(["git", "commit", "-q", "--no-verify", "-m", "drop bulk"], cwd=repo)
    plan, _ = compute_plan(Workspace.at(repo))
    doomed = {d.oid for d in plan.decisions if d.action != "keep"}
    assert len(doomed) > 400
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _KILL_AT_MOVE, str(kill_after)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journal = (repo / ".ita/trash/journal.jsonl").read_text()
    assert journal.count('"begin"') >= kill_after and '"done"' not in journal
    for oid in doomed:  # every object is in the cache or in the trash, never in neither
        assert _cache(repo, oid).exists() or _trash(repo, oid).exists(), oid
    moved = [oid for oid in doomed if _trash(repo, oid).exists()]
    assert len(moved) == kill_after
    result = invoke("gc", "--yes", "--json")
    assert result.exit_code == 0, result.output
    for oid in doomed:
        assert _trash(repo, oid).exists() and not _cache(repo, oid).exists(), oid
