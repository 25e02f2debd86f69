"""The validate stage in a workspace made by ``ita-vc init``: recorded by ``ita-vc run --stage
validate``, the same bytes again and from ``ita-vc validate``, the snapshot and ``runs list``
columns, and the refusals (exit 11) before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ita_vc.snapshot.runner import pipeline_env
from tests.helpers import VENV_BIN, TmpRepo, invoke, make_pipeline_repo, run

pytestmark = pytest.mark.slow

VALIDATION = """\
validation:
  seed: 3
  permutation: {n: 20}
  block_bootstrap: {n: 60, block_size: auto, confidence: 0.9}
  monte_carlo: {n: 50}
  wfo: {windows: 3, in_sample_ratio: 2, mode: anchored}
  overfitting: {partitions: 4, max_variants: 100}
"""
GRID = """\
grid:
  indicators:
    - name: ma_cross
      params: {fast: [5, 10], slow: [30, 50]}
  targets: {sl_pct: [null, 2.0]}
  top_k: 3
  top_trades_n: 1
"""
FILES = (
    "validation_summary.json",
    "report.md",
    "permutation.png",
    "bootstrap.png",
    "monte_carlo.png",
    "walk_forward.png",
    "pbo.png",
)


def _params(repo: TmpRepo) -> None:
    text = (repo / "params.yaml").read_text()
    head = text[: text.index("grid:")]
    head = head.replace('start: "2025-01-04"', 'start: "2025-01-05"').replace(
        'end: "2025-01-12"', 'end: "2025-02-10"'
    )
    (repo / "params.yaml").write_text(head + GRID + VALIDATION)
    repo.git("commit", "-qam", "validation settings")


@pytest.fixture(scope="module")
def validated(_template_repo, tmp_path_factory):
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.workspace import Workspace

    root = tmp_path_factory.mktemp("validated") / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root), days=45)
    _params(repo)
    report = run_pipeline(Workspace.at(repo), stages=["report", "validate"], note="validated")
    repo.report = report  # type: ignore[attr-defined]
    return repo


def test_the_run_records_the_validation(validated):
    snapshot = validated.report.snapshot
    assert snapshot["schema_version"] == 4
    assert snapshot["stages"]["validate"] == "run" and snapshot["stages"]["grid"] == "run"
    folder = validated / "results" / "validation"
    for name in FILES:
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "validation_summary.json").read_text())
    assert snapshot["validation"] == summary
    assert summary["seed"] == 3 and summary["wfo"]["mode"] == "anchored"
    assert summary["overfitting"]["n_variants"] == 4 and summary["overfitting"]["combinations"] == 6
    assert (validated / "results" / "grid" / "variant_returns.parquet").is_file()
    assert run(["git", "status", "--porcelain"], cwd=validated).stdout == ""


def test_runs_list_and_show_have_the_validation(validated, monkeypatch):
    monkeypatch.chdir(validated)
    listed = invoke("runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    row = json.loads(listed.stdout)[0]
    summary = validated.report.snapshot["validation"]
    assert row["validation"] == {
        "p_value": summary["permutation"]["p_value"],
        "dsr": summary["overfitting"]["dsr"],
        "pbo": summary["overfitting"]["pbo"],
    }
    table = invoke("runs", "list")
    assert "p_value" in table.stdout and "pbo" in table.stdout
    assert f"{summary['permutation']['p_value']:.4f}" in table.stdout
    assert invoke("runs", "list", "--sort", "pbo").exit_code == 0
    shown = invoke("runs", "show", "@latest")
    assert "validation" in shown.stdout and "PBO" in shown.stdout


def test_the_same_bytes_again_and_from_the_cli(validated, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    monkeypatch.chdir(copy)
    folder = copy / "results" / "validation"
    before = {name: (folder / name).read_bytes() for name in FILES}
    run([str(VENV_BIN / "dvc"), "repro", "-f", "-s", "validate"], cwd=copy, env=pipeline_env())
    assert {name: (folder / name).read_bytes() for name in FILES} == before
    out = tmp_path / "cli-out"
    result = invoke("validate", "--out", str(out), "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "PBO" in result.stdout and "p = " in result.stdout
    assert {name: (out / name).read_bytes() for name in FILES} == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("partitions: 4", "partitions: 5"),
        ("permutation: {n: 20}", "permutation: {n: 0}"),
        ("mode: anchored", "mode: sideways"),
    ],
)
def test_bad_settings_are_refused_before_any_work(validated, tmp_path, monkeypatch, edit, message):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    monkeypatch.chdir(copy)
    params = copy / "params.yaml"
    params.write_text(params.read_text().replace(edit, message))
    before = (copy / "results" / "validation" / "validation_summary.json").read_bytes()
    result = invoke("validate")
    assert result.exit_code == 11, result.output
    assert "params.yaml:" in result.output and "validation." in result.output
    assert "Traceback" not in result.output
    ran = invoke("run", "--stage", "validate", "--allow-dirty")
    assert ran.exit_code == 11, ran.output
    after = (copy / "results" / "validation" / "validation_summary.json").read_bytes()
    assert after == before  # nothing already stored is touched


def test_a_stale_grid_is_refused_by_the_stage(validated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    params = copy / "params.yaml"
    params.write_text(params.read_text().replace("slow: [30, 50]", "slow: [30, 60]"))
    proc = run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "validate"],
        cwd=copy,
        env=pipeline_env(),
        check=False,
    )
    assert proc.returncode == 11, proc.stderr
    assert "result of another grid" in proc.stderr and "dvc repro grid" in proc.stderr


def test_too_many_variants_and_short_windows_are_refused(validated, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    monkeypatch.chdir(copy)
    params = copy / "params.yaml"
    text = params.read_text()
    params.write_text(text.replace("max_variants: 100", "max_variants: 3"))
    result = invoke("validate", "--workers", "1")
    assert result.exit_code == 11 and "max_variants" in result.output, result.output
    params.write_text(text.replace("windows: 3,", "windows: 400,"))
    result = invoke("validate", "--workers", "1")
    assert result.exit_code == 11, result.output
    assert "shorter than the rule's longest indicator window" in result.output


def test_an_engine_10_pipeline_keeps_its_grid_and_refuses_the_stage(validated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    python = str(VENV_BIN / "python")
    proc = run(
        [python, "-m", "ita_vc.pipeline", "validate", "--engine", "1.0"], cwd=copy, check=False
    )
    assert proc.returncode == 8 and "needs engine 1.1" in proc.stderr
    (copy / "results" / "grid" / "variant_returns.parquet").unlink()
    run([python, "-m", "ita_vc.pipeline", "grid", "--engine", "1.0"], cwd=copy, env=pipeline_env())
    # engine 1.0's grid outputs stay 0.3's: no per-variant returns, whatever params.yaml says
    assert not (copy / "results" / "grid" / "variant_returns.parquet").exists()


def test_a_validated_run_verifies_and_reproduces_bit_for_bit(validated, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    monkeypatch.chdir(copy)
    verified = invoke("snapshot", "verify", "@latest", "--deep")
    assert verified.exit_code == 0, verified.output
    reproduced = invoke("reproduce", "@latest")
    assert reproduced.exit_code == 0, reproduced.output
    assert "validate" in reproduced.output


def test_data_refusals_come_before_the_grid_or_any_test(validated, tmp_path):
    from ita_vc.errors import DataValidationError
    from ita_vc.pipeline.stages import validate_workspace

    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    params = copy / "params.yaml"
    params.write_text(params.read_text().replace("windows: 3,", "windows: 400,"))
    seen = []
    with pytest.raises(DataValidationError, match="shorter than the rule's longest"):
        validate_workspace(copy, workers=1, progress=lambda *a: seen.append(a))
    assert seen == []  # neither the grid nor a test started


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("summary", "another grid"),
        ("ts_column", "does not hold this grid's Stage A variants"),
        ("nan", "non-finite returns"),
        ("params_json", "topk.parquet is damaged"),
    ],
)
def test_damaged_grid_outputs_are_refused_by_the_stage(validated, tmp_path, damage, message):
    import numpy as np
    import pandas as pd

    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    grid = copy / "results" / "grid"
    for name in ("summary.json", "variant_returns.parquet", "topk.parquet"):
        target = grid / name  # DVC may have linked the file from its cache: replace, not edit
        data = target.read_bytes()
        target.unlink()
        target.write_bytes(data)
    sidecars = list(grid.glob(".*"))
    for sidecar in sidecars:  # the store checks hashes: a user's damage comes without them
        sidecar.unlink()
    if damage == "summary":
        (grid / "summary.json").write_text("[]")
    elif damage in ("ts_column", "nan"):
        frame = pd.read_parquet(grid / "variant_returns.parquet")
        if damage == "nan":
            frame.iloc[3, 2] = np.nan
        else:
            frame = frame.rename(columns={"ts_utc": "day"})
        frame.to_parquet(grid / "variant_returns.parquet")
    else:
        frame = pd.read_parquet(grid / "topk.parquet")
        frame["params_json"] = '{"fast": 7}'
        frame.to_parquet(grid / "topk.parquet")
    proc = run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "validate", "--engine", "1.1"],
        cwd=copy,
        env=pipeline_env(),
        check=False,
    )
    assert proc.returncode == 11, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_killed_validate_leaves_no_worker_and_no_lock(validated, tmp_path):
    import os
    import signal
    import subprocess
    import time

    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    params = copy / "params.yaml"
    params.write_text(
        params.read_text().replace("permutation: {n: 20}", "permutation: {n: 10000000}")
    )
    proc = subprocess.Popen(
        [str(VENV_BIN / "ita-vc"), "validate", "--workers", "2"],
        cwd=copy,
        env=pipeline_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def children() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid:
                    found.append(int(entry))
        return found

    deadline = time.monotonic() + 120
    while len(children()) < 2 and time.monotonic() < deadline:  # the pool is up
        time.sleep(0.2)
    workers = children()
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)  # PR_SET_PDEATHSIG: they died with it
    params.write_text(
        params.read_text().replace("permutation: {n: 10000000}", "permutation: {n: 5}")
    )
    again = run(
        [str(VENV_BIN / "ita-vc"), "validate", "--workers", "1"],
        cwd=copy,
        env=pipeline_env(),
        check=False,
    )
    assert again.returncode == 0, again.stderr  # the lock went with them


def test_out_inside_data_is_refused_and_skipped_charts_are_replaced(
    validated, tmp_path, monkeypatch
):
    copy = tmp_path / "copy"
    shutil.copytree(validated, copy, symlinks=True)
    monkeypatch.chdir(copy)
    refused = invoke("validate", "--out", "data/v")
    assert refused.exit_code == 2 and "inside data/" in refused.output
    out = tmp_path / "v"
    assert invoke("validate", "--out", str(out), "--workers", "1").exit_code == 0
    big = (out / "pbo.png").stat().st_size
    params = copy / "params.yaml"
    text = params.read_text()
    params.write_text(
        text.replace("overfitting: {partitions: 4, max_variants: 100}", "overfitting: null")
    )
    assert invoke("validate", "--out", str(out), "--workers", "1").exit_code == 0
    # no earlier validation's chart stays: the skipped test's file says it was skipped
    assert (out / "pbo.png").stat().st_size < big
    assert "pbo.png" not in (out / "report.md").read_text()
    assert json.loads((out / "validation_summary.json").read_text())["overfitting"] is None


def test_a_run_whose_stage_fails_leaves_the_lock_as_it_was(tmp_repo):
    """DVC writes dvc.lock entries of the stages that finished but their .gitignore entries
    only when the whole repro succeeds: the run puts dvc.lock back, so the next run re-runs
    them and nothing they wrote shows as untracked."""
    from ita_vc.errors import DataValidationError
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.workspace import Workspace

    repo = make_pipeline_repo(tmp_repo)
    workspace = Workspace.at(repo)
    with pytest.raises(DataValidationError, match="windows of 0 bars"):
        run_pipeline(workspace, stages=["validate"], overrides=[("validation.wfo.windows", 400)])
    assert not (repo / "dvc.lock").exists()
    report = run_pipeline(workspace, stages=["validate"])
    assert report.committed and repo.git("status", "--porcelain").stdout == ""
