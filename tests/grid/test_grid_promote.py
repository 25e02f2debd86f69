"""`grid promote` writes a version that reproduces its variant (issue 13 item 2): indicators,
targets, direction and sizing - so a backtest of the promoted version equals the grid row on
every metric, also when the grid overrode the rule's direction and sizing."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ita_vc.backtest.run import run_backtest
from tests.helpers import invoke, make_pipeline_repo

OVERRIDES = "  direction: long-only\n  sizing: {mode: fixed_quote, amount: 1000}\n"


def _grid(repo, extra: str = "") -> pd.DataFrame:
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("  top_k: 20\n", "  top_k: 6\n" + extra))
    result = invoke("grid", "run", "--workers", "1")
    assert result.exit_code == 0, result.output
    return pd.read_parquet(repo / "results/grid/topk.parquet")


def _same(row, metrics) -> list[str]:
    """The metric names where the row and a single backtest differ (NaN equals NaN)."""

    def equal(a, b):
        if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
            return (a is None or pd.isna(a)) and (b is None or pd.isna(b))
        return a == b

    return [name for name, value in metrics.items() if not equal(row[name], value)]


def _backtest_of(repo, setup_id, version):
    from ita_vc.pipeline.stages import grid_inputs, load_params_file
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(repo)
    prepared, _rule, params, _request = grid_inputs(workspace, load_params_file(repo))
    rule = RuleRegistry(workspace).get(setup_id, version)
    return rule, run_backtest(prepared, rule, params)


@pytest.mark.parametrize("rank", [1, 4])
def test_a_promoted_variant_with_overrides_reproduces_the_grid_row(tmp_repo, rank):
    make_pipeline_repo(tmp_repo)
    topk = _grid(tmp_repo, OVERRIDES)
    row = topk.iloc[rank - 1]
    recorded = json.loads(row["params_json"])
    assert recorded["direction"] == "long-only"
    assert recorded["sizing"] == {"mode": "fixed_quote", "amount": 1000}
    promoted = invoke("grid", "promote", row["variant_key"])
    assert promoted.exit_code == 0, promoted.output
    rule, single = _backtest_of(tmp_repo, "example_ma_cross", "1.1")
    assert rule.direction == "long-only"
    assert rule.sizing == {"mode": "fixed_quote", "amount": 1000}
    assert [i["name"] for i in rule.indicators] == ["ma_cross"]
    assert rule.targets == {"tp_pct": recorded["tp_pct"], "sl_pct": recorded["sl_pct"]}
    assert _same(row, single.metrics) == []
    # the long-short, all-in version the old promote wrote does not reproduce it
    _base, original = _backtest_of(tmp_repo, "example_ma_cross", "1.0")
    assert single.summary["direction"] != original.summary["direction"]


def test_without_overrides_the_rows_and_the_promoted_version_are_as_before(tmp_repo):
    make_pipeline_repo(tmp_repo)
    topk = _grid(tmp_repo)
    row = topk.iloc[0]
    assert set(json.loads(row["params_json"])) == {"indicators", "sl_pct", "tp_pct"}
    assert invoke("grid", "promote", row["variant_key"]).exit_code == 0
    text = (tmp_repo / "rules/example_ma_cross/v1.1.yaml").read_text()
    assert "direction: long-short" in text and "mode: all_in" in text
    _rule, single = _backtest_of(tmp_repo, "example_ma_cross", "1.1")
    assert _same(row, single.metrics) == []


def test_promote_from_a_later_version_still_takes_the_grid_versions_execution(tmp_repo):
    """The grid swept v1.1 (long-only by its own file); v1.2 (short-only) came later; the
    promoted v1.3 bumps from v1.2 but must run the variant as the grid did."""
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    make_pipeline_repo(tmp_repo)
    registry = RuleRegistry(Workspace.at(tmp_repo))
    registry.bump("example_ma_cross", sets=["direction=long-only"])  # v1.1
    params = tmp_repo / "params.yaml"
    params.write_text(params.read_text().replace('version: "1.0"', 'version: "1.1"'))
    row = _grid(tmp_repo).iloc[0]
    registry.bump("example_ma_cross", sets=["direction=short-only"])  # v1.2
    assert invoke("grid", "promote", row["variant_key"]).exit_code == 0
    rule, single = _backtest_of(tmp_repo, "example_ma_cross", "1.3")
    assert rule.direction == "long-only" and _same(row, single.metrics) == []


def test_promote_errors_are_clear(tmp_repo):
    make_pipeline_repo(tmp_repo)
    missing = invoke("grid", "promote", "ma_cross(fast=5,slow=30)|sl=none|tp=none")
    assert missing.exit_code == 1 and "no grid results in" in missing.stderr
    _grid(tmp_repo)
    unknown = invoke("grid", "promote", "nope|sl=none|tp=none")
    assert unknown.exit_code == 1 and "no variant 'nope|sl=none|tp=none'" in unknown.stderr
    (tmp_repo / "results/grid/topk.parquet").write_bytes(b"PAR1 not really")
    damaged = invoke("grid", "promote", "nope|sl=none|tp=none")
    assert damaged.exit_code == 11 and "unreadable grid results" in damaged.stderr
    assert not (tmp_repo / "rules/example_ma_cross/v1.1.yaml").exists()
