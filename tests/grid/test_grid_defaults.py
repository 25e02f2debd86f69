"""A grid sweeps its rule's own indicators (issue 13 item 3): other indicators are refused
naming both lists; a params.yaml that names no axes sweeps the rule's indicators at their
values +/- 5 catalog steps, and says so in report.md and summary.json (only then)."""

from __future__ import annotations

import json

import pytest

from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError
from ita_vc.grid import parse_grid
from ita_vc.rules.validate import parse_rule
from tests.helpers import invoke, make_pipeline_repo

CATALOG = load_catalog()


def _rule(text: str):
    rule, problems = parse_rule(
        f"setup_id: r\nversion: '1.0'\n{text}".encode(),
        "r.yaml",
        catalog=CATALOG,
        rules_root=None,
        require_hash=False,
    )
    assert not problems, problems
    return rule


SMA_RSI = _rule(
    "indicators: [{name: sma, params: {window: 3}}, "
    "{name: rsi, params: {window: 14, lower: 30, upper: 97.5}}]\n"
    "targets: {sl_pct: 1.0, tp_pct: 3.0}\n"
)
MA_CROSS = _rule("indicators: [{name: ma_cross, params: {fast: 10, slow: 20}}]\n")


@pytest.mark.parametrize("raw", [None, {}, {"indicators": []}, {"indicators": None}, {"top_k": 5}])
def test_no_axes_default_to_the_rules_own_indicators(raw):
    request = parse_grid(raw, CATALOG, MA_CROSS)
    assert request.default_axes
    assert request.axes == [
        ("ma_cross", [("fast", list(range(5, 16))), ("slow", list(range(15, 26)))])
    ]
    assert request.count_stage_a() == (11 * 11 - 1, True)  # fast 15, slow 15 breaks fast < slow
    assert sum(1 for _ in request.base_variants()) == 120


def test_default_axes_clip_to_the_catalog_and_keep_the_rules_targets():
    request = parse_grid(None, CATALOG, SMA_RSI)
    axes = dict(request.axes)
    assert dict(axes["sma"]) == {"window": [2, 3, 4, 5, 6, 7, 8]}  # the catalog min is 2
    rsi = dict(axes["rsi"])
    assert rsi["window"] == list(range(9, 20)) and rsi["lower"] == list(range(25, 36))
    assert rsi["upper"] == [92.5, 93.5, 94.5, 95.5, 96.5, 97.5, 98.5, 99.5]  # max 100
    assert (request.sl_values, request.tp_values) == ([1.0], [3.0])
    given = parse_grid({"targets": {"sl_pct": [None, 2.0]}}, CATALOG, SMA_RSI)
    assert given.default_axes and given.sl_values == [None, 2.0] and given.tp_values == [None]


def test_named_axes_are_not_defaulted_and_must_be_the_rules():
    named = parse_grid(
        {"indicators": [{"name": "ma_cross", "params": {"fast": [5, 10]}}]}, CATALOG, MA_CROSS
    )
    assert not named.default_axes and named.to_dict()["axes"][0][0] == "ma_cross"
    swapped = parse_grid({"indicators": [{"name": "rsi"}, {"name": "sma"}]}, CATALOG, SMA_RSI)
    assert [n for n, _ in swapped.axes] == ["rsi", "sma"]  # the same names, in any order
    with pytest.raises(
        DataValidationError,
        match=(
            r"grid.indicators: the grid sweeps \[ma_cross\] but the rule r v1.0 has "
            r"\[sma, rsi\]"
        ),
    ) as info:
        parse_grid({"indicators": [{"name": "ma_cross"}]}, CATALOG, SMA_RSI)
    assert info.value.exit_code == 11
    with pytest.raises(
        DataValidationError,
        match=r"sweeps \[sma\] but the rule r v1.0 has "
        r"\[sma, rsi\]",
    ):
        parse_grid({"indicators": [{"name": "sma"}]}, CATALOG, SMA_RSI)


def test_without_a_rule_the_indicators_are_still_required():
    with pytest.raises(DataValidationError, match="needs an `indicators` list"):
        parse_grid({}, CATALOG)


def _drop_grid(repo, replacement: str = "") -> None:
    params = repo / "params.yaml"
    text = params.read_text()
    params.write_text(text[: text.index("grid:")] + replacement)


@pytest.mark.parametrize("replacement", ["", "grid: {}\n", "grid:\n  top_k: 7\n"])
def test_grid_run_without_axes_sweeps_the_rule_and_says_so(tmp_repo, replacement):
    make_pipeline_repo(tmp_repo)
    _drop_grid(tmp_repo, replacement)
    result = invoke("grid", "run", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "swept the rule's own indicators" in result.stdout
    summary = json.loads((tmp_repo / "results/grid/summary.json").read_text())
    assert summary["default_axes"] == (
        "the rule's own indicators, each parameter at its rule "
        "value +/- 5 catalog steps (clipped to the catalog "
        "bounds)"
    )
    assert summary["counts"]["stage_a_variants"] == 120
    report = (tmp_repo / "results/grid/report.md").read_text()
    assert "- axes: params.yaml names none, so the grid swept the rule's own indicators" in report


def test_named_axes_write_no_default_field(tmp_repo):
    make_pipeline_repo(tmp_repo)
    assert invoke("grid", "run", "--workers", "1").exit_code == 0
    summary = json.loads((tmp_repo / "results/grid/summary.json").read_text())
    assert "default_axes" not in summary
    assert "- axes:" not in (tmp_repo / "results/grid/report.md").read_text()


def test_grid_run_refuses_another_rules_indicators(tmp_repo):
    """The issue's recipe: init's params (sweeping ma_cross) with a rule of sma and rsi."""
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    make_pipeline_repo(tmp_repo)
    seed = tmp_repo.parent / "sma_rsi.yaml"
    seed.write_text("setup_id: sma_rsi\nversion: '1.0'\nindicators: [{name: sma}, {name: rsi}]\n")
    RuleRegistry(Workspace.at(tmp_repo)).new("sma_rsi", from_file=seed)
    params = tmp_repo / "params.yaml"
    params.write_text(params.read_text().replace("setup_id: example_ma_cross", "setup_id: sma_rsi"))
    result = invoke("grid", "run", "--workers", "1")
    assert result.exit_code == 11, result.output
    assert "the grid sweeps [ma_cross] but the rule sma_rsi v1.0 has [sma, rsi]" in result.stderr
    assert not (tmp_repo / "results/grid").exists()
