"""The grid package: its public names, a light request parser, and a request schema that
reports every problem of the section at once (each naming its field and value)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ita_vc.grid
from ita_vc.catalog import load_catalog
from ita_vc.errors import DataValidationError
from ita_vc.grid import parse_grid
from ita_vc.grid.request import GRID_SCHEMA
from ita_vc.schema import Problems

CATALOG = load_catalog()
AXES = {"indicators": [{"name": "ma_cross", "params": {"fast": [5, 10], "slow": [30, 50]}}]}


def test_every_public_name_resolves():
    assert sorted(ita_vc.grid.__all__) == sorted(set(ita_vc.grid.__all__))
    for name in ita_vc.grid.__all__:
        assert getattr(ita_vc.grid, name) is not None, name
    assert set(ita_vc.grid.__all__) <= set(dir(ita_vc.grid))


def test_parsing_a_request_does_not_load_the_engine():
    """``params.yaml`` is checked and the grid's size guarded before numba is imported."""
    code = (
        "import sys\nfrom ita_vc.catalog import load_catalog\nfrom ita_vc.grid import "
        "parse_grid\nparse_grid({'indicators': [{'name': 'sma'}]}, load_catalog())\n"
        "print(sorted(m for m in ('numba', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_every_problem_of_the_section_is_reported_at_once():
    raw = {
        **AXES,
        "top_k": 0,
        "batch_size": -3,
        "colour": "red",
        "targets": {"sl_pct": [20000], "tp": 1},
        "prune": {"min_trades": 10, "max_trades": 5, "max_drawdown_floor": 10},
        "direction": "sideways",
        "sizing": {"mode": "fixed_quote"},
    }
    with pytest.raises(DataValidationError) as caught:
        parse_grid(raw, CATALOG)
    lines = str(caught.value).splitlines()
    expected = [
        "params.yaml: grid.batch_size: -3: must be a positive whole number",
        "params.yaml: grid.colour: 'red': unknown key (known: ",
        "params.yaml: grid.direction: 'sideways': one of ",
        "params.yaml: grid.prune.max_drawdown_floor: 10: a percent in [-100, 0]",
        "params.yaml: grid.prune.min_trades: 10: is more than max_trades 5",
        "params.yaml: grid.sizing.amount: {'mode': 'fixed_quote'}: sizing mode fixed_quote "
        "needs amount",
        "params.yaml: grid.targets.sl_pct: 20000: percent values > 0 and < 10,000, or null",
        "params.yaml: grid.targets.tp: 1: unknown key (sl_pct, tp_pct)",
        "params.yaml: grid.top_k: 0: must be a positive whole number",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert caught.value.exit_code == 11


def test_axis_problems_are_reported_with_the_settings_problems():
    raw = {
        "indicators": [
            {"name": "ma_cross", "params": {"fast": {"min": 0, "max": 20}, "span": 3}},
            "sma",
            {"name": "macd"},
        ],
        "preselect": "many",
    }
    with pytest.raises(DataValidationError) as caught:
        parse_grid(raw, CATALOG)
    text = str(caught.value)
    for fragment in (
        "grid.indicators.0.params.fast.min: 0: 0 is outside the catalog range",
        "grid.indicators.0.params.span: 3: unknown parameter of ma_cross",
        "grid.indicators.1: 'sma': must be a mapping {name, params}",
        "grid.indicators.2.name: 'macd': unknown indicator",
        "grid.preselect: 'many': must be a positive whole number",
    ):
        assert fragment in text, text
    assert len(text.splitlines()) == 5


def test_the_size_guard_runs_only_on_a_valid_section():
    """A refused value is reported as such, not as a count (nothing is counted from it)."""
    raw = {
        "indicators": [
            {
                "name": "ma_cross",
                "params": {"fast": {"min": 1, "max": 4000}, "slow": {"min": 2, "max": 4000}},
            }
        ],
        "top_k": -1,
    }
    with pytest.raises(DataValidationError, match=r"grid.top_k: -1") as caught:
        parse_grid(raw, CATALOG)
    assert "max_variants" not in str(caught.value)


def test_the_declared_shape_on_its_own():
    problems = Problems("params.yaml")
    checked = problems.check(
        GRID_SCHEMA,
        {"top_k": 5.0, "max_compute_bytes": 10, "targets": {"sl_pct": [2, None, 1]}, "prune": None},
        prefix="grid.",
    )
    assert not problems
    assert checked == {
        "top_k": 5,
        "max_compute_bytes": 10.0,
        "targets": {"sl_pct": [None, 1, 2]},
        "prune": None,
    }
    problems.check(GRID_SCHEMA, {"max_variants": True, "targets": {"sl_pct": []}}, prefix="grid.")
    assert [(p.field, p.message) for p in problems.sorted()] == [
        ("grid.max_variants", "True: must be a positive whole number"),
        ("grid.targets.sl_pct", "[]: needs at least one value (null: no SL/TP)"),
    ]


def test_a_workspace_grid_run_gets_named_inputs(tmp_repo):
    """``grid_request`` and ``grid_inputs`` return NamedTuples (still unpackable as tuples)."""
    from ita_vc.grid import GridInputs, GridSetup, default_grid_folder
    from ita_vc.pipeline.stages import grid_inputs, grid_request, read_grid_params
    from ita_vc.workspace import Workspace
    from tests.helpers import make_pipeline_repo

    make_pipeline_repo(tmp_repo)
    workspace = Workspace.at(tmp_repo)
    raw = read_grid_params(workspace).data
    setup = grid_request(workspace, raw)
    assert isinstance(setup, GridSetup)
    rule, params, request = setup
    assert (rule.setup_id, params.setup_id) == ("example_ma_cross", "example_ma_cross")
    assert request is setup.request and request.axes[0][0] == "ma_cross"
    inputs = grid_inputs(workspace, raw)
    assert isinstance(inputs, GridInputs)
    assert inputs.request.to_dict() == request.to_dict()
    assert len(inputs.prepared) > 0 and "warmup" in inputs.prepared.columns
    assert default_grid_folder(workspace) == tmp_repo / "results" / "grid"


def test_grid_problems_carry_their_params_yaml_line():
    from ita_vc.catalog import load_catalog
    from ita_vc.errors import DataValidationError
    from ita_vc.grid import check_grid
    from ita_vc.yaml_read import load_yaml_document

    doc = load_yaml_document("grid:\n  top_k: 0\n  bogus: 1\n", "params.yaml")
    with pytest.raises(DataValidationError) as info:
        check_grid(doc.data["grid"], load_catalog(), index=doc.index)
    assert "params.yaml:2: grid.top_k" in str(info.value)
    assert "params.yaml:3: grid.bogus" in str(info.value)


def test_a_params_file_given_with_params_gets_no_lines_of_the_workspace_file(tmp_repo, tmp_path):
    """Messages say ``params.yaml: ...``: lines come only from the workspace's own file, never
    from it when another file was read (they would point at the wrong lines)."""
    from ita_vc.errors import DataValidationError
    from ita_vc.pipeline.stages import grid_request, read_grid_params
    from ita_vc.workspace import Workspace
    from tests.helpers import make_pipeline_repo

    make_pipeline_repo(tmp_repo)
    workspace = Workspace.at(tmp_repo)
    other = tmp_path / "other.yaml"
    other.write_text("backtest:\n  fee_pct: -1\n")
    doc = read_grid_params(workspace, other)
    assert doc.index == {}
    with pytest.raises(DataValidationError) as info:
        grid_request(workspace, doc.data, index=doc.index)
    assert "params.yaml: backtest.fee_pct: -1" in str(info.value)
    own = read_grid_params(workspace)
    own.data["backtest"]["fee_pct"] = -1
    with pytest.raises(DataValidationError) as info:
        grid_request(workspace, own.data, index=own.index)
    line = own.line("backtest.fee_pct")
    assert line is not None and f"params.yaml:{line}: backtest.fee_pct" in str(info.value)
