"""`ita-vc init --upgrade` on a workspace made by release 0.1.0, the engine pin, and the
`dvc plots` template (issue: a user's own workspace, items 4, 15 and "Existing workspaces")."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from ita_vc.backtest.run import ENGINE_VERSION
from ita_vc.snapshot.runner import pipeline_env
from tests.helpers import VENV_BIN, invoke, make_pipeline_repo, run

# What `ita-vc init` 0.1.0 wrote where today's templates differ (the rest is unchanged).
DVC_YAML_0_1_0 = """\
# The backtest pipeline (`dvc repro`). Candles come from data/ (tracked by data.dvc); every
# output lives outside data/. Parameters come from params.yaml; the rule file is a dependency,
# so a new rule version re-runs the backtest. (Run with the environment's python on PATH.)
stages:
  prepare:
    cmd: python -m ita_vc.pipeline prepare
    deps:
      - data/candles/${data.market}/${data.symbol}/${data.source_timeframe}.parquet
    params:
      - data
      - backtest.warmup_bars
    outs:
      - results/prepared
  backtest:
    cmd: python -m ita_vc.pipeline backtest
    deps:
      - results/prepared
      - rules/${rule.setup_id}/v${rule.version}.yaml
      - configs/indicators.yaml
    params:
      - rule.setup_id
      - rule.version
      - data
      - backtest
    outs:
      - results/backtest
    metrics:
      - results/metrics.json
  report:
    cmd: python -m ita_vc.pipeline report
    deps:
      - results/backtest
      - results/metrics.json
    outs:
      - results/report
    plots:
      - results/plots/equity.csv:
          x: time
          y: equity
          title: Equity
  grid:
    cmd: python -m ita_vc.pipeline grid
    deps:
      - data/candles/${data.market}/${data.symbol}/${data.source_timeframe}.parquet
      - rules/${rule.setup_id}/v${rule.version}.yaml
      - configs/indicators.yaml
    params:
      - rule.setup_id
      - rule.version
      - data
      - backtest
      - grid
    outs:
      - results/grid
"""


def _as_release_0_1_0(repo):
    (repo / "dvc.yaml").write_text(DVC_YAML_0_1_0)
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params[: params.index("validation:")])  # 0.1.0 had none
    (repo / "configs/plots/time_series.json").unlink()
    ignore = repo / ".gitignore"
    ignore.write_text(
        "".join(line + "\n" for line in ignore.read_text().splitlines() if line != "/dvc_plots/")
    )
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "a workspace as ita-vc 0.1.0 made it")


@pytest.fixture
def old_workspace(tmp_repo):
    make_pipeline_repo(tmp_repo)
    _as_release_0_1_0(tmp_repo)
    run([str(VENV_BIN / "dvc"), "repro", "-q", "report"], cwd=tmp_repo, env=pipeline_env())
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "a run with the old pipeline")
    return tmp_repo


def test_upgrade_shows_every_change_and_writes_only_with_yes(old_workspace):
    repo = old_workspace
    assert "up to date" in run([str(VENV_BIN / "dvc"), "status", "report"], cwd=repo).stdout
    shown = invoke("init", "--upgrade")
    assert shown.exit_code == 0, shown.output
    for name in ("dvc.yaml", "configs/plots/time_series.json", ".gitignore"):
        assert f"# {name}:" in shown.stdout
    assert f"+    cmd: python -m ita_vc.pipeline backtest --engine {ENGINE_VERSION}" in shown.stdout
    assert "-    cmd: python -m ita_vc.pipeline backtest\n" in shown.stdout
    assert "+/dvc_plots/" in shown.stdout and "nothing written" in shown.stdout
    assert repo.git("status", "--porcelain").stdout == ""
    written = invoke("init", "--upgrade", "--yes")
    assert written.exit_code == 0, written.output
    dvc_yaml = (repo / "dvc.yaml").read_text()
    assert dvc_yaml.startswith("# The backtest pipeline (`dvc repro`).")  # comments kept
    stages = yaml.safe_load(dvc_yaml)["stages"]
    assert {s: b["cmd"] for s, b in stages.items()} == {
        s: f"python -m ita_vc.pipeline {s} --engine {ENGINE_VERSION}" for s in stages
    }
    plot = stages["report"]["plots"][0]["results/plots/equity.csv"]
    assert plot["template"] == "configs/plots/time_series.json"
    assert (repo / "configs/plots/time_series.json").is_file()
    assert "/dvc_plots/" in (repo / ".gitignore").read_text().splitlines()
    # an engine change is visible to DVC: the stages' commands changed
    status = run([str(VENV_BIN / "dvc"), "status", "report"], cwd=repo).stdout
    assert "changed command" in status
    again = invoke("init", "--upgrade")
    assert again.exit_code == 0 and "up to date" in again.stdout
    # without a validation: section in params.yaml the validate stage is not added: a note
    # says how (DVC refuses a stage whose params are missing)
    assert "validate" not in stages
    assert "note: the validation suite" in again.stdout


def test_upgrade_adds_the_validate_stage_once_params_has_its_section(old_workspace):
    from ita_vc.initialize import _template

    repo = old_workspace
    assert invoke("init", "--upgrade", "--yes").exit_code == 0
    template = _template("params.yaml")
    params = repo / "params.yaml"
    params.write_text(params.read_text() + template[template.index("validation:") :])
    shown = invoke("init", "--upgrade", "--yes")
    assert shown.exit_code == 0, shown.output
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert (
        stages["validate"]["cmd"] == f"python -m ita_vc.pipeline validate --engine {ENGINE_VERSION}"
    )
    assert "validation" in stages["validate"]["params"]
    assert "validation.overfitting" in stages["grid"]["params"]
    # DVC reads the new stage: every declared param is in params.yaml
    status = run([str(VENV_BIN / "dvc"), "status", "validate"], cwd=repo, env=pipeline_env())
    assert "validate" in status.stdout
    assert "note:" not in invoke("init", "--upgrade").stdout


def test_upgrade_leaves_a_users_own_pipeline_alone(tmp_repo):
    own = "stages:\n  mine:\n    cmd: python train.py  # mine\n    outs: [model.bin]\n"
    (tmp_repo / "dvc.yaml").write_text(own)
    shown = invoke("init", "--upgrade", "--yes")
    assert shown.exit_code == 0, shown.output
    assert (tmp_repo / "dvc.yaml").read_text() == own
    assert invoke("init", "--yes").exit_code == 2


def test_a_stage_refuses_an_engine_it_does_not_implement(tmp_repo):
    make_pipeline_repo(tmp_repo)
    text = (
        (tmp_repo / "dvc.yaml")
        .read_text()
        .replace(f"prepare --engine {ENGINE_VERSION}", "prepare --engine 9.9")
    )
    (tmp_repo / "dvc.yaml").write_text(text)
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "prepare", "--engine", "9.9"],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        check=False,
        env=pipeline_env(),
    )
    assert proc.returncode == 8 and "pins engine 9.9" in proc.stderr
    assert not (tmp_repo / "results" / "prepared").exists()
    unpinned = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "prepare"],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        check=False,
        env=pipeline_env(),
    )
    assert unpinned.returncode == 0 and "does not pin the engine" in unpinned.stderr


@pytest.mark.slow
def test_dvc_plots_show_draws_a_line_over_time_and_diff_overlays_revisions(tmp_repo):
    repo = make_pipeline_repo(tmp_repo)
    run([str(VENV_BIN / "dvc"), "repro", "-q", "report"], cwd=repo, env=pipeline_env())
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "first")
    shown = json.loads(run([str(VENV_BIN / "dvc"), "plots", "show", "--json"], cwd=repo).stdout)
    assert not shown.get("errors")
    (plot,) = shown["data"]["results/plots/equity.csv"]
    spec = plot["content"]
    assert spec["encoding"]["x"] == {
        "field": "time",
        "type": "temporal",
        "title": "time",
        "axis": {"format": "%Y-%m-%d %H:%M"},
    }
    assert spec["mark"]["type"] == "line"
    values = spec["data"]["values"]
    assert len(values) > 100
    assert all(isinstance(v["equity"], int | float) or float(v["equity"]) for v in values)
    assert values[0]["time"].startswith("2025-01-04T")  # ISO times a temporal axis draws
    assert (
        not (repo / "dvc_plots").exists()
        or "dvc_plots" not in repo.git("status", "--porcelain").stdout
    )
    # a second revision: plots diff overlays both, coloured by revision
    text = (repo / "params.yaml").read_text().replace("slippage_pct: 0.01", "slippage_pct: 0.2")
    (repo / "params.yaml").write_text(text)
    run([str(VENV_BIN / "dvc"), "repro", "-q", "report"], cwd=repo, env=pipeline_env())
    diff = json.loads(
        run([str(VENV_BIN / "dvc"), "plots", "diff", "HEAD", "--json"], cwd=repo).stdout
    )
    (both,) = diff["data"]["results/plots/equity.csv"]
    assert set(both["revisions"]) == {"HEAD", "workspace"}
    revs = {v.get("rev") for v in both["content"]["data"]["values"]}
    assert revs == {"HEAD", "workspace"}
    assert both["content"]["encoding"]["x"]["type"] == "temporal"


@pytest.mark.slow
def test_dvc_plots_output_is_ignored_by_git_so_runs_are_not_refused(tmp_repo):
    repo = make_pipeline_repo(tmp_repo)
    run([str(VENV_BIN / "dvc"), "repro", "-q", "report"], cwd=repo, env=pipeline_env())
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "first")
    run([str(VENV_BIN / "dvc"), "plots", "show"], cwd=repo)
    assert (repo / "dvc_plots" / "index.html").is_file()
    assert repo.git("status", "--porcelain").stdout == ""


def test_overfitting_set_after_the_stage_was_added_reaches_the_grid_stage(old_workspace):
    repo = old_workspace
    params = repo / "params.yaml"
    params.write_text(params.read_text() + "validation:\n  seed: 1\n  permutation: {n: 10}\n")
    assert invoke("init", "--upgrade", "--yes").exit_code == 0
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert "validate" in stages and "validation.overfitting" not in stages["grid"]["params"]
    assert "once you set `validation.overfitting`" in invoke("init", "--upgrade").stdout
    params.write_text(params.read_text() + "  overfitting: {partitions: 4}\n")
    shown = invoke("init", "--upgrade", "--yes")
    assert shown.exit_code == 0 and "+      - validation.overfitting" in shown.stdout
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert "validation.overfitting" in stages["grid"]["params"]
    assert "note:" not in invoke("init", "--upgrade").stdout
