from __future__ import annotations

import pytest

from ita_vc.rules.model import LifecycleEntry, Problem, RuleVersion
from ita_vc.rules.validate import check_setup_id


@pytest.mark.parametrize(
    ("text", "expected"), [("1.2", (1, 2)), ("v1.2", (1, 2)), ("v10.0", (10, 0)), ("0.1", (0, 1))]
)
def test_version_parse(text, expected):
    version = RuleVersion.parse(text)
    assert (version.major, version.minor) == expected
    assert version.tag == f"v{expected[0]}.{expected[1]}"
    assert version.filename == f"v{expected[0]}.{expected[1]}.yaml"


@pytest.mark.parametrize("bad", ["1", "1.2.3", "v1.02", "01.2", "va.b", "", "1.2 ", "V1.2"])
def test_version_parse_rejects(bad):
    if bad == "1.2 ":
        assert RuleVersion.parse(bad) == RuleVersion(1, 2)  # surrounding space is tolerated
        return
    with pytest.raises(ValueError, match="version"):
        RuleVersion.parse(bad)


def test_version_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="a version is a string"):
        RuleVersion.parse(1.1)  # type: ignore[arg-type]


def test_versions_order_numerically():
    versions = [RuleVersion.parse(v) for v in ("1.10", "1.9", "2.0", "1.2", "0.5")]
    assert [v.tag for v in sorted(versions)] == ["v0.5", "v1.2", "v1.9", "v1.10", "v2.0"]
    assert RuleVersion(1, 10) > RuleVersion(1, 9)
    assert RuleVersion(1, 9).bump() == RuleVersion(1, 10)
    assert RuleVersion(1, 9).bump(major=True) == RuleVersion(2, 0)


@pytest.mark.parametrize("good", ["Frank_raid_v1", "a", "A.b-c_1", "x" * 64])
def test_valid_setup_ids(good):
    assert check_setup_id(good) is None


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("a/b", "not a valid setup id"),
        ("..", "not a valid"),
        ("a..b", "may not contain '..'"),
        ("has space", "not a valid"),
        ("_lead", "not a valid"),
        ("x" * 65, "the limit is 64"),
        (5, "must be a string"),
        ("", "not a valid"),
    ],
)
def test_invalid_setup_ids(bad, match):
    assert match in check_setup_id(bad)


def test_lifecycle_entry_status():
    assert LifecycleEntry().status == "inactive"
    assert LifecycleEntry(active=True).status == "active"
    deprecated = LifecycleEntry(deprecation_reason="old")
    assert deprecated.deprecated and deprecated.status == "deprecated"
    assert LifecycleEntry(note="n").to_dict()["note"] == "n"


def test_problem_formatting():
    assert str(Problem("f.yaml", "bad", "a.b", 3)) == "f.yaml:3: a.b: bad"
    assert str(Problem("f.yaml", "bad")) == "f.yaml: bad"


def test_problem_is_the_one_validation_problem():
    from ita_vc import rules, schema
    from ita_vc.rules import model

    assert model.Problem is schema.Problem and rules.Problem is schema.Problem
    assert (
        str(model.Problem("rules/x/v1.0.yaml", "bad", "author", 5))
        == "rules/x/v1.0.yaml:5: author: bad"
    )


def test_every_problem_of_a_rule_file_is_listed_in_file_order():
    from ita_vc.catalog import load_catalog
    from ita_vc.rules.validate import parse_rule

    text = (
        "schema_version: 2\nsetup_id: Frank\nversion: '1.0'\nauthor: ''\n"
        "created: '2025-01-01'\nindicators:\n  - name: ma_cross\n    colour: red\n"
        "targets: {tp: 2}\ndirection: up\nsizing: {mode: fixed_quote, budget: 1}\n"
    )
    rule, problems = parse_rule(
        text.encode(), "rules/Frank/v1.0.yaml", catalog=load_catalog(), require_hash=False
    )
    assert rule is None
    assert [str(p) for p in problems] == [
        "rules/Frank/v1.0.yaml:1: schema_version: must be 1, got 2",
        "rules/Frank/v1.0.yaml:4: author: must be a non-empty string, got ''",
        "rules/Frank/v1.0.yaml:8: indicators.0.colour: unknown key (allowed: name, params)",
        "rules/Frank/v1.0.yaml:9: targets.tp: unknown key (allowed: sl_pct, tp_pct); the "
        "seed's 'tp' is named 'tp_pct'",
        "rules/Frank/v1.0.yaml:10: direction: must be one of long-only, short-only, "
        "long-short, got 'up'",
        "rules/Frank/v1.0.yaml:11: sizing.amount: sizing mode fixed_quote needs amount",
        "rules/Frank/v1.0.yaml:11: sizing.budget: not a parameter of sizing mode fixed_quote",
    ]
