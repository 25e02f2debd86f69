"""Run records of every flow in a real workspace: ``ita-vc run`` completed, failed in a stage,
Ctrl-C'd and SIGKILLed (abandoned, never blocking the next run), ``grid run``, ``validate`` and
``backtest run`` with their ``gr_``/``va_``/``bt_`` ids and manifests, ``runs list --status``
and ``runs show`` of a record."""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import time

import pytest

from ita_vc.backtest.run import ENGINE_VERSION
from ita_vc.snapshot import runlog
from ita_vc.snapshot.manifest import manifest_sha
from ita_vc.snapshot.records import Recorder, log_records
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke

_STAGE = f"cmd: python -m ita_vc.pipeline backtest --engine {ENGINE_VERSION}"


def _stage_prefix(repo, prefix: str, message: str) -> None:
    """Put ``prefix &&`` before the backtest stage's command, committed."""
    text = (repo / "dvc.yaml").read_text()
    assert _STAGE in text
    new = _STAGE.replace("cmd: ", f"cmd: {prefix} && ")
    (repo / "dvc.yaml").write_text(text.replace(_STAGE, new))
    repo.git("commit", "-q", "-am", message)


def _records(repo):
    return log_records(Workspace.at(repo))


def test_a_completed_run_is_recorded_once_with_its_manifest(run_copy):
    (record,) = _records(run_copy).values()
    report = run_copy.report
    assert record.run_id == report.run_id and record.status == "completed"
    assert record.flow == "backtest" and record.stage == "snapshot"
    assert record.snapshot_path == report.snapshot_path
    assert record.artifacts_manifest_sha == report.snapshot["artifacts_manifest_sha"]
    assert record.rule == "example_ma_cross@v1.0" and record.symbol == "BTCUSDT"
    assert record.data_hash == report.snapshot["data_hash"]
    config = json.loads(record.config_json)
    assert config["rule"] == {"setup_id": "example_ma_cross", "version": "1.0"}
    assert record.started_at <= record.completed_at and record.error_code is None
    listed = json.loads(invoke("runs", "list", "--json").stdout)
    assert [r["run_id"] for r in listed] == [report.run_id]  # the snapshot stands for it
    assert listed[0]["status"] == "completed"
    # an unchanged second run is the recorded one: nothing new is listed
    again = invoke("run")
    assert again.exit_code == 0, again.output
    assert [r["run_id"] for r in json.loads(invoke("runs", "list", "--json").stdout)] == [
        report.run_id
    ]
    assert any(r.recorded_as == report.run_id for r in _records(run_copy).values())


def test_a_stage_that_fails_is_recorded_failed_with_its_stage_and_error(run_copy):
    _stage_prefix(run_copy, "python -m boom_a_broken_stage", "a stage that fails")
    result = invoke("run", "--force")
    assert result.exit_code != 0
    failed = [r for r in _records(run_copy).values() if r.status == "failed"]
    assert len(failed) == 1
    (record,) = failed
    assert record.stage == "backtest" and record.error_code == result.exit_code
    assert "boom_a_broken_stage" in record.error_message
    assert record.snapshot_path is None
    listed = invoke("runs", "list", "--status", "failed")
    assert listed.exit_code == 0 and record.run_id in listed.stdout
    assert "failed (backtest)" in listed.stdout and "exit " in listed.stdout
    assert record.run_id not in invoke("runs", "list", "--status", "completed").stdout
    shown = invoke("runs", "show", record.run_id[:-2])  # a prefix of a log-only run
    assert shown.exit_code == 0, shown.output
    assert "failed" in shown.stdout and "boom_a_broken_stage" in shown.stdout
    assert "not versioned" in shown.stdout
    bad = invoke("runs", "list", "--status", "lost")
    assert bad.exit_code == 2 and "--status must be one of" in bad.output


def test_preflight_refusals_are_failed_runs_too(run_copy):
    result = invoke("run", "-S", "backtest.fee=-1")
    assert result.exit_code == 11, result.output
    (record,) = [r for r in _records(run_copy).values() if r.status == "failed"]
    assert record.stage == "preflight" and record.error_code == 11
    assert "fee" in record.error_message


def _start_held_run(run_copy, tmp_path):
    ready = tmp_path / "stage-started"
    _stage_prefix(run_copy, f"touch {ready} && sleep 300", "a stage that waits")
    proc = subprocess.Popen(
        [str(VENV_BIN / "ita-vc"), "run", "--force"],
        cwd=run_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def test_ctrl_c_records_a_cancelled_run(run_copy, tmp_path):
    proc = _start_held_run(run_copy, tmp_path)
    running = [r for r in _records(run_copy).values() if r.status == "running"]
    assert len(running) == 1 and running[0].stage == "backtest"
    shown = invoke("runs", "show", running[0].run_id)
    assert "running" in shown.stdout and "backtest" in shown.stdout
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    record = _records(run_copy)[running[0].run_id]
    assert record.status == "cancelled" and record.error_code == 130
    assert record.stage == "backtest"
    assert running[0].run_id in invoke("runs", "list", "--status", "cancelled").stdout


def test_a_sigkilled_run_reads_abandoned_and_blocks_nothing(run_copy, tmp_path, monkeypatch):
    proc = _start_held_run(run_copy, tmp_path)
    import psutil

    (running,) = [r for r in _records(run_copy).values() if r.status == "running"]
    group = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    _gone, alive = psutil.wait_procs(group, timeout=120)  # the stage dies with ita-vc
    assert alive == []
    record = _records(run_copy)[running.run_id]
    assert record.status == "running"  # nothing could write its end
    # the heartbeat is fresh: running; once older than STALE_SECONDS with the pid gone: abandoned
    assert record.effective_status(record.heartbeat_at + 1000) == "running"
    stale = record.heartbeat_at + int(runlog.STALE_SECONDS * 1000) + 1
    assert record.effective_status(stale) == "abandoned"
    monkeypatch.setattr(runlog, "STALE_SECONDS", 0.0)
    listed = json.loads(invoke("runs", "list", "--json", "--status", "abandoned").stdout)
    assert [r["run_id"] for r in listed] == [running.run_id]
    assert "abandoned" in invoke("runs", "show", running.run_id).stdout
    # the next run is not blocked (the lock died with the process, the run log holds nothing)
    text = (run_copy / "dvc.yaml").read_text()
    (run_copy / "dvc.yaml").write_text(text.replace(f"touch {tmp_path}/stage-started && ", ""))
    (run_copy / "dvc.yaml").write_text(
        (run_copy / "dvc.yaml").read_text().replace("sleep 300 && ", "")
    )
    run_copy.git("commit", "-q", "-am", "the stage back")
    after = invoke("run", "--force")
    assert after.exit_code == 0, after.output
    statuses = sorted(r.effective_status() for r in _records(run_copy).values())
    assert statuses == ["abandoned", "completed", "completed"]


def test_grid_validate_and_backtest_run_get_records_and_manifests(run_copy, tmp_path):
    grid = invoke("grid", "run", "--workers", "1")
    assert grid.exit_code == 0, grid.output
    validate = invoke("validate", "--workers", "1")
    assert validate.exit_code == 0, validate.output
    out = tmp_path / "bt-out"
    backtest = invoke(
        "backtest",
        "run",
        "--candles",
        "data/candles/binance-spot/BTCUSDT/1m.parquet",
        "--rule",
        "rules/example_ma_cross/v1.0.yaml",
        "--out",
        str(out),
    )
    assert backtest.exit_code == 0, backtest.output
    records = {r.flow: r for r in _records(run_copy).values() if r.status == "completed"}
    assert records["grid"].run_id.startswith("gr_")
    assert records["validate"].run_id.startswith("va_")
    assert {r.run_id[:3] for r in _records(run_copy).values()} == {"bt_", "gr_", "va_"}
    for flow in ("grid", "validate"):
        record = records[flow]
        manifest = json.loads((run_copy / record.manifest_path).read_text())
        assert manifest_sha(manifest) == record.artifacts_manifest_sha
        assert manifest["files"]
        assert all(f["sha256"].startswith("sha256:") for f in manifest["files"])
        assert record.rule == "example_ma_cross@v1.0"
    grid_manifest = json.loads((run_copy / records["grid"].manifest_path).read_text())
    grid_files = {f["path"] for f in grid_manifest["files"]}
    assert "results/grid/topk.parquet" in grid_files
    assert records["grid"].progress["stage"].startswith("stage_")
    assert records["grid"].progress["ratio"] == 1.0
    assert json.loads(records["validate"].metrics_summary_json)["p_value"] is not None
    bt = next(r for r in _records(run_copy).values() if r.flow == "backtest" and r.manifest_path)
    files = json.loads((run_copy / bt.manifest_path).read_text())["files"]
    assert {f["path"] for f in files} >= {str(out / "trades.parquet")}
    listed = invoke("runs", "list")
    assert records["grid"].run_id in listed.stdout and "completed [grid]" in listed.stdout
    shown = invoke("runs", "show", records["grid"].run_id)
    assert "progress" in shown.stdout and "stage_" in shown.stdout
    # nothing these runs wrote makes the tree dirty (the next ita-vc run is not refused)
    assert not any(
        line[3:].startswith((".ita", "provenance"))
        for line in run_copy.git("status", "--porcelain").stdout.splitlines()
    )


def test_progress_events_are_throttled_but_the_last_is_always_written():
    events: list[dict[str, object]] = []
    rec = Recorder(None, "gr_x", lambda **v: events.append(v))  # type: ignore[arg-type]
    for done in range(1, 1001):
        rec.progress("stage_a", done, 1000)
    assert 1 <= len(events) <= 3
    assert events[-1]["progress"] == {"stage": "stage_a", "done": 1000, "total": 1000, "ratio": 1.0}


def _allocate(root: str, barrier, queue) -> None:
    import datetime as dt

    from ita_vc.snapshot.capture import next_run_id

    workspace = Workspace.at(root)
    barrier.wait()
    queue.put([next_run_id(workspace, "grid", dt.datetime.now(dt.UTC), "x") for _ in range(5)])


def test_concurrent_commands_never_get_the_same_run_id(workspace):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_allocate, args=(str(workspace.root), barrier, queue)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=120)
    assert len(ids) == 20 and len(set(ids)) == 20
    assert sorted(int(i.split("_")[4]) for i in ids) == list(range(1, 21))


@pytest.mark.parametrize("ref", ["gr_2026_01_01_001_abc", "va_2026_01_01_001_abc"])
def test_the_new_run_id_prefixes_are_run_ids(ref):
    from ita_vc.snapshot.capture import check_run_id

    assert check_run_id(ref) == ref


def test_snapshot_verify_checks_the_manifest(run_copy):
    from ita_vc.snapshot.verify import verify_run

    workspace = Workspace.at(run_copy)
    rid = run_copy.report.run_id
    report = verify_run(workspace, rid, deep=True)
    assert report.ok, report.failures()
    names = {c.name for c in report.checks}
    assert {"manifest", "deep: manifest sha256"} <= names
    path = run_copy / f"provenance/{rid}.manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][0]["sha256"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # the store's sidecar catches the edit first; either way the check names the manifest
    failed = verify_run(workspace, rid)
    assert not failed.ok
    (check,) = [c for c in failed.checks if c.name == "manifest"]
    assert not check.ok and "manifest" in check.detail
    result = invoke("snapshot", "verify", rid)
    assert result.exit_code == 6 and "manifest" in result.output


def test_gc_keeps_the_records_of_the_newest_max_runs(run_copy):
    for fee in ("-1", "-2"):
        assert invoke("run", "-S", f"backtest.fee={fee}").exit_code == 11
    ids = sorted(_records(run_copy), key=lambda r: _records(run_copy)[r].created_at or 0)
    assert len(ids) == 3  # the committed run and two refusals
    policy = run_copy / "configs" / "retention.yaml"
    policy.write_text(policy.read_text().replace("max_runs: 100 ", "max_runs: 1   "))
    planned = invoke("gc", "--dry-run")
    assert planned.exit_code == 0 and "the records of 1 run(s)" in planned.stdout
    assert len(_records(run_copy)) == 3  # nothing dropped by the dry run
    result = invoke("gc", "--yes")
    assert result.exit_code == 0, result.output
    assert "dropped the records of 1 run(s)" in result.stdout
    # kept: the newest completed record and the newest failed one
    assert set(_records(run_copy)) == {ids[0], ids[-1]}
    # the committed run is still listed: its snapshot is its durable record
    listed = {r["run_id"] for r in json.loads(invoke("runs", "list", "--json").stdout)}
    assert listed == {run_copy.report.run_id, ids[-1]}


def test_a_run_from_a_preset_records_its_preset_ref(run_copy):
    params = run_copy / "params.yaml"
    params.write_text(params.read_text().replace("fee_pct: null", "fee_pct: 0.2"))
    assert invoke("preset", "save", "fee02").exit_code == 0
    run_copy.git("checkout", "--", "params.yaml")  # back to the recorded values
    applied = invoke("preset", "apply", "fee02")
    assert applied.exit_code == 0, applied.output
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "the fee02 preset")
    result = invoke("run")
    assert result.exit_code == 0, result.output
    preset = json.loads((run_copy / "presets/fee02.json").read_text())
    ref = {"name": "fee02", "sha256": preset["sha256"]}
    rid = next(r for r in _records(run_copy).values() if r.snapshot_path).run_id
    latest = max(_records(run_copy).values(), key=lambda r: r.created_at or 0)
    assert latest.preset_ref == ref
    snapshot = json.loads((run_copy / latest.snapshot_path).read_text())
    assert snapshot["preset_ref"] == ref and snapshot["params"]["preset"] == ref
    assert rid  # the first run (no preset) is recorded too
    # an edited section no longer is the preset's: the next run records no preset_ref
    params.write_text(params.read_text().replace("fee_pct: 0.2", "fee_pct: 0.3"))
    run_copy.git("commit", "-q", "-am", "edited by hand")
    assert invoke("run").exit_code == 0
    newest = max(_records(run_copy).values(), key=lambda r: r.created_at or 0)
    assert newest.preset_ref is None
    assert json.loads((run_copy / newest.snapshot_path).read_text())["preset_ref"] is None
