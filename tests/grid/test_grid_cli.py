"""`ita-vc grid run` / `grid promote` and the dvc.yaml grid stage in a real workspace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from ita_vc.backtest.run import run_backtest
from tests.helpers import VENV_BIN, invoke, make_pipeline_repo


def test_grid_run_and_promote(tmp_repo):
    make_pipeline_repo(tmp_repo)
    result = invoke("grid", "run", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "best variant(s) -> results/grid" in result.stdout
    topk = pd.read_parquet(tmp_repo / "results/grid/topk.parquet")
    summary = json.loads((tmp_repo / "results/grid/summary.json").read_text())
    assert summary["counts"]["stage_a_variants"] == 12 and len(topk) == 20
    assert "| Metric | Value |" in topk.iloc[0]["report_table_md"]
    assert "\\|sl=" in (tmp_repo / "results/grid/report.md").read_text()
    best = topk.iloc[0]
    promoted = invoke("grid", "promote", best["variant_key"], "--reason", "best of grid")
    assert promoted.exit_code == 0, promoted.output
    assert "rules/example_ma_cross/v1.1.yaml" in promoted.stdout
    from ita_vc.backtest.params import parse_params
    from ita_vc.pipeline.stages import grid_inputs, load_params_file
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(tmp_repo)
    raw = load_params_file(tmp_repo)
    prepared, _rule, params, _request = grid_inputs(workspace, raw)
    new_rule = RuleRegistry(workspace).get("example_ma_cross", "1.1")
    single = run_backtest(prepared, new_rule, parse_params(raw))
    assert single.metrics["Total Return [%]"] == best["Total Return [%]"]
    assert params.backtest.fee_pct == 0.075
    missing = invoke("grid", "promote", "nope|sl=none|tp=none")
    assert missing.exit_code == 1 and "no variant" in missing.stderr


def test_grid_run_partial_and_guard(tmp_repo):
    make_pipeline_repo(tmp_repo)
    partial = invoke(
        "grid", "run", "--workers", "1", "--max-seconds", "0", "--out", str(tmp_repo / "g")
    )
    assert partial.exit_code == 0 and "PARTIAL: " in partial.stdout
    stopped = json.loads((tmp_repo / "g/summary.json").read_text())
    assert stopped["partial"] is True and stopped["stop_reason"] == "max_seconds"
    resumed = invoke("grid", "run", "--workers", "1", "--resume", "--out", str(tmp_repo / "g"))
    assert resumed.exit_code == 0 and "PARTIAL" not in resumed.stdout
    params = tmp_repo / "params.yaml"
    params.write_text(
        params.read_text().replace("  top_k: 20\n", "  top_k: 20\n  max_variants: 5\n")
    )
    refused = invoke("grid", "run")
    assert refused.exit_code == 11 and "max_variants = 5" in refused.stderr


def _start_big_grid(repo, workers):
    """A grid large enough to be interrupted (870 base variants in batches of 5), started in
    its own session the way a shell starts a job: checkpoint after every batch."""
    make_pipeline_repo(repo)
    params = repo / "params.yaml"
    params.write_text(
        params.read_text()
        .replace(
            "params: {fast: {min: 5, max: 20, step: 5}, slow: [30, 50, 80]}",
            "params: {fast: {min: 2, max: 30, step: 1}, slow: {min: 31, max: 60, step: 1}}",
        )
        .replace("  top_k: 20\n", "  top_k: 20\n  batch_size: 5\n")
    )
    checkpoint = repo / ".ita/grid/checkpoint.json"
    env = {**os.environ, "ITA_VC_GRID_CHECKPOINT_SECONDS": "0"}  # a checkpoint per batch
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "ita-vc"),
            "grid",
            "run",
            "--workers",
            str(workers),
            "--out",
            str(repo / "g"),
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the grid finished before it could be interrupted"
    return proc


@pytest.mark.parametrize(("workers", "to_group"), [(1, False), (2, True)])
def test_grid_run_ctrl_c_writes_partial_and_exits_130(tmp_repo, workers, to_group):
    """A real SIGINT to a running ``ita-vc grid run`` - to the process alone, or to its whole
    process group as a terminal's Ctrl-C does (pool workers included): best-so-far written,
    exit 130, resumable."""
    proc = _start_big_grid(tmp_repo, workers)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "PARTIAL: " in stdout
    summary = json.loads((tmp_repo / "g/summary.json").read_text())
    assert summary["partial"] is True and summary["stop_reason"] == "interrupted"
    assert 0 < summary["counts"]["stage_a_evaluated"] < summary["counts"]["stage_a_variants"]
    assert pd.read_parquet(tmp_repo / "g/topk.parquet")["partial"].all()
    resumed = invoke("grid", "run", "--workers", "1", "--resume", "--out", str(tmp_repo / "g"))
    assert resumed.exit_code == 0 and "PARTIAL" not in resumed.stdout, resumed.output
    done = json.loads((tmp_repo / "g/summary.json").read_text())
    assert done["stop_reason"] == "complete"
    assert done["counts"]["stage_a_evaluated"] == done["counts"]["stage_a_variants"]


# The dvc.yaml grid stage's command, sent a real SIGINT by itself at its third batch (in the
# parent, where the search folds each batch into the shortlist): an exact point, no race.
_STAGE_SIGINT_AT_BATCH_3 = """
import os, signal, sys
from ita_vc.grid import search as grid
real_merge, calls = grid.merge_top, [0]
def merge_top(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        raise KeyboardInterrupt  # what Ctrl-C raises, at an exact point (no signal race)
    return real_merge(*args, **kwargs)
grid.merge_top = merge_top
from ita_vc.pipeline.__main__ import main
sys.exit(main(["grid"]))
"""


def test_interrupted_grid_stage_writes_nothing_and_exits_130(tmp_repo):
    """DVC records a stage's outs as its result: an interrupted grid stage must not leave a
    partial top-K there (`ita-vc grid run` is the command that keeps partial results)."""
    make_pipeline_repo(tmp_repo)
    params = tmp_repo / "params.yaml"
    params.write_text(params.read_text().replace("  top_k: 20\n", "  top_k: 20\n  batch_size: 2\n"))
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _STAGE_SIGINT_AT_BATCH_3],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "grid: interrupted; its outputs were not written" in proc.stderr
    assert not (tmp_repo / "results/grid").exists()
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "grid"],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_repo / "results/grid/summary.json").read_text())
    assert summary["partial"] is False and summary["stop_reason"] == "complete"
