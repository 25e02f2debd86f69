from __future__ import annotations

import pytest

from ita_vc.errors import RuleValidationError
from ita_vc.rules import RuleVersion
from ita_vc.rules.registry import parse_version_ref
from ita_vc.yaml_read import load_yaml_text
from tests.rules.conftest import make_rule_text


def test_new_writes_v1_0_with_its_hash(registry, tmp_repo):
    rule = registry.new("Frank", author="trader_1")
    assert rule.path == "rules/Frank/v1.0.yaml"
    text = (tmp_repo / rule.path).read_text()
    assert 'version: "1.0"' in text and "author: trader_1" in text
    assert f"params_hash: {rule.params_hash}" in text
    assert "tp_pct: null" in text
    assert registry.versions("Frank") == [RuleVersion(1, 0)]
    assert registry.get("Frank") == rule
    assert registry.get_active_version("Frank") is None  # no lifecycle file: nothing active


def test_new_takes_the_git_user_as_default_author(registry):
    assert registry.new("Frank").author == "Test User"


def test_new_refuses_an_existing_setup_and_bad_ids(registry):
    registry.new("Frank")
    with pytest.raises(RuleValidationError, match="already exists.*rule bump Frank"):
        registry.new("Frank")
    for bad in ("a/b", "..", "has space"):
        with pytest.raises(RuleValidationError, match="setup_id"):
            registry.new(bad)


def test_new_from_a_seed_file(registry, tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        'setup_id: Frank_raid_v1\nversion: "1.2"\nauthor: trader_1\ncreated: "2025-10-15"\n'
        "components: [Detect_Sessions, Detect_FVG]\nrules: {session: london}\n"
        "targets: {tp: 2.0, sl: 1.0}\n"
    )
    rule = registry.new("Frank", from_file=seed, author="me")
    assert rule.version == RuleVersion(1, 0) and rule.setup_id == "Frank"
    assert rule.targets == {"tp_pct": 2.0, "sl_pct": 1.0}
    assert rule.params["components"] == ["Detect_Sessions", "Detect_FVG"]
    assert rule.direction == "long-short" and rule.sizing == {"mode": "all_in"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: {tp: -1}\n")
    with pytest.raises(RuleValidationError, match="refusing to write an invalid"):
        registry.new("Other", from_file=bad)
    assert registry.versions("Other") == []


def test_bump_keeps_comments_and_order_and_recomputes_the_hash(registry, tmp_repo):
    (tmp_repo / "rules/Frank").mkdir(parents=True)
    (tmp_repo / "rules/Frank/v1.0.yaml").write_text(make_rule_text())
    rule = registry.bump(
        "Frank", sets=["targets.tp_pct=2.5", "indicators.0.params.fast=12"], author="me"
    )
    text = (tmp_repo / rule.path).read_text()
    assert rule.path == "rules/Frank/v1.1.yaml"
    assert "# a comment that must survive bumps" in text
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
    assert keys == [
        "schema_version",
        "setup_id",
        "version",
        "author",
        "created",
        "components",
        "indicators",
        "rules",
        "targets",
        "direction",
        "sizing",
        "params_hash",
    ]
    doc = load_yaml_text(text)
    assert doc["targets"]["tp_pct"] == 2.5 and doc["indicators"][0]["params"]["fast"] == 12
    assert doc["version"] == "1.1" and doc["author"] == "me"
    assert rule.params_hash != registry.get("Frank", "1.0").params_hash
    # v1.0 is untouched, byte for byte
    assert (tmp_repo / "rules/Frank/v1.0.yaml").read_text() == make_rule_text()


def test_bump_numbering_minor_and_major(registry):
    registry.new("Frank")
    assert registry.bump("Frank", sets=["targets.tp_pct=1"]).version.tag == "v1.1"
    assert registry.bump("Frank", major=True, sets=["targets.tp_pct=2"]).version.tag == "v2.0"
    for i in range(3, 12):
        registry.bump("Frank", sets=[f"targets.tp_pct={i}"])
    assert registry.latest("Frank").tag == "v2.9"
    assert registry.bump("Frank", sets=["targets.tp_pct=99"]).version.tag == "v2.10"
    assert registry.latest("Frank") == RuleVersion(2, 10)  # numeric, not string, order


def test_bump_that_changes_nothing_is_refused(registry):
    registry.new("Frank")
    with pytest.raises(RuleValidationError, match="nothing to bump"):
        registry.bump("Frank")
    with pytest.raises(RuleValidationError, match="nothing to bump"):
        registry.bump("Frank", sets=["direction=long-short"])
    assert registry.versions("Frank") == [RuleVersion(1, 0)]


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["targets.tp_pct"], "needs key.path=value"),
        (["nope.deeper=1"], "no such key"),
        (["indicators.5.name=x"], "not an index"),
        (["version=9.9"], "cannot change version"),
        (["params_hash=x"], "cannot change params_hash"),
        (["direction=sideways"], "refusing to write an invalid"),
        (["targets.tp_pct=[1"], "cannot parse value"),
    ],
)
def test_bad_bumps_write_nothing(registry, sets, match):
    registry.new("Frank")
    with pytest.raises(RuleValidationError, match=match):
        registry.bump("Frank", sets=sets)
    assert registry.versions("Frank") == [RuleVersion(1, 0)]


def test_bump_from_file_and_reason(registry, tmp_path):
    registry.new("Frank")
    source = tmp_path / "params.yaml"
    source.write_text(
        "direction: long-only\nsizing: {mode: fixed_quote, amount: 500}\ntargets: {tp: 3, sl: 1}\n"
    )
    rule = registry.bump("Frank", from_file=source, reason="long only now", author="me")
    assert rule.direction == "long-only" and rule.sizing == {"mode": "fixed_quote", "amount": 500}
    assert rule.targets == {"tp_pct": 3, "sl_pct": 1}
    assert "indicators" not in rule.params  # the file replaces the parameter fields
    assert registry.status("Frank", "1.1").note == "long only now"


def test_bump_of_an_unknown_setup(registry):
    with pytest.raises(RuleValidationError, match="no rule 'Ghost'.*rule new Ghost"):
        registry.bump("Ghost")


def test_activate_deprecate_and_the_joined_view(registry, tmp_repo):
    registry.new("Frank")
    registry.bump("Frank", sets=["targets.tp_pct=2"])
    registry.bump("Frank", sets=["targets.tp_pct=3"])
    registry.activate("Frank", "1.0")
    registry.activate("v1.1" and "Frank", "v1.1")  # activating one deactivates the others
    assert registry.get_active_version("Frank") == RuleVersion(1, 1)
    assert registry.status("Frank", "1.0").status == "inactive"
    registry.deprecate("Frank", "1.0", reason="superseded")
    registry.deprecate("Frank", "1.1", reason="bad fills")  # the active one: now none active
    assert registry.get_active_version("Frank") is None
    rows = {r.version.tag: r for r in registry.list()}
    assert rows["v1.0"].status == "deprecated" and rows["v1.0"].deprecation_reason == "superseded"
    assert not rows["v1.2"].active
    with pytest.raises(RuleValidationError, match="is deprecated"):
        registry.activate("Frank", "1.0")
    with pytest.raises(RuleValidationError, match="needs a --reason"):
        registry.deprecate("Frank", "1.2", reason=" ")
    with pytest.raises(RuleValidationError, match="has no version v9.0"):
        registry.activate("Frank", "9.0")
    registry.activate("Frank", "1.2")
    assert [r.version.tag for r in registry.list(active_only=True)] == ["v1.2"]
    text = (tmp_repo / "rules/Frank/lifecycle.yaml").read_text()
    assert text.startswith("# Lifecycle of Frank")
    assert "changed_by: Test User" in text


def test_lifecycle_edits_keep_comments(registry, tmp_repo):
    registry.new("Frank")
    registry.activate("Frank", "1.0")
    path = tmp_repo / "rules/Frank/lifecycle.yaml"
    path.write_text(path.read_text() + "# my own note\n")
    registry.bump("Frank", sets=["targets.tp_pct=2"])
    registry.activate("Frank", "1.1")
    assert "# my own note" in path.read_text()


def test_invalid_lifecycle_is_reported(registry, tmp_repo):
    registry.new("Frank")
    (tmp_repo / "rules/Frank/lifecycle.yaml").write_text(
        "schema_version: 1\nsetup_id: Frank\nversions:\n  v3.0: {active: true}\n"
    )
    with pytest.raises(RuleValidationError, match="names v3.0, which does not exist"):
        registry.get_active_version("Frank")


def test_verify_and_get_errors(registry, tmp_repo):
    rule = registry.new("Frank")
    assert registry.verify("Frank", "1.0", params_hash=rule.params_hash) == rule
    with pytest.raises(RuleValidationError, match="expected sha256:0000"):
        registry.verify("Frank", "v1.0", params_hash="sha256:" + "0" * 64)
    path = tmp_repo / rule.path
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    with pytest.raises(RuleValidationError, match="params_hash: is"):
        registry.verify("Frank", "1.0")
    with pytest.raises(RuleValidationError, match="not a version"):
        registry.get("Frank", "one")


def test_diff_is_semantic(registry):
    registry.new("Frank")
    registry.bump("Frank", sets=["targets.tp_pct=2", "rules.session=asia"])
    changes = {c.field: c for c in registry.diff("Frank", "1.0", "1.1")}
    assert changes["targets.tp_pct"].change == "changed"
    assert (changes["targets.tp_pct"].old, changes["targets.tp_pct"].new) == (None, 2)
    assert changes["rules.session"].change == "added"
    assert "params_hash" not in changes
    assert registry.diff("Frank", "1.1", "1.1") == []


def test_list_and_setups(registry):
    registry.new("B")
    registry.new("A")
    assert registry.setups() == ["A", "B"]
    assert [r.setup_id for r in registry.list(setup_id="B")] == ["B"]


def test_parse_version_ref():
    assert parse_version_ref("Frank@v1.2") == ("Frank", RuleVersion(1, 2))
    assert parse_version_ref("Frank") == ("Frank", None)
    with pytest.raises(RuleValidationError):
        parse_version_ref("Frank@latest")


def test_bump_with_nan_names_every_bad_field_and_writes_nothing(registry, tmp_repo):
    registry.new("Frank")
    with pytest.raises(RuleValidationError) as info:
        registry.bump("Frank", sets=["targets.tp_pct=.nan", "sizing.mode=bogus"])
    assert "rules/Frank/v1.1.yaml" in str(info.value)
    assert "targets.tp_pct" in str(info.value) and "sizing.mode" in str(info.value)
    assert not (tmp_repo / "rules/Frank/v1.1.yaml").exists()
