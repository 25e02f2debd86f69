"""`ita-vc run` records what it ran and leaves no mess when it fails or is killed (issue:
nothing lost, items 5, 7, 8, 9). Kills happen at exact points: a wrapper process SIGKILLs
itself inside the function named, so no test races the scheduler."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time

import pytest

from ita_vc.errors import DirtyWorkspaceError, IndexCorruptError
from ita_vc.snapshot.runner import pipeline_env, run_pipeline
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke, run

_RUN_ID = re.compile(r"bt_\d{4}_\d\d_\d\d_\d{3}_[0-9a-f]{3}")


def _extra_candles(repo):
    """One more day of 1m candles (the last day again, a day later), imported without
    `dvc add`: the data now differs from data.dvc."""
    import pandas as pd

    from ita_vc.candles import CandleStore

    path = repo / "data/candles/binance-spot/BTCUSDT/1m.parquet"
    last_day = pd.read_parquet(path).tail(1440).drop(columns="gap_flag")
    last_day["ts_utc"] += int(last_day["ts_utc"].iloc[-1] - last_day["ts_utc"].iloc[0]) + 60_000
    export = repo.parent / "extra.parquet"
    last_day.to_parquet(export)
    CandleStore(Workspace.at(repo)).import_files(
        [export], market="binance-spot", symbol="BTCUSDT", track=False
    )


def test_a_run_with_untracked_data_changes_is_refused_or_recorded_as_dirty(run_copy):
    _extra_candles(run_copy)
    assert run_copy.git("status", "--porcelain").stdout == ""  # git alone sees nothing
    head = run_copy.git("rev-parse", "HEAD").stdout
    refused = invoke("run", "-S", "backtest.fee_pct=0.2")
    assert refused.exit_code == 12, refused.output
    assert "data (data.dvc: modified)" in refused.stderr and "dvc add" in refused.stderr
    assert run_copy.git("rev-parse", "HEAD").stdout == head
    report = run_pipeline(
        Workspace.at(run_copy), allow_dirty=True, overrides=[("backtest.fee_pct", 0.2)]
    )
    assert report.snapshot["git_dirty"] is True
    assert report.snapshot["dirty_paths"] == ["data (data.dvc: modified)"]
    committed = run_copy.git("show", "--name-only", "--format=", "HEAD").stdout.split()
    assert "data.dvc" in committed  # what dvc repro re-added is committed with the run
    assert run_copy.git("status", "--porcelain").stdout == ""
    assert verify_run(Workspace.at(run_copy), report.run_id).ok


def test_a_corrupt_index_stops_a_run_before_it_changes_anything(run_copy):
    index = run_copy / ".ita/index.sqlite"
    index.write_bytes(os.urandom(4096))
    before = sorted(p.name for p in (run_copy / "provenance").iterdir())
    params = (run_copy / "params.yaml").read_text()
    result = invoke("run", "-S", "backtest.fee_pct=0.2")
    assert result.exit_code == 9 and "index rebuild" in result.stderr, result.output
    assert sorted(p.name for p in (run_copy / "provenance").iterdir()) == before
    assert (run_copy / "params.yaml").read_text() == params
    assert run_copy.git("status", "--porcelain").stdout == ""
    with pytest.raises(IndexCorruptError):
        run_pipeline(Workspace.at(run_copy), force=True)
    assert invoke("index", "rebuild").exit_code == 0
    after = invoke("run", "-S", "backtest.fee_pct=0.2")
    assert after.exit_code == 0, after.output


def _killed_run(repo, patch: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`ita-vc run ARGS` in a process that SIGKILLs itself where ``patch`` says."""
    script = (
        textwrap.dedent("""
        import os, signal, sys
        def die(*_a, **_k):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
        + textwrap.dedent(patch)
        + textwrap.dedent("""
        from ita_vc.cli import main
        sys.argv = ["ita-vc", "run", *sys.argv[1:]]
        main()
    """)
    )
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def test_a_run_killed_during_dvc_repro_does_not_leave_its_overrides_behind(run_copy):
    original = (run_copy / "params.yaml").read_text()
    _killed_run(
        run_copy,
        """
        import ita_vc.snapshot.runner as runner
        runner._repro = die  # params.yaml is written, dvc repro is about to start
    """,
        "-S",
        "backtest.fee_pct=0.3",
    )
    assert "fee_pct: 0.3" in (run_copy / "params.yaml").read_text()
    assert (run_copy / ".ita/run-journal.json").is_file()
    result = invoke("run")
    assert result.exit_code == 0, result.output
    assert "dropping its -S backtest.fee_pct=0.3" in result.stderr
    assert (run_copy / "params.yaml").read_text() == original
    assert f"already recorded as {run_copy.report.run_id}" in result.stdout
    assert not (run_copy / ".ita/run-journal.json").exists()


def test_a_run_killed_after_its_snapshot_is_completed_by_the_next_run(run_copy):
    _killed_run(
        run_copy,
        """
        from ita_vc.snapshot.capture import SnapshotStore
        real = SnapshotStore.save
        def save(self, snapshot):
            real(self, snapshot)
            die()
        SnapshotStore.save = save
    """,
        "-S",
        "backtest.fee_pct=0.3",
    )
    untracked = run_copy.git("status", "--porcelain").stdout
    (orphan,) = set(_RUN_ID.findall(untracked))  # its snapshot and its manifest
    result = invoke("run", "-S", "backtest.fee_pct=0.3")
    assert result.exit_code == 0, result.output
    assert f"completed the commit of run {orphan}" in result.stderr
    assert f"already recorded as {orphan}" in result.stdout
    assert run_copy.git("status", "--porcelain").stdout == ""
    log = run_copy.git("log", "-1", "--format=%s").stdout
    assert orphan in log and "completed after an interruption" in log
    committed = run_copy.git("show", "--name-only", "--format=", "HEAD").stdout.split()
    assert {
        "dvc.lock",
        "params.yaml",
        f"provenance/{orphan}.json",
        f"provenance/{orphan}.manifest.json",
    } <= set(committed)
    assert verify_run(Workspace.at(run_copy), orphan).ok


def test_a_run_killed_between_its_manifest_and_its_snapshot_blocks_nothing(run_copy):
    _killed_run(
        run_copy,
        """
        import ita_vc.snapshot.capture as capture
        real = capture.save_manifest
        def save_manifest(*args, **kwargs):
            real(*args, **kwargs)
            die()
        capture.save_manifest = save_manifest
    """,
        "-S",
        "backtest.fee_pct=0.3",
    )
    (orphan,) = set(_RUN_ID.findall(run_copy.git("status", "--porcelain").stdout))
    assert (run_copy / f"provenance/{orphan}.manifest.json").is_file()
    assert not (run_copy / f"provenance/{orphan}.json").exists()
    result = invoke("run", "-S", "backtest.fee_pct=0.3")
    assert result.exit_code == 0, result.output
    assert "killed after writing its manifest" in result.stderr
    assert (run_copy / f".ita/orphans/{orphan}.manifest.json").is_file()
    assert not (run_copy / f"provenance/{orphan}.manifest.json").exists()
    assert run_copy.git("status", "--porcelain").stdout == ""
    new_id = _RUN_ID.search(result.stdout).group(0)
    assert new_id != orphan and (run_copy / f"provenance/{new_id}.manifest.json").is_file()


@pytest.mark.slow
def test_a_snapshot_that_no_longer_matches_is_set_aside_not_recorded(run_copy):
    _killed_run(
        run_copy,
        """
        from ita_vc.snapshot.capture import SnapshotStore
        real = SnapshotStore.save
        def save(self, snapshot):
            real(self, snapshot)
            die()
        SnapshotStore.save = save
    """,
        "-S",
        "backtest.fee_pct=0.3",
    )
    (orphan,) = set(_RUN_ID.findall(run_copy.git("status", "--porcelain").stdout))
    # the user moves on by hand: other params, dvc repro - dvc.lock is not the snapshot's now
    (run_copy / "params.yaml").write_text(
        (run_copy / "params.yaml").read_text().replace("fee_pct: 0.3", "fee_pct: 0.4")
    )
    run([str(VENV_BIN / "dvc"), "repro", "-q", "report"], cwd=run_copy, env=pipeline_env())
    result = invoke("run")
    assert result.exit_code == 0, result.output
    assert f"moved it to .ita/orphans/{orphan}.json" in result.stderr
    assert (run_copy / f".ita/orphans/{orphan}.json").is_file()
    assert not (run_copy / f"provenance/{orphan}.json").exists()
    assert (run_copy / f".ita/orphans/{orphan}.manifest.json").is_file()
    assert not (run_copy / f"provenance/{orphan}.manifest.json").exists()
    new_id = _RUN_ID.search(result.stdout).group(0)
    assert new_id != orphan
    assert run_copy.git("status", "--porcelain").stdout == ""


_BLOCKING_STAGE = (
    'python -c "import pathlib, sys, time; from ita_vc.pipeline.__main__ import '
    "die_with_parent; die_with_parent(); root = pathlib.Path('{root}'); "
    "(root / 'stage-pid').write_text(str(__import__('os').getpid())); "
    "(root / 'stage-pid').rename(root / 'stage-started'); "  # appears with its content
    "[time.sleep(0.05) for _ in iter(lambda: (root / 'block').exists(), False)]\""
)


@pytest.mark.slow
def test_killing_ita_vc_mid_repro_takes_dvc_and_its_stage_down_too(run_copy):
    import psutil
    import yaml

    marker_root = run_copy.parent
    dvc_yaml = yaml.safe_load((run_copy / "dvc.yaml").read_text())
    dvc_yaml["stages"]["prepare"]["cmd"] = [
        _BLOCKING_STAGE.format(root=marker_root),
        "python -m ita_vc.pipeline prepare",
    ]
    (run_copy / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    run_copy.git("commit", "-q", "-am", "a stage that waits while a file exists")
    (marker_root / "block").touch()
    proc = subprocess.Popen(
        [str(VENV_BIN / "ita-vc"), "run"],
        cwd=run_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (marker_root / "stage-started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stage = psutil.Process(int((marker_root / "stage-started").read_text()))
        children = psutil.Process(proc.pid).children(recursive=True)
        assert stage.pid in {c.pid for c in children}
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        _gone, alive = psutil.wait_procs(children, timeout=120)
        assert alive == [], f"still running after ita-vc was killed: {alive}"
    finally:
        (marker_root / "block").unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = invoke("run")  # the lock is free, the journal repaired, the run completes
    assert result.exit_code == 0, result.output
    assert _RUN_ID.search(result.stdout)


def test_run_ids_do_not_repeat_across_branches(run_copy):
    first = run_copy.report.run_id
    run_copy.git(
        "checkout",
        "-q",
        "-b",
        "other",
        run_copy.head_before if hasattr(run_copy, "head_before") else "HEAD~1",
    )
    assert not (run_copy / f"provenance/{first}.json").exists()
    report = run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.2)])
    same_day = first[:14] == report.run_id[:14]
    assert not same_day or first[14:17] != report.run_id[14:17], (first, report.run_id)
    counters = json.loads((run_copy / ".ita/run-ids.json").read_text())
    assert max(counters.values()) >= 2


def test_the_dirty_error_is_its_own_exit_code(run_copy):
    (run_copy / "scratch.py").write_text("x = 1\n")
    with pytest.raises(DirtyWorkspaceError) as info:
        run_pipeline(Workspace.at(run_copy))
    assert info.value.exit_code == 12
