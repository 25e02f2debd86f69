"""`dvc repro` of the backtest pipeline in a real workspace, and `ita-vc backtest run`."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import VENV_BIN, invoke, make_pipeline_repo, run


@pytest.fixture
def pipeline_repo(tmp_repo):
    return make_pipeline_repo(tmp_repo)


def _dvc(repo, *args, check=True):
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    return run([str(VENV_BIN / "dvc"), *args], cwd=repo, env=env, check=check)


def test_dvc_repro_runs_the_pipeline_and_dvc_shows_metrics_and_plots(pipeline_repo):
    out = _dvc(pipeline_repo, "repro")
    assert "Running stage 'prepare'" in out.stdout and "Running stage 'report'" in out.stdout
    results = pipeline_repo / "results"
    for rel in (
        "backtest/trades.parquet",
        "backtest/fills.parquet",
        "backtest/equity.parquet",
        "backtest/drawdown.parquet",
        "backtest/summary.json",
        "metrics.json",
        "report/report.md",
        "report/equity.png",
        "report/drawdown.png",
        "report/price.png",
        "report/report.html",
        "plots/equity.csv",
        "prepared/candles.parquet",
    ):
        assert (results / rel).is_file(), rel
    summary = json.loads((results / "backtest/summary.json").read_text())
    assert (summary["setup_id"], summary["rule_version"]) == ("example_ma_cross", "v1.0")
    assert summary["range"]["first_bar"] == "2025-01-04T00:00:00Z"
    assert summary["range"]["warmup_bars"] == 72  # only 3 days of 1h bars before the start
    metrics = json.loads(_dvc(pipeline_repo, "metrics", "show", "--json").stdout)
    shown = metrics[""]["data"]["results/metrics.json"]["data"]
    assert shown["Num. Trades"] == summary["num_trades"]
    plots = _dvc(pipeline_repo, "plots", "show", "--json").stdout
    assert "results/plots/equity.csv" in plots
    assert "Data and pipelines are up to date" in _dvc(pipeline_repo, "status").stdout
    lock = (pipeline_repo / "dvc.lock").read_text()
    assert "rule.setup_id: example_ma_cross" in lock and "rule.version: '1.0'" in lock
    assert "rules/example_ma_cross/v1.0.yaml" in lock


@pytest.mark.slow
def test_a_new_rule_version_reruns_only_the_backtest(pipeline_repo):
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    _dvc(pipeline_repo, "repro", "report")  # the whole pipeline: the test above
    RuleRegistry(Workspace.at(pipeline_repo)).bump(
        "example_ma_cross", sets=["indicators.0.params.fast=5"]
    )
    params = pipeline_repo / "params.yaml"
    params.write_text(params.read_text().replace('version: "1.0"', 'version: "1.1"'))
    out = _dvc(pipeline_repo, "repro", "report")
    assert "Stage 'prepare' didn't change, skipping" in out.stdout
    assert "Running stage 'backtest'" in out.stdout
    summary = json.loads((pipeline_repo / "results/backtest/summary.json").read_text())
    assert summary["rule_version"] == "v1.1"


def test_a_float_version_in_params_is_refused(pipeline_repo, capsys):
    params = pipeline_repo / "params.yaml"
    params.write_text(params.read_text().replace('version: "1.0"', "version: 1.10"))
    from ita_vc.pipeline.__main__ import main

    os.chdir(pipeline_repo)
    for stage in ("prepare", "backtest"):
        assert main([stage]) == 11
        assert "rule.version 1.1 is a number" in capsys.readouterr().err


def test_backtest_run_cli_outside_dvc(tmp_path):
    from ita_vc.candles.sample import SAMPLE_SPECS, generate_candles

    candles = tmp_path / "c.parquet"
    generate_candles(SAMPLE_SPECS[1]).iloc[:5000].to_parquet(candles)
    rule = tmp_path / "rule.yaml"
    rule.write_text(
        "setup_id: mine\nversion: '2.3'\nindicators:\n"
        "  - {name: rsi, params: {window: 14}}\n"
        "targets: {tp_pct: 1.0, sl_pct: 0.5}\n"
    )
    params = tmp_path / "params.yaml"
    params.write_text("data: {market: bybit-futures, timeframe: 5m}\nbacktest: {warmup_bars: 10}\n")
    result = invoke(
        "backtest",
        "run",
        "--candles",
        str(candles),
        "--rule",
        str(rule),
        "--params",
        str(params),
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "mine v2.3" in result.stdout
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["fee_pct"] == 0.1 and summary["timeframe"] == "5m"
    assert set(json.loads((tmp_path / "out/metrics.json").read_text())) >= {"Sharpe Ratio"}
    bad = invoke(
        "backtest",
        "run",
        "--candles",
        str(candles),
        "--rule",
        str(rule),
        "--out",
        str(tmp_path / "o2"),
        "--params",
        str(tmp_path / "nope.yaml"),
        cwd=tmp_path,
    )
    assert bad.exit_code == 11
    wrong = tmp_path / "mine.yaml"
    wrong.write_text("backtest:\n  fee_pct: -1\n  init_cash: x\n")
    bad = invoke(
        "backtest",
        "run",
        "--candles",
        str(candles),
        "--rule",
        str(rule),
        "--out",
        str(tmp_path / "o3"),
        "--params",
        str(wrong),
        cwd=tmp_path,
    )
    assert bad.exit_code == 11
    assert f"{wrong}:2: backtest.fee_pct" in bad.stderr  # this file, its line, every problem
    assert f"{wrong}:3: backtest.init_cash" in bad.stderr
    assert not (tmp_path / "o3" / "summary.json").exists()
