"""The validation engine itself (``ita_vc.schema``): every problem, located, whatever the data."""

from __future__ import annotations

import math

import pytest
import voluptuous as vol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ita_vc.errors import ConfigError
from ita_vc.schema import (
    Problem,
    Problems,
    boolean,
    choice,
    finite_number,
    integer,
    listing_allowed,
    mapping_of,
    nullable,
    number,
    sequence_of,
    strict,
    text,
    type_name,
)
from ita_vc.yaml_read import load_yaml_document

SCHEMA = strict(
    {
        vol.Required("name"): text(pattern=r"[a-z]+", what="a lowercase name"),
        vol.Optional("count", default=1): integer(minimum=1, maximum=10),
        vol.Optional("ratio"): number(minimum=0, maximum=1),
        vol.Optional("enabled"): boolean(),
        vol.Optional("mode"): choice(("fast", "slow")),
        vol.Optional("nested"): strict(
            {
                vol.Optional("depth"): integer(),
                vol.Optional("items"): sequence_of(strict({vol.Required("id"): integer()})),
            }
        ),
        vol.Optional("free"): mapping_of(
            text(),
            listing_allowed(
                strict(
                    {
                        vol.Optional("x"): integer(),
                    }
                )
            ),
        ),
        vol.Optional("size"): nullable(finite_number(minimum=0)),
    }
)


def _problems(yaml_text: str, schema: object = SCHEMA, prefix: str = "") -> Problems:
    document = load_yaml_document(yaml_text, "f.yaml")
    problems = Problems("f.yaml", document.index)
    problems.check(schema, document.data, prefix=prefix)
    return problems


def test_valid_data_comes_back_with_defaults():
    document = load_yaml_document("name: abc\nenabled: true\nsize: null\n", "f.yaml")
    problems = Problems("f.yaml", document.index)
    assert problems.check(SCHEMA, document.data) == {
        "name": "abc",
        "count": 1,
        "enabled": True,
        "size": None,
    }
    assert not problems and len(problems) == 0


def test_every_problem_is_reported_with_its_line_in_file_order():
    problems = _problems("count: 0\nname: ABC\nratio: 2\nenabled: 1\nmode: medium\ncolour: red\n")
    assert problems.text().splitlines() == [
        "f.yaml:1: count: must be >= 1, got 0",
        "f.yaml:2: name: 'ABC' is not a lowercase name",
        "f.yaml:3: ratio: must be <= 1, got 2",
        "f.yaml:4: enabled: must be true or false, got 1 (integer)",
        "f.yaml:5: mode: 'medium' is not one of fast, slow",
        "f.yaml:6: colour: unknown key (allowed: count, enabled, free, mode, name, nested, ratio, "
        "size)",
    ]
    assert len(problems) == 6 and all(isinstance(p, Problem) for p in problems.items)


def test_a_missing_required_key_is_located_at_its_parent():
    problems = _problems("name: abc\nnested:\n  items:\n    - {id: 1}\n    - {idx: 2}\n")
    assert problems.text().splitlines() == [
        "f.yaml:5: nested.items.1.id: is required",
        "f.yaml:5: nested.items.1.idx: unknown key",
    ]
    assert _problems("count: 2\n").text() == "f.yaml: name: is required"


def test_nested_sequences_and_mappings_report_every_item():
    problems = _problems(
        "name: abc\n"
        "nested:\n"
        "  depth: x\n"
        "  items:\n"
        "    - {id: 1}\n"
        "    - {id: a}\n"
        "    - 7\n"
        "free:\n"
        "  one: {x: 1}\n"
        "  two: {y: 1}\n"
        "  three: {x: 1.5}\n"
    )
    assert problems.text().splitlines() == [
        "f.yaml:3: nested.depth: must be an integer, got 'x' (text)",
        "f.yaml:6: nested.items.1.id: must be an integer, got 'a' (text)",
        "f.yaml:7: nested.items.2: must be a mapping, got 7 (integer)",
        "f.yaml:10: free.two.y: unknown key (allowed: x)",
        "f.yaml:11: free.three.x: must be an integer, got 1.5 (number)",
    ]


def test_wrong_container_types_quote_the_value():
    problems = _problems("name: abc\nnested: [1]\nfree: 3\n")
    assert problems.text().splitlines() == [
        "f.yaml:2: nested: must be a mapping, got [1] (list)",
        "f.yaml:3: free: must be a mapping, got 3 (integer)",
    ]
    assert _problems("[1, 2]\n").text() == "f.yaml: must be a mapping, got [1, 2] (list)"


@pytest.mark.parametrize("value", [True, False, 2.0, "2", None])
def test_a_boolean_or_a_float_is_not_an_integer(value):
    with pytest.raises(vol.Invalid, match="must be an integer"):
        integer()(value)


@pytest.mark.parametrize("value", [True, "1", None, [1]])
def test_a_boolean_is_not_a_number(value):
    with pytest.raises(vol.Invalid, match="must be a number"):
        number()(value)
    with pytest.raises(vol.Invalid, match="must be a finite number"):
        finite_number()(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(vol.Invalid, match="must be a finite number"):
        number()(value)
    with pytest.raises(vol.Invalid, match="must be a finite number"):
        finite_number()(value)


def test_finite_number_refuses_an_integer_too_large_for_a_float():
    assert number()(10**400) == 10**400  # number() only looks at floats
    with pytest.raises(
        vol.Invalid,
        match=r"^must be a finite number >= 0, got an integer of "
        r"1329 bits, too large for a number$",
    ):
        finite_number(minimum=0)(10**400)
    assert finite_number(minimum=0, maximum=1)(1) == 1
    with pytest.raises(vol.Invalid, match=r"^must be a finite number >= 0 <= 1, got -1$"):
        finite_number(minimum=0, maximum=1)(-1)


def test_choice_tells_booleans_from_numbers():
    assert choice((1, 2))(1) == 1
    with pytest.raises(vol.Invalid, match="True is not one of 1, 2"):
        choice((1, 2))(True)
    with pytest.raises(vol.Invalid, match=r"\[1\] is not one of 1, 2"):
        choice((1, 2))([1])


def test_nullable_and_listing_allowed():
    assert nullable(integer())(None) is None
    assert nullable(integer())(3) == 3
    with pytest.raises(vol.Invalid, match="must be an integer"):
        nullable(integer())("x")
    closed = listing_allowed(strict({vol.Optional("a"): strict({vol.Optional("b"): integer()})}))
    with pytest.raises(vol.MultipleInvalid) as info:
        closed({"a": {"c": 1}, "d": 2})
    assert sorted((e.path, e.msg) for e in info.value.errors) == [
        (["a", "c"], "unknown key (allowed: b)"),
        (["d"], "unknown key (allowed: a)"),
    ]


def test_the_prefix_names_a_section_validated_on_its_own():
    document = load_yaml_document("backtest:\n  name: abc\n  count: 99\n", "params.yaml")
    problems = Problems("params.yaml", document.index)
    assert problems.check(SCHEMA, document.data["backtest"], prefix="backtest.") is None
    assert problems.text() == "params.yaml:3: backtest.count: must be <= 10, got 99"


def test_named_checks_add_to_the_same_problems_and_raise_them_all():
    problems = _problems("name: abc\ncount: 99\n")
    problems.add("name", "is taken")
    problems.add("", "something about the whole file")
    assert problems.raw("count") == "99" and problems.line("name") == 1
    assert problems.line("name.deeper.still") == 1 and problems.line("other") is None
    with pytest.raises(ConfigError) as info:
        problems.raise_for(ConfigError)
    assert str(info.value).splitlines() == [
        "f.yaml: something about the whole file",
        "f.yaml:1: name: is taken",
        "f.yaml:2: count: must be <= 10, got 99",
    ]
    Problems("x").raise_for(ConfigError)  # nothing found: no error
    with pytest.raises(ConfigError, match="f.yaml:1: name: is taken"):
        problems.fail(ConfigError)


def test_type_names_are_the_yaml_ones():
    assert [type_name(v) for v in (None, True, 1, 1.5, "a", {}, [], (), b"")] == [
        "null",
        "boolean",
        "integer",
        "number",
        "text",
        "mapping",
        "list",
        "list",
        "bytes",
    ]


# -- the engine never raises: whatever the data, it returns problems ------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["abc", "fast", "slow", "id", "x", "name", "count", "nested", "items"]),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "name",
            "count",
            "ratio",
            "enabled",
            "mode",
            "nested",
            "depth",
            "items",
            "id",
            "free",
            "x",
            "size",
        ]
    ),
    st.text(max_size=5),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
)
_yamlish = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


@settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    data=st.one_of(_yamlish, st.dictionaries(_keys, _yamlish, max_size=6)),
    prefix=st.sampled_from(["", "section."]),
)
def test_check_never_raises_and_fails_only_with_problems(data, prefix):
    problems = Problems("f.yaml", {"name": (1, "abc")})
    result = problems.check(SCHEMA, data, prefix=prefix)
    assert (result is None) == bool(problems)
    for problem in problems.items:
        assert problem.message and problem.path == "f.yaml"
        assert problem.field.startswith(prefix.rstrip(".")) if prefix else True
    assert isinstance(problems.text(), str)
