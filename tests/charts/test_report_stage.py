"""The report stage in real workspaces: `ita-vc run` then `ita-vc reproduce` stays bit-exact
with the new charts (report.html included), and a workspace made by the previous template
gets the new report stage through `ita-vc init --upgrade`."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from ita_vc.initialize import dvc_yaml_text
from ita_vc.snapshot.runner import pipeline_env
from tests.helpers import VENV_BIN, TmpRepo, invoke, ita_vc_subprocess, make_pipeline_repo, run

pytestmark = pytest.mark.slow

REPORT_FILES = ["drawdown.png", "equity.png", "price.png", "report.html", "report.md"]
# the report stage as `ita-vc init` wrote it before the price chart (deps without the candles)
PREVIOUS_REPORT_DEPS = "    deps:\n      - results/backtest\n      - results/metrics.json\n"
REPORT_DEPS = (
    "    deps:\n      - results/prepared\n      - results/backtest\n      - results/metrics.json\n"
)


def _ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_run_then_reproduce_is_bit_exact_with_the_html_report(tmp_path):
    root = tmp_path / "research"
    _ok(ita_vc_subprocess("init", "--hooks", str(root), cwd=tmp_path))
    repo = TmpRepo(root)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "ita-vc init")  # through the installed hooks
    make_pipeline_repo(repo)
    _ok(ita_vc_subprocess("run", "--note", "charts", cwd=repo))
    report = repo / "results" / "report"
    assert sorted(p.name for p in report.iterdir() if not p.name.startswith(".")) == REPORT_FILES
    html = (report / "report.html").read_bytes()
    assert not re.search(rb"<script[^>]*\ssrc=|<link[^>]*\shref=[\"']?(https?:)?//", html)
    (listed,) = json.loads(_ok(ita_vc_subprocess("runs", "list", "--json", cwd=repo)).stdout)
    run_id = listed["run_id"]
    result = _ok(ita_vc_subprocess("reproduce", run_id, cwd=repo))
    assert f"{run_id} reproduced bit-exactly" in result.stdout
    assert (report / "report.html").read_bytes() == html
    assert repo.git("status", "--porcelain").stdout == ""


def _as_previous_template(repo):
    text = (repo / "dvc.yaml").read_text()
    assert text.count(REPORT_DEPS) == 1
    (repo / "dvc.yaml").write_text(text.replace(REPORT_DEPS, PREVIOUS_REPORT_DEPS))
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "a workspace as the previous ita-vc made it")


def test_a_workspace_of_the_previous_template_upgrades_to_the_new_report_stage(tmp_repo):
    repo = make_pipeline_repo(tmp_repo)
    _as_previous_template(repo)
    dvc = str(VENV_BIN / "dvc")
    run([dvc, "repro", "-q", "report"], cwd=repo, env=pipeline_env())
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "a run with the previous pipeline")
    assert "up to date" in run([dvc, "status", "report"], cwd=repo).stdout
    shown = invoke("init", "--upgrade")
    assert shown.exit_code == 0, shown.output
    assert "+      - results/prepared\n" in shown.stdout and "report deps" in shown.stdout
    assert repo.git("status", "--porcelain").stdout == ""  # shown, nothing written
    written = invoke("init", "--upgrade", "--yes")
    assert written.exit_code == 0, written.output
    assert yaml.safe_load((repo / "dvc.yaml").read_text()) == yaml.safe_load(dvc_yaml_text())
    assert "changed deps" in run([dvc, "status", "report"], cwd=repo).stdout
    run([dvc, "repro", "-q", "report"], cwd=repo, env=pipeline_env())
    assert (repo / "results/report/report.html").is_file()
    assert "up to date" in run([dvc, "status", "report"], cwd=repo).stdout
    again = invoke("init", "--upgrade")
    assert again.exit_code == 0 and "up to date" in again.stdout
