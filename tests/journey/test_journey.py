"""A researcher's journey in a workspace of their own, outside this repository, with the hooks
installed - every step through the installed `ita-vc`, `git` and `dvc` commands.

By default the commands come from this venv. `.ci/run` runs the same module against a wheel
installed in a fresh venv (``ITA_VC_JOURNEY_BIN=<venv>/bin``), with no file of this repository
in the workspace and nothing of it on ``PYTHONPATH``.

The steps run in order and share one workspace (a journey, not independent cases).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, VENV_BIN

BIN = Path(os.environ.get("ITA_VC_JOURNEY_BIN") or VENV_BIN)
_RUN_ID = re.compile(r"bt_\d{4}_\d\d_\d\d_\d{3}_[0-9a-f]{3}")
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def sh(*cmd: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command as the user would; with ``ok`` it must succeed."""
    exe = str(BIN / cmd[0]) if cmd[0] in ("ita-vc", "dvc", "python") else cmd[0]
    proc = subprocess.run(
        [exe, *cmd[1:]],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _binance_zip(folder: Path, days: int) -> Path:
    """A Binance 1m kline dump (no header, 12 columns, ms open times) in its zip."""
    import numpy as np

    n = days * 1440
    rng = np.random.default_rng(42)
    close = np.round(42_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000  # 2024-01-01
    rows = "".join(
        f"{t},{o},{max(o, c) + 3},{min(o, c) - 3},{c},{1 + t % 7},{t + 59_999},0,10,0,0,0\n"
        for t, o, c in zip(ts, open_, close, strict=True)
    )
    path = folder / "BTCUSDT-1m-2024-01.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1m-2024-01.csv", rows)
    path.write_bytes(buffer.getvalue())
    return path


PARAMS = """\
# my research
rule:
  setup_id: GoogCross
  version: "1.1"
data:
  market: generic
  symbol: GOOG
  timeframe: 1d
  source_timeframe: 1d
  start: "2006-01-01"
  end: "2012-01-01"
backtest:
  init_cash: 10000
  fee_pct: 0.1
  slippage_pct: 0.05
  warmup_bars: 50
grid:
  indicators:
    - name: ma_cross
      params: {fast: [5, 10, 15], slow: [20, 30, 40]}
  targets: {sl_pct: [null, 5.0], tp_pct: [null, 10.0]}
  direction: long-only
  sizing: {mode: fixed_quote, amount: 2000}
  top_k: 5
  top_trades_n: 1
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    base = tmp_path_factory.mktemp("journey")
    assert not base.resolve().is_relative_to(REPO_ROOT)
    downloads = base / "downloads"
    downloads.mkdir()
    import backtesting

    shutil.copy(Path(backtesting.__file__).parent / "test" / "GOOG.csv", downloads)
    _binance_zip(downloads, days=3)
    return base


@pytest.fixture(scope="module")
def ws(home):
    return home / "research"


def test_1_init_with_hooks_and_the_first_refusal_says_what_to_do(home, ws):
    result = sh("ita-vc", "init", "--hooks", str(ws), cwd=home)
    assert "Next steps:" in result.stdout and "ita-vc data import" in result.stdout
    hooks = ws / ".git" / "hooks"
    assert (hooks / "pre-commit").is_file() and (hooks / "post-checkout").is_file()
    sh("git", "add", "-A", cwd=ws)
    sh("git", "commit", "-q", "-m", "ita-vc init", cwd=ws)  # through the installed hooks
    refused = sh("ita-vc", "run", cwd=ws, ok=False)
    assert refused.returncode == 11, refused.stderr
    assert "ita-vc rule new example_ma_cross" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_2_import_daily_goog_and_a_zipped_binance_dump(home, ws):
    goog = sh(
        "ita-vc",
        "data",
        "import",
        str(home / "downloads/GOOG.csv"),
        "--market",
        "generic",
        "--symbol",
        "GOOG",
        "--commit",
        cwd=ws,
    )
    assert "generic/GOOG/1d.parquet" in goog.stdout  # the timeframe is inferred
    btc = sh(
        "ita-vc",
        "data",
        "import",
        str(home / "downloads/BTCUSDT-1m-2024-01.zip"),
        "--market",
        "binance-spot",
        "--symbol",
        "BTCUSDT",
        "--commit",
        cwd=ws,
    )
    assert "4,320 rows" in btc.stdout
    status = json.loads(sh("ita-vc", "data", "status", "--json", cwd=ws).stdout)
    assert {(d["symbol"], d["timeframe"], d["rows"]) for d in status} == {
        ("GOOG", "1d", 2148),
        ("BTCUSDT", "1m", 4320),
    }
    assert sh("git", "status", "--porcelain", cwd=ws).stdout == ""


def test_3_rules_new_edit_commit_refused_edit_bump(ws):
    sh("ita-vc", "rule", "new", "GoogCross", cwd=ws)
    rule = ws / "rules/GoogCross/v1.0.yaml"
    rule.write_text(rule.read_text().replace("slow: 20", "slow: 30"))  # before committing
    sh("git", "add", "-A", cwd=ws)
    hook = sh("git", "commit", "-q", "-m", "rule", cwd=ws, ok=False)
    assert hook.returncode != 0 and "ita-vc rule rehash GoogCross" in hook.stderr
    sh("ita-vc", "rule", "rehash", "GoogCross", cwd=ws)
    sh("git", "add", "-A", cwd=ws)
    sh("git", "commit", "-q", "-m", "rule GoogCross", cwd=ws)
    rule.write_text(rule.read_text().replace("slow: 30", "slow: 40"))  # in place: refused
    edit = sh("git", "commit", "-q", "-am", "sneaky", cwd=ws, ok=False)
    assert edit.returncode != 0 and "committed and immutable" in edit.stderr
    sh("git", "checkout", "--", "rules", cwd=ws)
    sh(
        "ita-vc",
        "rule",
        "bump",
        "GoogCross",
        "-S",
        "indicators.0.params.fast=5",
        "--reason",
        "faster",
        cwd=ws,
    )
    sh("git", "add", "-A", cwd=ws)
    sh("git", "commit", "-q", "-m", "GoogCross v1.1", cwd=ws)
    listed = sh("ita-vc", "rule", "list", cwd=ws).stdout
    assert "v1.0" in listed and "v1.1" in listed


def test_4_runs_are_recorded_listed_shown_compared_and_verified(ws):
    (ws / "params.yaml").write_text(PARAMS)
    sh("git", "commit", "-q", "-am", "my params", cwd=ws)
    first = sh("ita-vc", "run", "--note", "baseline", cwd=ws)
    a = _RUN_ID.search(first.stdout).group(0)
    second = sh("ita-vc", "run", "-S", "backtest.fee_pct=0.2", cwd=ws)
    b = _RUN_ID.search(second.stdout).group(0)
    again = sh("ita-vc", "run", "-S", "backtest.fee_pct=0.2", cwd=ws)
    assert f"already recorded as {b}" in again.stdout
    listed = json.loads(sh("ita-vc", "runs", "list", "--json", cwd=ws).stdout)
    # the committed runs, and the refusal of test 1 (a failed run of the clone's run log)
    assert [r["run_id"] for r in listed if r["status"] == "completed"] == [b, a]
    assert [r["status"] for r in listed if r["run_id"] not in (a, b)] == ["failed"]
    shown = sh("ita-vc", "runs", "show", a, cwd=ws).stdout
    assert "GoogCross" in shown
    assert "fee_pct" in sh("ita-vc", "runs", "diff", a, b, cwd=ws).stdout
    deep = sh("ita-vc", "snapshot", "verify", a, "--deep", cwd=ws)
    assert "FAIL" not in deep.stdout
    snapshot = json.loads((ws / f"provenance/{a}.json").read_text())
    assert snapshot["stages"]["grid"] == "not_run" and snapshot["schema_version"] == 4
    assert (ws / f"provenance/{a}.manifest.json").is_file()  # committed with the snapshot
    # a refused run is a failed run of the clone's run log, listed with its error
    assert sh("ita-vc", "run", "-S", "backtest.fee_pct=-1", cwd=ws, ok=False).returncode == 11
    failed = json.loads(sh("ita-vc", "runs", "list", "--status", "failed", "--json", cwd=ws).stdout)
    assert (failed[0]["stage"], failed[0]["error_code"]) == ("preflight", 11)  # newest first
    assert "fee_pct" in failed[0]["error_message"] and len(failed) == 2
    assert sh("git", "status", "--porcelain", cwd=ws).stdout == ""
    (ws / "run_ids.txt").write_text(f"{a}\n{b}\n")


def test_5_a_teammate_clones_pulls_and_reproduces_bit_exactly(home, ws):
    a = (ws / "run_ids.txt").read_text().split()[0]
    remote = home / "dvc-remote"
    sh("git", "init", "-q", "--bare", str(home / "origin.git"), cwd=home)
    sh("git", "remote", "add", "origin", str(home / "origin.git"), cwd=ws)
    sh("dvc", "remote", "add", "-d", "team", str(remote), cwd=ws)
    sh("git", "commit", "-q", "-am", "the team's DVC remote", cwd=ws)
    pushed = json.loads(sh("ita-vc", "push", "--json", cwd=ws).stdout)  # through the hooks
    assert pushed["pushed"] > 0 and pushed["missing"] == [] and len(pushed["runs"]) >= 2
    clone = home / "teammate"
    cloned = json.loads(
        sh("ita-vc", "clone", str(home / "origin.git"), str(clone), "--json", cwd=home).stdout
    )
    assert cloned["ok"] and cloned["missing_remotely"] == []
    # the run's candles are older than the workspace's: reproduce fetches them itself
    result = sh("ita-vc", "reproduce", a, cwd=clone)
    assert f"{a} reproduced bit-exactly" in result.stdout
    assert sh("git", "worktree", "list", cwd=clone).stdout.count("\n") == 1
    again = json.loads(sh("ita-vc", "pull", "--json", cwd=clone).stdout)
    assert again["commits"] == 0 and again["fetched"] == 0 and again["ok"]


def test_6_grid_with_overrides_promote_and_the_promoted_version_reproduces_its_row(home, ws):
    import pandas as pd

    sh("ita-vc", "grid", "run", "--workers", "1", cwd=ws)
    grids = json.loads(
        sh("ita-vc", "runs", "list", "--json", "--status", "completed", cwd=ws).stdout
    )
    (grid,) = [r for r in grids if r["flow"] == "grid"]
    assert grid["run_id"].startswith("gr_") and grid["setup_id"] == "GoogCross"
    topk = pd.read_parquet(ws / "results/grid/topk.parquet")
    best = topk.iloc[0]
    sh("ita-vc", "grid", "promote", best["variant_key"], cwd=ws)
    versions = sorted((ws / "rules/GoogCross").glob("v*.yaml"))
    promoted = versions[-1]
    import yaml

    doc = yaml.safe_load(promoted.read_text())
    assert doc["direction"] == "long-only"
    assert doc["sizing"] == {"mode": "fixed_quote", "amount": 2000}
    out = home / "promoted-backtest"
    sh(
        "ita-vc",
        "backtest",
        "run",
        "--candles",
        str(ws / "data/candles/generic/GOOG/1d.parquet"),
        "--rule",
        str(promoted),
        "--params",
        str(ws / "params.yaml"),
        "--out",
        str(out),
        cwd=ws,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    for key, value in metrics.items():
        grid_value = best[key]
        if value is None:
            assert grid_value is None or pd.isna(grid_value), key  # None is NaN in parquet
        elif isinstance(value, float):
            assert value == float(grid_value), key  # bit for bit
        else:
            assert value == grid_value, key


def test_7_dvc_plots_draw_a_line_and_gc_plans(ws):
    shown = json.loads(sh("dvc", "plots", "show", "--json", cwd=ws).stdout)
    (plot,) = shown["data"]["results/plots/equity.csv"]
    assert plot["content"]["encoding"]["x"]["type"] == "temporal"
    assert len(plot["content"]["data"]["values"]) > 100
    sh("dvc", "plots", "show", cwd=ws)
    assert "dvc_plots" not in sh("git", "status", "--porcelain", cwd=ws).stdout
    plan = sh("ita-vc", "gc", "--dry-run", cwd=ws)
    assert "dry run: nothing changed" in plan.stdout
    assert "Traceback" not in plan.stderr


def test_8_a_grid_job_runs_in_the_background_and_is_adopted_as_a_run(ws):
    if sh("git", "status", "--porcelain", cwd=ws).stdout.strip():
        sh("git", "add", "-A", cwd=ws)
        sh("git", "commit", "-qm", "promoted variant", cwd=ws)
    other = json.loads(
        sh("ita-vc", "jobs", "submit", "--json", "-S", "grid.top_k=3", cwd=ws).stdout
    )
    job = json.loads(sh("ita-vc", "jobs", "submit", "--json", "--note", "as is", cwd=ws).stdout)
    listed = sh("ita-vc", "jobs", "list", cwd=ws).stdout
    assert "queued" in listed and "GoogCross" in listed
    for _ in range(2):
        sh("ita-vc", "worker", "--once", "--workers", "1", cwd=ws)
    for job_id in (other["id"], job["id"]):
        status = json.loads(sh("ita-vc", "jobs", "status", str(job_id), "--json", cwd=ws).stdout)
        assert status["state"] == "succeeded" and status["attempt"] == 1, status
    top = json.loads(sh("ita-vc", "jobs", "top", str(other["id"]), "--json", cwd=ws).stdout)
    assert top["final"] and len(top["rows"]) == 3
    refused = sh("ita-vc", "jobs", "adopt", str(other["id"]), cwd=ws, ok=False)
    assert refused.returncode == 12 and "params.yaml: grid" in refused.stderr
    # this params.yaml has no validation: section, which dvc.yaml's grid stage reads
    refused = sh("ita-vc", "jobs", "adopt", str(job["id"]), cwd=ws, ok=False)
    assert refused.returncode == 12 and "DVC cannot run the grid stage" in refused.stderr
    params = ws / "params.yaml"
    params.write_text(params.read_text() + "validation:\n  overfitting: null\n")
    sh("git", "commit", "-qam", "no overfitting statistics", cwd=ws)
    job = json.loads(sh("ita-vc", "jobs", "submit", "--json", cwd=ws).stdout)
    sh("ita-vc", "worker", "--once", "--workers", "1", cwd=ws)
    adopted = sh("ita-vc", "jobs", "adopt", str(job["id"]), cwd=ws)
    run_id = adopted.stdout.split(" adopted as ")[1].split()[0]
    assert sh("git", "status", "--porcelain", cwd=ws).stdout.strip() == ""
    sh("ita-vc", "snapshot", "verify", run_id, cwd=ws)
    assert "grid" in sh("ita-vc", "runs", "show", run_id, cwd=ws).stdout
