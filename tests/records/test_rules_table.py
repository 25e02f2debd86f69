"""The rules table (seed 001's DB record), rebuilt from rules/ by `index rebuild`."""

from __future__ import annotations

import os

from ita_vc.rules import RuleRegistry
from ita_vc.rules.table import rule_rows, rules_table, sync_rules
from tests.helpers import invoke


def test_rules_table_is_rebuilt_from_the_rule_files(workspace, tmp_repo):
    registry = RuleRegistry(workspace)
    first = registry.new("ma_cross", author="alice")
    second = registry.bump("ma_cross", sets=["indicators.0.params.fast=5"], author="bob")
    registry.activate("ma_cross", "1.1")
    registry.new("breakout", author="carol")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "rules")
    assert sync_rules(workspace) == 3
    rows = {r["id"]: r for r in rules_table(workspace)}
    assert sorted(rows) == ["breakout@v1.0", "ma_cross@v1.0", "ma_cross@v1.1"]
    v10, v11 = rows["ma_cross@v1.0"], rows["ma_cross@v1.1"]
    assert (v10["setup_id"], v10["version"], v10["file_path"]) == (
        "ma_cross",
        "v1.0",
        "rules/ma_cross/v1.0.yaml",
    )
    assert (v10["author"], v10["active"], v10["params_hash"]) == ("alice", 0, first.params_hash)
    assert (v11["author"], v11["active"], v11["params_hash"]) == ("bob", 1, second.params_hash)
    assert v11["created_at"] == second.created
    assert [r["id"] for r in rules_table(workspace, active=True)] == ["ma_cross@v1.1"]
    assert [r["id"] for r in rules_table(workspace, setup_id="breakout")] == ["breakout@v1.0"]

    # the table is a cache: `index rebuild` recreates it
    os.unlink(workspace.index_path)
    assert invoke("index", "rebuild").exit_code == 0
    assert {r["id"]: r for r in rules_table(workspace)} == rows

    # an invalid version file is left out (rule check reports it), the others stay
    (tmp_repo / "rules" / "breakout" / "v1.1.yaml").write_text("not: a rule\n")
    assert [r["id"] for r in rule_rows(workspace)] == sorted(rows)
