"""The core of `runs show` / `runs diff` / `runs list`: snapshot.summary and snapshot.runs,
on real workspaces with two recorded runs (a rule bump and a fee change between them)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from ita_vc.errors import UsageError
from ita_vc.snapshot.runs import (
    diff_runs,
    list_runs,
    parse_since,
    resolve_metric,
    resolve_run_id,
)
from ita_vc.snapshot.summary import (
    RunFacts,
    diff_facts,
    diff_texts,
    load_facts,
    run_diff,
    run_summary,
    short_hash,
)
from ita_vc.workspace import Workspace
from tests.helpers import TmpRepo

_DURATION = re.compile(r"^-?\d+ days \d\d:\d\d:\d\d(\.\d{6})?$")


@pytest.fixture(scope="module")
def two_runs(ran_repo, tmp_path_factory):
    """A copy of ``ran_repo`` with a second run: rule v1.1 (fast 5) and fee_pct 0.05."""
    from ita_vc.rules import RuleRegistry
    from ita_vc.snapshot.runner import run_pipeline

    root = tmp_path_factory.mktemp("two") / "repo"
    shutil.copytree(ran_repo, root, symlinks=True)
    repo = TmpRepo(root)
    workspace = Workspace.at(repo)
    RuleRegistry(workspace).bump("example_ma_cross", sets=["indicators.0.params.fast=5"])
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "v1.1")
    second = run_pipeline(
        workspace, version="1.1", overrides=[("backtest.fee_pct", 0.05)], note="Faster MA"
    )
    repo.first = ran_repo.report  # type: ignore[attr-defined]
    repo.second = second  # type: ignore[attr-defined]
    return repo


def _lines(summary, title):
    return {line.label: line.text for line in summary.section(title).lines}


def test_the_summary_has_every_section_a_person_reads(two_runs):
    workspace = Workspace.at(two_runs)
    snap = two_runs.first.snapshot
    summary = run_summary(workspace, two_runs.first.run_id)
    assert summary.headline.startswith(f"{two_runs.first.run_id}: example_ma_cross v1.0 on ")
    rule = _lines(summary, "rule")
    assert rule["setup"] == "example_ma_cross" and rule["version"] == "v1.0"
    assert rule["status"] == "inactive"
    assert rule["params_hash"] == snap["params_hash"][7:19]
    assert rule["indicators"] == "ma_cross(fast=10, slow=20)"
    data = _lines(summary, "data")
    backtest = json.loads((two_runs / "results/backtest/summary.json").read_text())
    assert backtest["rule_version"] == "v1.1"  # the working tree holds the second run ...
    assert data["bars"].startswith("180 ")  # ... the first run's summary.json came from the cache
    assert data["data_hash"] == short_hash(snap["data_hash"]) and len(data["data_hash"]) == 12
    assert data["range"] == f"{snap['data_range'][0]} .. {snap['data_range'][1]}"
    execution = _lines(summary, "execution")
    assert execution["direction"] == "long-short" and execution["sizing"] == "all_in"
    assert execution["fee"] == "0.075 %"  # params.yaml says null: the spot default was used
    assert execution["slippage"] == "0.01 %"
    git = _lines(summary, "git")
    assert git["commit"] == snap["git_commit_hash"][:10] and git["dirty"] == "no"
    assert _lines(summary, "run")["note"] == "first run"
    assert "results/backtest" in _lines(summary, "outputs")
    env = _lines(summary, "environment")
    assert f"numpy {snap['env']['packages']['numpy']}" in env["packages"]
    assert env["engine"] == snap["engine_version"]
    metrics = {m.name: m for m in summary.metrics}
    assert len(metrics) == 25 and list(metrics)[:3] == ["Start", "End", "Duration"]
    for name in ("Duration", "Max. Drawdown Duration", "Avg. Trade Duration"):
        assert _DURATION.match(metrics[name].text), metrics[name].text
        assert metrics[name].value == snap["metrics"][name]  # exact seconds kept
    assert re.fullmatch(r"-?\d+\.\d{3}", metrics["Sharpe Ratio"].text)
    assert re.fullmatch(r"-?\d+\.\d{2}", metrics["Total Return [%]"].text)
    assert json.loads(json.dumps(summary.to_dict()))["run_id"] == two_runs.first.run_id


def test_the_status_is_the_lifecycle_status_now_and_says_when_it_changed(two_runs, tmp_path):
    from ita_vc.rules import RuleRegistry

    root = tmp_path / "copy"
    shutil.copytree(two_runs, root, symlinks=True)
    workspace = Workspace.at(root)
    RuleRegistry(workspace).activate("example_ma_cross", "1.0")
    summary = run_summary(workspace, two_runs.first.run_id)
    assert _lines(summary, "rule")["status"] == "active (at the run: inactive)"


def test_rule_parameters_come_from_git_when_the_cache_lost_the_summary(two_runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(two_runs, root, symlinks=True)
    shutil.rmtree(root / ".dvc" / "cache")
    (root / "rules/example_ma_cross/v1.0.yaml").unlink()  # not even in the working tree
    facts = load_facts(Workspace.at(root), two_runs.first.run_id)
    assert facts.backtest == {}
    assert facts.rule["indicators"] == [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}]
    assert facts.rule_source.startswith("rules/example_ma_cross/v1.0.yaml at ")
    summary = run_summary(Workspace.at(root), two_runs.first.run_id)
    assert _lines(summary, "data")["bars"] == "-"  # not known without the summary
    assert _lines(summary, "execution")["fee"].startswith("market default")


def test_the_diff_shows_rule_params_execution_params_code_and_metric_changes(two_runs):
    workspace = Workspace.at(two_runs)
    a, b = two_runs.first, two_runs.second
    diff = run_diff(workspace, a.run_id, b.run_id)
    rows = {(r.section, r.key): r for r in diff.rows}
    fast = rows[("rule", "indicators.ma_cross.fast")]
    assert (fast.a, fast.b, fast.delta, fast.pct) == (10, 5, -5.0, -50.0)
    assert (rows[("rule", "rule_version")].a, rows[("rule", "rule_version")].b) == ("v1.0", "v1.1")
    assert ("rule", "params_hash") in rows
    assert ("rule", "indicators.ma_cross.slow") not in rows  # same in both
    fee = rows[("execution", "fee_pct")]
    assert (fee.a, fee.b) == (0.075, 0.05)
    assert diff_texts(fee)[2:] == ("-0.025", "-33.33 %")
    assert (rows[("params", "backtest.fee_pct")].a, rows[("params", "backtest.fee_pct")].b) == (
        None,
        0.05,
    )
    commit = rows[("code", "git_commit_hash")]
    assert diff_texts(commit)[:2] == (commit.a[:10], commit.b[:10])
    ma, mb = a.snapshot["metrics"], b.snapshot["metrics"]
    for (section, key), row in rows.items():
        if section == "metrics" and isinstance(ma[key], float):
            assert row.delta == mb[key] - ma[key]
            if ma[key]:
                assert row.pct == pytest.approx((mb[key] - ma[key]) / abs(ma[key]) * 100)
    ret = rows[("metrics", "Total Return [%]")]
    texts = diff_texts(ret)
    assert re.fullmatch(r"[+-]\d+\.\d\d", texts[2]) and texts[3].endswith(" %")
    # the old callers' view: the same rows
    old = {(d.section, d.key): (d.a, d.b) for d in diff_runs(workspace, a.run_id, b.run_id)}
    assert old[("params", "backtest.fee_pct")] == (None, 0.05)
    document = json.loads(json.dumps(diff.to_dict()))
    assert document["a"] == a.run_id and document["b"] == b.run_id
    assert {"section", "key", "a", "b", "delta", "pct_change"} <= set(document["differences"][0])


def test_a_run_against_itself_has_no_differences(two_runs):
    run_id = two_runs.first.run_id
    assert run_diff(Workspace.at(two_runs), run_id, run_id).rows == ()


def test_package_versions_and_durations_in_a_diff():
    def facts(packages, seconds):
        return RunFacts(
            {"env": {"packages": packages}, "metrics": {"Max. Drawdown Duration": seconds}}
        )

    rows = diff_facts(
        facts({"numpy": "2.0.0", "pandas": "2.2.0", "old": "1"}, 86_400.0),
        facts({"numpy": "2.1.0", "pandas": "2.2.0", "new": "3"}, 3 * 86_400.0 + 3_600),
    )
    packages = {r.key: (r.a, r.b) for r in rows if r.section == "packages"}
    assert packages == {"new": (None, "3"), "numpy": ("2.0.0", "2.1.0"), "old": ("1", None)}
    (duration,) = [r for r in rows if r.section == "metrics"]
    assert diff_texts(duration) == (
        "1 days 00:00:00",
        "3 days 01:00:00",
        "+2 days 01:00:00",
        "+204.17 %",
    )


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("Sharpe Ratio", "Sharpe Ratio"),
        ("sharpe ratio", "Sharpe Ratio"),
        ("SHARPE", "Sharpe Ratio"),
        ("sortino", "Sortino Ratio"),
        ("Calmar", "Calmar Ratio"),
        ("return", "Total Return [%]"),
        ("total_return", "Total Return [%]"),
        ("dd", "Max. Drawdown [%]"),
        ("DrawDown", "Max. Drawdown [%]"),
        ("trades", "Num. Trades"),
        ("winrate", "Win Rate [%]"),
        ("profit", "Total Profit"),
        ("max. drawdown duration", "Max. Drawdown Duration"),
    ],
)
def test_sort_names_in_any_case_and_aliases(name, metric):
    assert resolve_metric(name) == metric


@pytest.mark.parametrize("name", ["Happiness", "", "sharpe!!x"])
def test_an_unknown_sort_metric_lists_the_valid_names(name):
    with pytest.raises(UsageError, match="unknown metric") as caught:
        resolve_metric(name)
    assert "Sharpe Ratio" in str(caught.value) and "dd" in str(caught.value)


def test_since_takes_a_date_or_a_time_and_refuses_the_rest():
    assert parse_since("2025-11-10") == "2025-11-10T00:00:00Z"
    assert parse_since("2025-11-10T08:30Z") == "2025-11-10T08:30:00Z"
    assert parse_since("2025-11-10T10:30:00+02:00") == "2025-11-10T08:30:00Z"
    for bad in ("yesterday", "2025-13-01", "10/11/2025", ""):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad)


def test_list_filters_and_sorts(two_runs):
    workspace = Workspace.at(two_runs)
    a, b = two_runs.first.run_id, two_runs.second.run_id
    assert [r["run_id"] for r in list_runs(workspace)] == [b, a]
    assert [r["run_id"] for r in list_runs(workspace, note="faster")] == [b]
    assert [r["run_id"] for r in list_runs(workspace, note="FIRST")] == [a]
    assert list_runs(workspace, note="nothing like it") == []
    assert len(list_runs(workspace, symbol="btcusdt")) == 2
    assert list_runs(workspace, symbol="ETHUSDT") == []
    assert len(list_runs(workspace, since="2000-01-01")) == 2
    assert list_runs(workspace, since="2999-01-01") == []
    assert list_runs(workspace, setup_id="other") == []
    rows = list_runs(workspace, sort="calmar")
    values = [r["metrics"]["Calmar Ratio"] for r in rows]
    assert values == sorted(values, reverse=True) and rows[0]["sort_metric"] == "Calmar Ratio"
    assert [r["run_id"] for r in list_runs(workspace, sort="dd", limit=1)] != []


def test_run_refs_resolve_to_one_run(two_runs):
    workspace = Workspace.at(two_runs)
    a, b = two_runs.first.run_id, two_runs.second.run_id
    assert resolve_run_id(workspace, "@latest") == b
    assert resolve_run_id(workspace, "@latest~1") == a
    assert resolve_run_id(workspace, b[:-2]) == b
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_run_id(workspace, "bt_")
    with pytest.raises(UsageError, match="only 2 run"):
        resolve_run_id(workspace, "@latest~2")
    with pytest.raises(UsageError, match="not a run id"):
        resolve_run_id(workspace, "../etc")
