"""`ita-vc grid run` takes its own lock, and only it (issue 11 item 3): a second concurrent grid
run is refused (exit 10) or waits with --wait; the workspace lock does not block it. Real
processes, made deterministic with barrier files - no sleep decides an outcome."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time

import pytest

from tests.helpers import VENV_BIN, invoke, lock_held_elsewhere, make_pipeline_repo

_HOLD_GRID_LOCK = textwrap.dedent(
    """
    import os, sys, time
    from ita_vc.workspace import Workspace
    ready, release = sys.argv[1], sys.argv[2]
    with Workspace.at(os.getcwd()).lock(name="grid", purpose="test holder"):
        open(ready, "w").close()
        deadline = time.monotonic() + 300
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
    """
)

# `ita-vc grid run --wait 120` that touches a marker the first time the lock loop sleeps, i.e.
# once it has found the lock held and started to wait for it
_GRID_RUN_SIGNALLING_WAIT = textwrap.dedent(
    """
    import sys, time
    marker, real_sleep = sys.argv[1], time.sleep
    def sleep(seconds):
        open(marker, "a").close()
        real_sleep(seconds)
    time.sleep = sleep
    from ita_vc.cli import main
    sys.exit(main(["grid", "run", "--workers", "1", "--wait", "120"]))
    """
)


def _wait_for(path, proc, what):
    deadline = time.monotonic() + 120
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), f"{what} never happened: " + (
        proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    )


@pytest.fixture
def holder(tmp_repo):
    """A separate process holding the grid lock until ``release`` exists."""
    make_pipeline_repo(tmp_repo)
    ready, release = tmp_repo.parent / "ready", tmp_repo.parent / "release"
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", _HOLD_GRID_LOCK, str(ready), str(release)],
        cwd=tmp_repo,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(ready, proc, "the holder taking the grid lock")
    yield tmp_repo, release
    release.touch()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_a_second_grid_run_is_refused_with_exit_10(holder):
    repo, _release = holder
    proc = subprocess.run(
        [str(VENV_BIN / "ita-vc"), "grid", "run", "--workers", "1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 10, proc.stderr
    assert "another ita-vc grid command is running" in proc.stderr
    assert "test holder" in proc.stderr and "--wait SECONDS" in proc.stderr
    assert not (repo / "results" / "grid").exists()
    assert not (repo / ".ita" / "grid" / "checkpoint.json").exists()


def test_with_wait_it_runs_once_the_lock_is_released(holder):
    repo, release = holder
    marker = repo.parent / "waiting"
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", _GRID_RUN_SIGNALLING_WAIT, str(marker)],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(marker, proc, "the second grid run waiting for the lock")
    assert proc.poll() is None and not (repo / "results" / "grid").exists()
    release.touch()
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    assert "best variant(s) -> results/grid" in stdout
    summary = json.loads((repo / "results" / "grid" / "summary.json").read_text())
    assert summary["stop_reason"] == "complete"


def test_the_workspace_lock_does_not_block_a_grid_run(tmp_repo, workspace):
    make_pipeline_repo(tmp_repo)
    with lock_held_elsewhere(workspace):
        result = invoke("grid", "run", "--workers", "1", "--out", str(tmp_repo / "g"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("wait", ["nan", "-1", "inf"])
def test_a_bad_wait_is_a_usage_error(tmp_repo, wait):
    make_pipeline_repo(tmp_repo)
    result = invoke("grid", "run", "--wait", wait)
    assert result.exit_code == 2, result.output
    assert "--wait must be a number of seconds >= 0" in result.stderr
