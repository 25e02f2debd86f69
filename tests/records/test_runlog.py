"""The run log (.ita/runs.jsonl): records of completed, failed, cancelled and killed runs,
written by real processes; concurrent appends never interleave; a torn line is skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ita_vc.errors import DataValidationError, ItaVcError
from ita_vc.snapshot.runlog import STALE_SECONDS, RunLog, fold

CHILD = textwrap.dedent(
    """
    import os, sys, time, pathlib
    from ita_vc.snapshot.runlog import RunLog
    log = RunLog(pathlib.Path(sys.argv[1]))
    with log.recording(sys.argv[2], "grid", heartbeat=0.05) as update:
        update(stage="stage_a")
        pathlib.Path(sys.argv[3]).write_text("ready")  # the parent acts only after this
        time.sleep(60)
    """
)


def _child(tmp_path, run_id):
    ready = tmp_path / f"{run_id}.ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), run_id, str(ready)],
        env={
            **os.environ,
            "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
        },
    )
    for _ in range(600):
        if ready.exists():
            break
        proc.poll()
        assert proc.returncode is None
        import time

        time.sleep(0.05)
    assert ready.exists()
    return proc


def test_a_completed_and_a_failed_run(tmp_path):
    log = RunLog(tmp_path)
    with log.recording("bt_1", "backtest", fields={"config_hash": "sha256:x", "seed": 3}) as update:
        update(stage="report")
        update(progress={"stage": "report", "ratio": 0.5})
    with pytest.raises(DataValidationError), log.recording("gr_2", "grid") as update:
        update(stage="stage_b")
        raise DataValidationError("bad grid")
    records = log.records()
    ok, failed = records["bt_1"], records["gr_2"]
    assert ok.status == "completed" and ok.stage == "report" and ok.seed == 3
    assert ok.progress["ratio"] == 0.5 and ok.completed_at >= ok.started_at
    assert failed.to_dict()["status"] == "failed"
    assert (failed.error_code, failed.error_message, failed.stage) == (11, "bad grid", "stage_b")


def test_ctrl_c_is_cancelled_and_sigkill_is_abandoned(tmp_path):
    cancelled = _child(tmp_path, "gr_c")
    cancelled.send_signal(signal.SIGINT)
    assert cancelled.wait(timeout=60) != 0
    killed = _child(tmp_path, "gr_k")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    records = RunLog(tmp_path).records()
    assert records["gr_c"].status == "cancelled" and records["gr_c"].error_code == 130
    dead = records["gr_k"]
    assert dead.status == "running" and dead.stage == "stage_a"
    # its heartbeat stops; once stale (and its pid gone) it reads as abandoned
    later = dead.heartbeat_at + int(STALE_SECONDS * 1000) + 1
    assert dead.effective_status(later) == "abandoned"
    assert dead.effective_status(dead.heartbeat_at) == "running"


def test_a_live_run_is_never_abandoned(tmp_path):
    live = _child(tmp_path, "gr_live")
    try:
        record = RunLog(tmp_path).records()["gr_live"]
        far = record.heartbeat_at + int(STALE_SECONDS * 1000) * 10
        assert record.effective_status(far) == "running"  # its pid is alive
    finally:
        live.kill()
        live.wait()


def test_concurrent_writers_never_interleave_and_a_torn_line_is_skipped(tmp_path):
    code = (
        "import sys, pathlib\n"
        "from ita_vc.snapshot.runlog import RunLog\n"
        "log = RunLog(pathlib.Path(sys.argv[1]))\n"
        "for i in range(200):\n"
        "    progress = {'i': i, 'pad': 'x' * 3000}\n"
        "    log.append({'event': 'progress', 'run_id': sys.argv[2], 'progress': progress})\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{os.getcwd()}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"r{k}"], env=env)
        for k in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    path = tmp_path / "runs.jsonl"
    lines = path.read_bytes().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["progress"]["pad"] for line in lines)
    with path.open("ab") as handle:
        handle.write(b'{"event": "end", "run_id": "r0", "sta')  # a crash mid-write
    records = RunLog(tmp_path).records()
    assert records["r0"].status == "running" and records["r0"].progress["i"] == 199


def test_fold_ignores_foreign_lines_and_unknown_keys():
    records = fold([{"no": "id"}, {"run_id": "x", "event": "start", "ts": 5, "newer_key": 1}])
    assert list(records) == ["x"] and records["x"].created_at == 5


def test_compact_keeps_the_newest_runs_running_ones_and_protected_ones(tmp_path):
    log = RunLog(tmp_path)
    for i in range(6):
        log.append({"event": "start", "run_id": f"gr_{i}", "status": "running", "ts": 1000 + i,
                    "pid": os.getpid() if i == 0 else 999_999_999})  # fmt: skip
        if i:
            log.append({"event": "end", "run_id": f"gr_{i}", "status": "failed", "ts": 2000 + i,
                        "error_code": 11, "error_message": f"bad {i}"})  # fmt: skip
    log.append({"event": "progress", "run_id": "gr_5", "progress": {"done": 1}, "ts": 3000})
    before = log.records()
    log.append({"event": "start", "run_id": "gr_7", "status": "running", "ts": 900,
                "pid": 999_999_999})  # fmt: skip
    log.append({"event": "end", "run_id": "gr_7", "status": "completed", "ts": 950})
    before = log.records()
    assert log.compact(2, protect=["gr_2"], dry_run=True) == ["gr_1", "gr_3"]
    assert log.records() == before  # a dry run writes nothing
    dropped = log.compact(2, protect=["gr_2"])
    # failed gr_5, gr_4: the newest failures; gr_7: the newest completed; gr_2: protected
    # (pinned); gr_0: running with a live pid
    assert dropped == ["gr_1", "gr_3"]
    after = log.records()
    assert set(after) == {"gr_0", "gr_2", "gr_4", "gr_5", "gr_7"}
    for run_id, record in after.items():
        assert record == before[run_id]  # every field and the progress survive compaction
    assert log.compact(None) == [] and log.compact(10) == []
    log.append({"event": "start", "run_id": "gr_6", "status": "running", "ts": 5000})
    assert set(log.records()) == {"gr_0", "gr_2", "gr_4", "gr_5", "gr_6", "gr_7"}


def test_a_symlink_planted_as_the_log_is_never_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "runs.jsonl").symlink_to(outside)
    log = RunLog(state)
    with pytest.raises(ItaVcError, match="cannot write the run log"):
        log.append({"event": "start", "run_id": "bt_1"})
    with pytest.raises(ItaVcError, match="cannot read the run log"):
        log.records()
    assert outside.read_text() == "precious\n"


def test_a_reused_pid_is_not_the_run(tmp_path):
    """After a reboot the run's pid may belong to another process: the start time tells."""
    log = RunLog(tmp_path)
    log.append({"event": "start", "run_id": "gr_1", "status": "running", "ts": 1_000,
                "pid": os.getpid(), "pid_started": 12.0})  # fmt: skip
    log.append({"event": "start", "run_id": "gr_2", "status": "running", "ts": 1_000,
                "pid": os.getpid()})  # fmt: skip
    records = log.records()
    late = 1_000 + int(STALE_SECONDS * 1000) + 1
    assert records["gr_1"].effective_status(late) == "abandoned"  # our pid, not its process
    assert records["gr_2"].effective_status(late) == "running"  # no start time: the pid counts
