from __future__ import annotations

import pytest

from ita_vc.rules.model import LifecycleEntry, Problem, RuleVersion
from ita_vc.rules.validate import check_setup_id


@pytest.mark.parametrize(("text", "expected"), [("1.2", (1, 2)), ("v1.2", (1, 2)),
                                                 ("v10.0", (10, 0)), ("0.1", (0, 1))])
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
    [("a/b", "not a valid setup id"), ("..", "not a valid"), ("a..b", "may not contain '..'"),
     ("has space", "not a valid"), ("_lead", "not a valid"), ("x" * 65, "the limit is 64"),
     (5, "must be a string"), ("", "not a valid")],
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
