"""The plan, object by object, against what the policy says; and the policy's validation."""

from __future__ import annotations

import pytest

from ita_vc.errors import ConfigError
from ita_vc.retention.apply import compute_plan
from ita_vc.retention.policy import glob_to_regex, parse_policy
from ita_vc.workspace import Workspace
from tests.retention.conftest import NOW, POLICY

EXPECTED = {
    # data/png/shot.png of each day: 90-day class, only the day's commit references it
    ("shot", 0): ("keep", "used by the workspace"),
    ("shot", 15): ("keep", "within 90 days"),
    ("shot", 30): ("keep", "within 90 days"),
    ("shot", 60): ("keep", "exception: tag important"),
    ("shot", 120): ("delete", "older than 90 days"),
    ("shot", 180): ("delete", "older than 90 days"),
    ("shot", 240): ("delete", "older than 90 days"),
    # results/latest/chart.png of each run (day 240's has day 15's bytes: shared)
    ("chart", 0): ("keep", "used by the workspace"),
    ("chart", 15): ("keep", "newest 2 runs"),
    ("chart", 30): ("keep", "within 90 days"),
    ("chart", 60): ("keep", "exception: tag important"),
    ("chart", 120): ("keep", "active rule: A v1.1"),
    ("chart", 180): ("keep", "pinned run"),
    # results/latest/scratch.bin: 3650-day class, so only max_runs (4) can remove it
    ("scratch", 0): ("keep", "used by the workspace"),
    ("scratch", 15): ("keep", "newest 2 runs"),
    ("scratch", 30): ("keep", "within 3650 days"),
    ("scratch", 60): ("keep", "exception: tag important"),
    ("scratch", 120): ("keep", "active rule: A v1.1"),
    ("scratch", 180): ("keep", "pinned run"),
    ("scratch", 240): ("delete", "max_runs: only runs beyond the newest 4"),
}


def test_the_plan_object_by_object(history):
    repo, facts = history
    plan, info = compute_plan(Workspace.at(repo), now=NOW)
    by_oid = {d.oid: d for d in plan.decisions}
    for (kind, day), (action, reason) in EXPECTED.items():
        decision = by_oid[facts[day][kind]]
        assert (decision.action, decision.reason.startswith(reason)) == (action, True), (
            kind,
            day,
            decision,
        )
    # the shared chart (day 240 == day 15 bytes) is kept: a kept run needs it
    assert facts[240]["chart"] == facts[15]["chart"]
    assert by_oid[facts[240]["chart"]].action == "keep"
    # results JSON: keep_forever, whatever the age
    for day in (240, 180, 120):
        assert by_oid[facts[day]["result"]].reason == "keep_forever: class backtest_results"
    removed = {d.oid for d in plan.decisions if d.action != "keep"}
    assert removed == {
        facts[120]["shot"],
        facts[180]["shot"],
        facts[240]["shot"],
        facts[240]["scratch"],
    }
    assert info.revisions >= len(facts) + 1 and len(info.runs) == 7


def test_planning_changes_nothing(history):
    repo, _facts = history
    before = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob("*")
        if ".git" not in p.parts and ".ita" not in p.parts and "logs" not in p.parts
    )
    compute_plan(Workspace.at(repo), now=NOW)
    after = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob("*")
        if ".git" not in p.parts and ".ita" not in p.parts and "logs" not in p.parts
    )
    assert before == after


def test_pins_come_from_git_not_the_index(history):
    repo, facts = history
    (repo / ".ita").mkdir(exist_ok=True)
    index = repo / ".ita/index.sqlite"
    index.unlink(missing_ok=True)
    plan, _ = compute_plan(Workspace.at(repo), now=NOW)
    decision = next(d for d in plan.decisions if d.oid == facts[180]["chart"])
    assert decision.reason.startswith("pinned run")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pngs: [1, 2]\n", "not a mapping"),
        ("pngs: {paths: ['a/**'], retain_days: -1, strategy: delete}\n", "retain_days"),
        ("pngs: {paths: ['a/[b'], retain_days: 1, strategy: delete}\n", "unbalanced"),
        ("pngs: {paths: ['/abs/**'], retain_days: 1, strategy: delete}\n", "repo-relative"),
        ("pngs: {paths: ['a/**'], retain_days: 1, strategy: shred}\n", "unknown strategy"),
        ("pngs: {paths: ['a/**'], retain_days: null, strategy: delete}\n", "null means forever"),
        ("pngs: {paths: [], retain_days: 1, strategy: delete}\n", "non-empty list"),
        ("pngs: {paths: ['a'], retain: 1, strategy: delete}\n", "unknown key"),
        ("keep_last_runs: -2\n", "keep_last_runs"),
        ("exceptions: {tags: important}\n", "exceptions.tags"),
        ("exceptions: {colour: 1}\n", "exceptions"),
        ("confirm_above_gb: many\n", "confirm_above_gb"),
        ("[1]\n", "mapping"),
    ],
)
def test_invalid_policies_are_refused(text, match):
    import yaml

    with pytest.raises(ConfigError, match=match):
        parse_policy(yaml.safe_load(text))


def test_every_policy_problem_is_reported_with_its_line(tmp_path):
    from ita_vc.retention.policy import load_policy

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/retention.yaml").write_text(
        "pngs: {paths: ['/x', 3], retain: 1, strategy: shred}\n"
        "charts:\n"
        "  paths: ['results/**']\n"
        "  retain_days: null\n"
        "  strategy: delete\n"
        "7: x\n"
        "keep_last_runs: -2\n"
        "exceptions: {tags: important, colour: 1}\n"
        "confirm_above_gb: .nan\n"
    )
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path)
    assert str(info.value).splitlines() == [
        "configs/retention.yaml:1: pngs.paths.0: bad glob '/x': use a repo-relative pattern "
        "like 'data/png/**'",
        "configs/retention.yaml:1: pngs.paths.1: must be a glob, got 3 (integer)",
        "configs/retention.yaml:1: pngs.retain: unknown key (allowed: paths, retain_days, "
        "strategy)",
        "configs/retention.yaml:1: pngs.strategy: unknown strategy 'shred' (one of delete, "
        "archive, keep_forever, archive_to_s3, prune_old)",
        "configs/retention.yaml:4: charts.retain_days: null means forever; use strategy "
        "keep_forever, or give a number of days",
        "configs/retention.yaml:6: 7: class and setting names are strings, got 7 (integer)",
        "configs/retention.yaml:7: keep_last_runs: must be >= 0, got -2",
        "configs/retention.yaml:8: exceptions.colour: unknown key (allowed: active_rules, tags)",
        "configs/retention.yaml:8: exceptions.tags: must be a list, got 'important' (text)",
        "configs/retention.yaml:9: confirm_above_gb: must be a finite number >= 0, got nan",
    ]


def test_policy_settings_defaults_and_nulls():
    policy = parse_policy({"max_runs": None, "exceptions": None})
    assert (policy.keep_last_runs, policy.max_runs, policy.safety_window_days) == (5, None, 7)
    assert (policy.confirm_above_gb, policy.archive_remote) == (10.0, "archive")
    assert (policy.exception_tags, policy.active_rules, policy.classes) == ((), True, ())
    policy = parse_policy(
        {
            "exceptions": {"tags": ["x"], "active_rules": False},
            "keep": {"paths": ["a/**"], "strategy": "keep_forever"},
        }
    )
    assert (policy.exception_tags, policy.active_rules) == (("x",), False)
    assert policy.classes[0].retain_days is None and policy.classify("a/b").name == "keep"
    with pytest.raises(
        ConfigError,
        match=r"confirm_above_gb: must be a finite number >= 0, "
        r"got an integer of 1329 bits",
    ):
        parse_policy({"confirm_above_gb": 10**400})


def test_an_invalid_policy_file_touches_nothing(history):
    repo, _facts = history
    (repo / "configs/retention.yaml").write_text("pngs: {paths: ['x/**'], strategy: shred}\n")
    from tests.helpers import invoke

    result = invoke("gc")
    assert result.exit_code == 8 and "unknown strategy" in result.stderr
    trash = repo / ".ita/trash"
    assert not trash.exists() or not [p for p in trash.rglob("*") if p.is_file()]


def test_globs():
    assert glob_to_regex("results/**/*.png").match("results/a/b/c.png")
    assert glob_to_regex("results/**/*.png").match("results/c.png")
    assert not glob_to_regex("results/*.png").match("results/a/c.png")
    assert glob_to_regex("data/png/**").match("data/png/x/y.bin")
    assert glob_to_regex("data/?.csv").match("data/a.csv")
    assert glob_to_regex("data/[!a]x").match("data/bx")
    policy = parse_policy(__import__("yaml").safe_load(POLICY))
    assert policy.classify("results/latest/chart.png").name == "annotated_pngs"
    assert policy.classify("results/latest/x.json").name == "backtest_results"
    assert policy.classify("elsewhere/x") is None
