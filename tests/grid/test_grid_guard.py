"""Grid guards count before they work (issue 12 item 5): variants are counted from the axes
arithmetically - ranges, lists, catalog constraints - before any list is built or any candle
is read, so a 10^12-variant request is refused at once and in little memory."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from ita_vc.catalog import Catalog, IndicatorSpec, ParamSpec, load_catalog
from ita_vc.errors import DataValidationError
from ita_vc.grid import AXIS_VALUES_MAX, GridRequest, parse_grid
from tests.helpers import VENV_BIN

CATALOG = load_catalog()
MEMORY_LIMIT = 700 * 2**20  # address space; the refusal needs ~200 MB, main needed 1.9 GB RSS


def _ma(fast, slow, **extra):
    return {"indicators": [{"name": "ma_cross", "params": {"fast": fast, "slow": slow}}], **extra}


# -- the counts ---------------------------------------------------------------------------------
def _enumerated(request: GridRequest) -> int:
    return sum(1 for _ in request.base_variants())


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        ({"min": 5, "max": 20, "step": 5}, [30, 50, 80]),
        ({"min": 1, "max": 60, "step": 1}, {"min": 2, "max": 70, "step": 3}),
        ([10, 30, 50], [20, 30, 40, 60]),  # ties (30 < 30 is false)
        ({"min": 40, "max": 90}, {"min": 2, "max": 45}),  # mostly impossible pairs
        (7, {"min": 2, "max": 9}),
    ],
)
def test_the_arithmetic_count_equals_the_enumeration(fast, slow):
    request = parse_grid(_ma(fast, slow, targets={"sl_pct": [None, 1.0]}), CATALOG)
    count, exact = request.count_stage_a()
    assert exact and count == _enumerated(request) and request.count_base() == count
    assert request.count_stage_b(count) == min(count, request.preselect) * 2


def test_two_indicators_multiply_and_range_counts_are_floor_plus_one():
    request = parse_grid(
        {
            "indicators": [
                {
                    "name": "atr",
                    "params": {"window": [10, 20], "k": {"min": 0.5, "max": 2.0, "step": 0.1}},
                },
                {"name": "ma_cross", "params": {"fast": [5, 25], "slow": [20, 30]}},
            ]
        },
        CATALOG,
    )
    assert dict(request.axes[0][1])["k"][-1] == 2.0 and len(dict(request.axes[0][1])["k"]) == 16
    assert request.count_stage_a() == (2 * 16 * 3, True) == (_enumerated(request), True)


def _catalog_with(constraints):
    spec = IndicatorSpec(
        "band",
        "",
        {p: ParamSpec(p, "int", 1, 10_000, 1, 5) for p in ("lo", "mid", "hi")},
        constraints,
    )
    return Catalog({"band": spec})


def test_several_constraints_are_exact_when_few_and_an_upper_bound_when_many():
    catalog = _catalog_with(("lo < mid", "mid <= hi"))
    small = parse_grid(
        {
            "indicators": [
                {
                    "name": "band",
                    "params": {
                        "lo": {"min": 1, "max": 20},
                        "mid": {"min": 1, "max": 20},
                        "hi": [3, 10, 20],
                    },
                }
            ]
        },
        catalog,
    )
    assert small.count_stage_a() == (_enumerated(small), True)
    # 100 x 100 x 100 combinations to enumerate: bounded by the tighter single constraint
    big = parse_grid(
        {
            "indicators": [
                {
                    "name": "band",
                    "params": {
                        "lo": {"min": 1, "max": 100},
                        "mid": {"min": 1, "max": 100},
                        "hi": {"min": 1, "max": 100},
                    },
                }
            ],
            "max_variants": 10_000_000,
        },
        catalog,
    )
    bound, exact = big.count_stage_a()
    assert not exact and bound >= _enumerated(big)
    with pytest.raises(DataValidationError, match=r"has up to [\d,]+ variants \(Stage A up to"):
        parse_grid(
            {
                "indicators": [
                    {
                        "name": "band",
                        "params": {
                            "lo": {"min": 1, "max": 500},
                            "mid": {"min": 1, "max": 500},
                            "hi": {"min": 1, "max": 500},
                        },
                    }
                ]
            },
            catalog,
        )


# -- refusals name the count, the limit and the field ------------------------------------------
@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (
            _ma({"min": 1, "max": 2000}, {"min": 2, "max": 4000}),
            r"has 6,019,000 variants \(Stage A 5,999,000 \+ Stage B 20,000\), more than "
            r"max_variants = 1,000,000 \(grid.max_variants\).*fast 2,000 x slow 3,999 values",
        ),
        (
            _ma({"min": 1, "max": 5000}, {"min": 2, "max": 10000}),
            r"has 37,517,500 variants .* max_variants = 1,000,000",
        ),
        (
            {
                "indicators": [
                    {"name": "atr", "params": {"k": {"min": 0.1, "max": 20, "step": 1e-7}}}
                ]
            },
            r"grid.indicators.0.params.k: .* is 199,000,001 values, more than an axis may hold "
            r"\(1,000,000\)",
        ),
        (
            {
                "indicators": [
                    {"name": "atr", "params": {"k": {"min": 0.1, "max": 20, "step": 1e-300}}}
                ]
            },
            r"grid.indicators.0.params.k: .*step >= 1e-09",
        ),
    ],
)
def test_huge_grids_are_refused_naming_count_limit_and_field(raw, match):
    with pytest.raises(DataValidationError, match=match) as info:
        parse_grid(raw, CATALOG)
    assert info.value.exit_code == 11


TERA = {
    "indicators": [  # 937,250,012,500 base variants, every axis within the cap
        {
            "name": "ma_cross",
            "params": {"fast": {"min": 1, "max": 5000}, "slow": {"min": 2, "max": 10000}},
        },
        {"name": "sma", "params": {"window": {"min": 2, "max": 5000}}},
        {"name": "ema", "params": {"window": {"min": 2, "max": 6}}},
    ]
}


def test_a_product_of_axes_within_the_cap_is_refused_with_its_exact_count():
    with pytest.raises(
        DataValidationError,
        match=(
            r"has 937,250,032,500 variants \(Stage A 937,250,012,500 \+ Stage B 20,000\), "
            r"more than max_variants = 1,000,000 \(grid.max_variants\); narrow the ranges "
            r"\(grid.indicators.0 ma_cross: fast 5,000 x slow 9,999 values, fast < slow; "
            r"grid.indicators.1 sma: window 4,999 values; grid.indicators.2 ema: window 5 "
            r"values\)"
        ),
    ):
        parse_grid(TERA, CATALOG)
    # raising max_variants moves the refusal to the compute guard, still before any work
    raised = parse_grid({**TERA, "max_variants": 10**13}, CATALOG)
    assert raised.count_stage_a() == (937_250_012_500, True)
    assert len(raised.axes[0][1][0][1]) == 5000 <= AXIS_VALUES_MAX


# -- in a real process: before any candle, in little memory ------------------------------------
_LIMITED = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from ita_vc.cli import main
    sys.exit(main(["grid", "run"]))
    """
)


def _workspace_without_candles(repo, grid: str, indicators: str) -> None:
    """An `ita-vc init` workspace with a rule of ``indicators`` and ``grid`` in params.yaml,
    and no candles at all: a guard that loaded them first would fail on them instead."""
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    rule = repo / "seed.yaml"
    rule.write_text(f"setup_id: big\nversion: '1.0'\nindicators: {indicators}\n")
    RuleRegistry(Workspace.at(repo)).new("big", from_file=rule)
    params = repo / "params.yaml"
    text = params.read_text().replace("setup_id: example_ma_cross", "setup_id: big")
    head = text[: text.index("grid:")]
    params.write_text(head + "grid:\n" + textwrap.indent(grid, "  "))
    assert not (repo / "data" / "candles").exists()


@pytest.mark.parametrize(
    ("grid", "indicators", "expected"),
    [
        (
            "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 2000}, "
            "slow: {min: 2, max: 4000}}}]\n",
            "[{name: ma_cross, params: {fast: 10, slow: 20}}]",
            ["6,019,000 variants", "max_variants = 1,000,000", "grid.indicators.0 ma_cross"],
        ),
        (
            "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 5000}, "
            "slow: {min: 2, max: 10000}}}]\n",
            "[{name: ma_cross, params: {fast: 10, slow: 20}}]",
            ["37,517,500 variants", "max_variants = 1,000,000"],
        ),
        (
            "indicators: [{name: atr, params: {k: {min: 0.1, max: 20, step: 1.0e-7}}}]\n",
            "[{name: atr, params: {window: 14, k: 1.0}}]",
            ["grid.indicators.0.params.k", "199,000,001 values", "(1,000,000)"],
        ),
        # ~10^12 variants, every axis within the cap
        (
            "indicators: [{name: ma_cross, params: {fast: {min: 1, max: 5000}, slow: {min: 2, "
            "max: 10000}}}, {name: sma, params: {window: {min: 2, max: 5000}}}, {name: ema, "
            "params: {window: {min: 2, max: 6}}}]\n",
            "[{name: ma_cross, params: {fast: 10, slow: 20}}, {name: sma}, {name: ema}]",
            ["937,250,032,500 variants", "max_variants = 1,000,000"],
        ),
    ],
)
def test_the_cli_refuses_before_any_candle_in_bounded_memory(tmp_repo, grid, indicators, expected):
    _workspace_without_candles(tmp_repo, grid, indicators)
    before = {
        p: p.read_bytes() for p in tmp_repo.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _LIMITED.format(limit=MEMORY_LIMIT)],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 11, proc.stderr[-2000:]
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "no candles" not in proc.stderr
    after = {
        p: p.read_bytes()
        for p in tmp_repo.rglob("*")
        if p.is_file() and ".git" not in p.parts and "logs" not in p.parts and ".ita" not in p.parts
    }
    assert after == {p: b for p, b in before.items() if p in after} and set(after) <= set(before)


def test_the_example_request_is_built_as_before():
    """The example pipeline's request: the same axes (and so the same grid_request_hash)."""
    request = parse_grid(_ma({"min": 5, "max": 20, "step": 5}, [30, 50, 80]), CATALOG)
    assert json.dumps(request.to_dict()["axes"]) == (
        '[["ma_cross", [["fast", [5, 10, 15, 20]], ["slow", [30, 50, 80]]]]]'
    )
    assert request.count_stage_a() == (12, True)
