from __future__ import annotations

import pytest

from ita_vc.catalog import load_catalog
from ita_vc.rules.validate import compute_params_hash, parse_lifecycle, parse_rule
from ita_vc.yaml_read import load_yaml_text
from tests.rules.conftest import VALID, make_rule_text

PATH = "rules/Frank/v1.0.yaml"
CATALOG = load_catalog()


def _problems(text: str | bytes, path: str = PATH, **kwargs) -> list[str]:
    raw = text.encode() if isinstance(text, str) else text
    rule, problems = parse_rule(raw, path, catalog=CATALOG, **kwargs)
    assert (rule is None) == bool(problems)
    return [str(p) for p in problems]


def test_a_valid_rule_parses():
    rule, problems = parse_rule(make_rule_text().encode(), PATH, catalog=CATALOG)
    assert problems == []
    assert rule.setup_id == "Frank" and rule.version.tag == "v1.0"
    assert rule.targets == {"tp_pct": 2.0, "sl_pct": 1.0}
    assert rule.direction == "long-short" and rule.sizing == {"mode": "all_in"}
    assert rule.indicators == [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}]
    assert rule.to_dict()["params_hash"] == rule.params_hash


def test_params_hash_covers_parameters_only():
    base = load_yaml_text(make_rule_text())
    other = dict(
        base,
        author="someone else",
        created="2030-01-01",
        version="9.9",
        setup_id="Other",
        schema_version=1,
        params_hash="sha256:" + "0" * 64,
    )
    assert compute_params_hash(base) == compute_params_hash(other)
    changed = dict(base, targets={"tp_pct": 2.5, "sl_pct": 1.0})
    assert compute_params_hash(changed) != compute_params_hash(base)


def test_params_hash_is_format_independent():
    text = make_rule_text()
    reformatted = text.replace("tp_pct: 2.0", "tp_pct: 2").replace(
        "targets: {tp_pct: 2, sl_pct: 1.0}", "targets:\n  sl_pct: 1.0   # reordered\n  tp_pct: 2"
    )
    assert compute_params_hash(load_yaml_text(reformatted)) == compute_params_hash(
        load_yaml_text(text)
    )


def test_params_hash_matches_the_documented_canonical_form():
    import hashlib
    import json

    doc = load_yaml_text(make_rule_text())
    params = {
        k: v
        for k, v in doc.items()
        if k not in ("schema_version", "setup_id", "version", "author", "created", "params_hash")
    }
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    canonical = canonical.replace("2.0", "2").replace("1.0", "1")  # integral floats as ints
    assert compute_params_hash(doc) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", ":2: "),  # malformed YAML, with the line
        ("a: !!python/object:os.system {}\n", "tag not allowed (safe loading only)"),
        ("a: !!python/object/apply:os.system ['echo hi']\n", "tag not allowed"),
        ("setup_id: a\nsetup_id: b\n", ":2: duplicate key 'setup_id' (first at line 1)"),
        ("- just\n- a list\n", "must be a YAML mapping"),
    ],
)
def test_unreadable_documents(text, expected):
    problems = _problems(text)
    assert any(expected in p for p in problems), problems


def test_python_tags_never_construct_objects(tmp_path):
    marker = tmp_path / "pwned"
    _problems(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_non_utf8_names_the_line():
    raw = make_rule_text().encode().replace(b"trader_1", b"trader_\xff")
    assert _problems(raw) == [f"{PATH}:5: not valid UTF-8"]


def test_a_10mb_rule_file_is_refused():
    raw = make_rule_text().encode() + b"#" * (10 << 20)
    assert _problems(raw) == [f"{PATH}: file is {len(raw):,} bytes, the limit is 1,048,576"]


def test_version_float_trap_is_caught_with_the_typed_text():
    text = make_rule_text(version="1.10").replace('version: "1.10"', "version: 1.10")
    problems = _problems(text, path="rules/Frank/v1.10.yaml")
    assert any(
        ":4: version: 1.10 is a number to YAML" in p and 'version: "1.10"' in p for p in problems
    ), problems


def test_missing_fields_and_unknown_fields_are_all_listed():
    text = "setup_id: Frank\nversion: '1.0'\ncolour: red\n"
    problems = _problems(text)
    for field in (
        "schema_version",
        "author",
        "created",
        "direction",
        "sizing",
        "targets",
        "params_hash",
    ):
        assert any(f"missing required field '{field}'" in p for p in problems), field
    assert any(
        ":3: colour: unknown key (allowed: author, components, created, direction, "
        "indicators, params_hash, rules, schema_version, setup_id, sizing, targets, "
        "version)" in p
        for p in problems
    ), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("author: trader_1", "author: 5", "author: must be a non-empty string"),
        ('created: "2025-10-15"', 'created: "15/10/2025"', "created: must be an ISO date"),
        ("components: [Detect_Sessions, Detect_FVG]", "components: Detect", "components: must be"),
        ("rules: {session: london}", "rules: [a]", "rules: must be a mapping"),
        ("direction: long-short", "direction: long", "direction: must be one of"),
        ("sizing: {mode: all_in}", "sizing: {mode: yolo}", "sizing.mode: unknown mode"),
        ("sizing: {mode: all_in}", "sizing: {mode: fixed_quote}", "needs amount"),
        (
            "sizing: {mode: all_in}",
            "sizing: {mode: fixed_quote, amount: -5}",
            "sizing.amount: must be a positive number",
        ),
        (
            "sizing: {mode: all_in}",
            "sizing: {mode: strategy_compound_profit_lock, budget: 100, safe_profit_percent: 150}",
            "must be a percent",
        ),
        ("sizing: {mode: all_in}", "sizing: {mode: all_in, amount: 5}", "not a parameter"),
        (
            "targets: {tp_pct: 2.0, sl_pct: 1.0}",
            "targets: {tp: 2.0, sl: 1.0}",
            "the seed's 'tp' is named 'tp_pct'",
        ),
        (
            "targets: {tp_pct: 2.0, sl_pct: 1.0}",
            "targets: {tp_pct: -2, sl_pct: 1.0}",
            "targets.tp_pct: must be a positive percent or null",
        ),
        ("targets: {tp_pct: 2.0, sl_pct: 1.0}", "targets: 5", "targets: must be a mapping"),
        ("params: {fast: 10, slow: 20}", "params: {fast: 30, slow: 20}", "needs fast < slow"),
        ("params: {fast: 10, slow: 20}", "params: {fast: 10, slower: 20}", "unknown parameter"),
        (
            "params: {fast: 10, slow: 20}",
            "params: {fast: 0, slow: 20}",
            "outside the catalog range",
        ),
        ("- name: ma_cross", "- name: macd", "unknown indicator 'macd'"),
        ("rules: {session: london}", "rules: {day: 2025-01-01}", "dates, times, NaN"),
        ("setup_id: Frank", "setup_id: Fr/ank", "not a valid setup id"),
    ],
)
def test_wrong_types_and_values(old, new, expected):
    text = VALID.format(setup_id="Frank", version="1.0")
    assert old in text
    text = text.replace(old, new) + "params_hash: sha256:" + "0" * 64 + "\n"
    problems = _problems(text)
    assert any(expected in p for p in problems), problems


def test_problems_name_the_line():
    text = VALID.format(setup_id="Frank", version="1.0").replace(
        "direction: long-short", "direction: up"
    )
    problems = _problems(make_rule_text(body=text, params_hash="sha256:" + "0" * 64))
    assert any(p.startswith(f"{PATH}:13: direction:") for p in problems), problems


def test_location_must_match_content():
    text = make_rule_text(setup_id="Frank", version="1.1")
    problems = _problems(text, path="rules/Frank/v1.0.yaml")
    assert any("lives at rules/Frank/v1.1.yaml" in p for p in problems)
    problems = _problems(make_rule_text(setup_id="Other"), path="rules/Frank/v1.0.yaml")
    assert any("lives at rules/Other/v1.0.yaml" in p for p in problems)


def test_hand_edited_params_hash():
    text = make_rule_text(params_hash="sha256:" + "a" * 64)
    problems = _problems(text)
    assert any(
        "params_hash: is sha256:aaaa" in p and "the parameters hash to" in p for p in problems
    )
    assert any("must be 'sha256:" in p for p in _problems(make_rule_text(params_hash="md5:1")))


def test_outside_the_registry_a_missing_hash_is_computed():
    body = VALID.format(setup_id="Frank", version="1.0")
    rule, problems = parse_rule(
        body.encode(), "/tmp/any.yaml", catalog=CATALOG, rules_root=None, require_hash=False
    )
    assert problems == [] and rule.params_hash == compute_params_hash(load_yaml_text(body))
    minimal = "setup_id: x\nversion: '1.0'\n"
    rule, problems = parse_rule(
        minimal.encode(), "/tmp/x.yaml", catalog=CATALOG, rules_root=None, require_hash=False
    )
    assert problems == [] and rule.direction == "long-short" and rule.sizing == {"mode": "all_in"}
    wrong = make_rule_text(params_hash="sha256:" + "b" * 64)
    assert (
        parse_rule(
            wrong.encode(), "/tmp/x.yaml", catalog=CATALOG, rules_root=None, require_hash=False
        )[0]
        is None
    )


# -- lifecycle ---------------------------------------------------------------------------------
LC = "rules/Frank/lifecycle.yaml"


def _lifecycle(text: str, exists=("1.0", "1.1")):
    versions = set(exists)
    return parse_lifecycle(
        text.encode(), LC, setup_id="Frank", version_exists=lambda v: str(v) in versions
    )


def test_a_valid_lifecycle():
    entries, problems = _lifecycle(
        "schema_version: 1\nsetup_id: Frank\nversions:\n"
        "  v1.0: {active: false, deprecation_reason: old, changed_at: x, changed_by: y}\n"
        "  v1.1: {active: true, deprecation_reason: null}\n"
    )
    assert problems == []
    assert [e.status for e in entries.values()] == ["deprecated", "active"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  v1.0: {active: true}\n  v1.1: {active: true}\n",
            "at most one active version per setup; active: v1.0, v1.1",
        ),
        ("  v1.5: {active: false}\n", "names v1.5, which does not exist in Frank"),
        ("  v1.0: {active: true, deprecation_reason: old}\n", "cannot be active"),
        ("  v1.0: {active: 'yes'}\n", "must be true or false"),
        ("  v1.0: {active: false, deprecation_reason: ''}\n", "non-empty string or null"),
        (
            "  v1.0: {active: false, colour: red}\n",
            ":4: versions.v1.0.colour: unknown key (allowed: active, changed_at, changed_by, "
            "deprecation_reason, note)",
        ),
        ("  vX: {active: false}\n", "not a version"),
        ("  v1.0: [1]\n", "must be a mapping"),
        ("  v1.0: {active: false, changed_at: 5}\n", "must be a string"),
    ],
)
def test_invalid_lifecycles(body, expected):
    _entries, problems = _lifecycle(f"schema_version: 1\nsetup_id: Frank\nversions:\n{body}")
    assert any(expected in str(p) for p in problems), problems


def test_lifecycle_setup_mismatch_and_garbage():
    _e, problems = _lifecycle("setup_id: Other\nversions: {}\nextra: 1\n")
    assert {p.field for p in problems} == {"setup_id", "extra"}
    _e, problems = _lifecycle("versions: [1]\nsetup_id: Frank\n")
    assert "must be a mapping" in str(problems[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            b"schema_version: 1\nsetup_id: S\nversions: []\n",
            "rules/S/lifecycle.yaml:3: versions: must be a mapping, got [] (list)",
        ),
        (
            b"schema_version: 99\nsetup_id: S\n",
            "rules/S/lifecycle.yaml:1: schema_version: must be 1",
        ),
        (
            b"schema_version: true\nsetup_id: S\n",
            "rules/S/lifecycle.yaml:1: schema_version: must be 1",
        ),
    ],
)
def test_a_lifecycle_file_s_versions_and_schema_version_are_checked(text, expected):
    _entries, problems = parse_lifecycle(text, "rules/S/lifecycle.yaml", setup_id="S")
    assert any(str(p).startswith(expected) for p in problems), problems
