"""`ita-vc grid run` / `grid promote` and the dvc.yaml grid stage in a real workspace."""

from __future__ import annotations

import json

import pandas as pd

from ita_vc.backtest.run import run_backtest
from tests.helpers import invoke, make_pipeline_repo


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
    partial = invoke("grid", "run", "--workers", "1", "--max-seconds", "0", "--out",
                     str(tmp_repo / "g"))
    assert partial.exit_code == 0 and "PARTIAL: " in partial.stdout
    assert json.loads((tmp_repo / "g/summary.json").read_text())["partial"] is True
    resumed = invoke("grid", "run", "--workers", "1", "--resume", "--out", str(tmp_repo / "g"))
    assert resumed.exit_code == 0 and "PARTIAL" not in resumed.stdout
    params = tmp_repo / "params.yaml"
    params.write_text(params.read_text().replace("  top_k: 20\n", "  top_k: 20\n"
                                                 "  max_variants: 5\n"))
    refused = invoke("grid", "run")
    assert refused.exit_code == 11 and "max_variants = 5" in refused.stderr
