"""Hostile grid input (issue 12 items 5 and 8, issue 11 item 3's containment): every bad value
of params.yaml's grid section, a damaged checkpoint and a symlinked checkpoint folder end in a
documented exit code with a message naming the field or file - never exit 3 - and nothing
already stored changes."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.helpers import invoke, ita_vc_subprocess, make_pipeline_repo


def _stored(repo) -> dict[str, str]:
    """Hash of every file of the workspace but git's, the log and the lock files, and the run
    log and run-id counter (a refused run is recorded there as failed: that is their job)."""
    skip = {".git", "logs"}
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
        and not skip & set(p.parts)
        and not p.name.endswith((".lock", ".lock.info"))
        and p.name not in ("params.yaml", "runs.jsonl", "run-ids.json")
    }


def _set_grid(repo, grid: str) -> None:
    params = repo / "params.yaml"
    text = params.read_text()
    params.write_text(text[: text.index("grid:")] + grid)


@pytest.fixture
def pipeline(tmp_repo):
    return make_pipeline_repo(tmp_repo)


_RANGE = "grid:\n  indicators: [{{name: ma_cross, params: {{fast: {fast}, slow: [30, 50]}}}}]\n"
_AXES = "grid:\n  indicators: [{name: ma_cross, params: {fast: [5, 10], slow: [30, 50]}}]\n"

BAD_GRIDS = [
    # (the grid section, a fragment the message must hold); exit 11 each
    (_AXES + "  targets: {sl_pct: [null], tp_pct: [.nan]}\n", "grid.targets.tp_pct: nan"),
    (_AXES + "  targets: {sl_pct: [.inf], tp_pct: [null]}\n", "grid.targets.sl_pct: inf"),
    (_AXES + "  targets: {sl_pct: [-.inf]}\n", "grid.targets.sl_pct: -inf"),
    (_AXES + "  targets: {sl_pct: ['2']}\n", "grid.targets.sl_pct: '2'"),
    (_AXES + "  targets: {sl_pct: [true]}\n", "grid.targets.sl_pct: True"),
    (_AXES + "  targets: {sl_pct: [[1]]}\n", "grid.targets.sl_pct: [1]"),
    (_AXES + "  targets: {sl_pct: {a: 1}}\n", "grid.targets.sl_pct: {'a': 1}"),
    (_AXES + "  targets: {sl_pct: []}\n", "grid.targets.sl_pct: []"),
    (_AXES + "  targets: {sl_pct: [20000]}\n", "grid.targets.sl_pct: 20000"),
    (_AXES + "  targets: [1, 2]\n", "grid.targets: [1, 2]: must be a mapping"),
    (_AXES + "  targets: {tp: 1}\n", "grid.targets.tp: 1: unknown key"),
    ("grid:\n  indicators: {name: ma_cross}\n", "grid.indicators: {'name': 'ma_cross'}"),
    ("grid:\n  indicators: [ma_cross]\n", "grid.indicators.0: 'ma_cross'"),
    ("grid:\n  indicators: [{name: [ma_cross]}]\n", "grid.indicators.0.name: ['ma_cross']"),
    ("grid:\n  indicators: [{name: macd}]\n", "grid.indicators.0.name: 'macd': unknown indicator"),
    ("grid:\n  indicators: [{name: ma_cross, colour: red}]\n", "grid.indicators.0.colour"),
    (
        "grid:\n  indicators: [{name: ma_cross, params: [1, 2]}]\n",
        "grid.indicators.0.params: [1, 2]: must be a mapping",
    ),
    (
        "grid:\n  indicators: [{name: ma_cross, params: {span: 3}}]\n",
        "grid.indicators.0.params.span: 3: unknown parameter",
    ),
    (_RANGE.format(fast="{min: a, max: 20}"), "grid.indicators.0.params.fast.min: 'a'"),
    (_RANGE.format(fast="{min: .nan, max: 20}"), "grid.indicators.0.params.fast.min: nan"),
    (_RANGE.format(fast="{min: 5, max: .inf}"), "grid.indicators.0.params.fast.max: inf"),
    (_RANGE.format(fast="{min: true, max: 20}"), "grid.indicators.0.params.fast.min: True"),
    (_RANGE.format(fast="{min: 5, max: 20, step: [1]}"), "params.fast.step: [1]"),
    (_RANGE.format(fast="{min: 5, max: 20, step: 0}"), "needs min <= max and step >= 1e-09"),
    (_RANGE.format(fast="{min: 5, max: 20, step: -1}"), "needs min <= max"),
    (_RANGE.format(fast="{min: 20, max: 5}"), "needs min <= max"),
    (_RANGE.format(fast="{min: 5}"), "a range is {min, max, step}"),
    (_RANGE.format(fast="{min: 5, max: 20, by: 1}"), "a range is {min, max, step}"),
    (_RANGE.format(fast="{min: 0, max: 20}"), "never widens"),
    (_RANGE.format(fast="{min: 5, max: 20, step: 0.5}"), "must be a whole number"),
    (_RANGE.format(fast="[.nan]"), "grid.indicators.0.params.fast: nan"),
    (_RANGE.format(fast="[.inf]"), "grid.indicators.0.params.fast: inf"),
    (_RANGE.format(fast="['10']"), "grid.indicators.0.params.fast: '10'"),
    (_RANGE.format(fast="[true]"), "grid.indicators.0.params.fast: True"),
    (_RANGE.format(fast="[[10]]"), "grid.indicators.0.params.fast: [10]"),
    (_RANGE.format(fast="[]"), "an axis needs at least one value"),
    (_RANGE.format(fast="null"), "grid.indicators.0.params.fast: None"),
    (_RANGE.format(fast="2025-01-01"), "datetime.date(2025, 1, 1)"),
    (_AXES + "  top_k: .inf\n", "grid.top_k: inf: must be a positive whole number"),
    (_AXES + "  top_k: .nan\n", "grid.top_k: nan"),
    (_AXES + "  top_k: '20'\n", "grid.top_k: '20'"),
    (_AXES + "  top_k: true\n", "grid.top_k: True"),
    (_AXES + "  top_k: 2.5\n", "grid.top_k: 2.5"),
    (_AXES + "  top_k: 0\n", "grid.top_k: 0"),
    (_AXES + "  batch_size: -3\n", "grid.batch_size: -3"),
    (_AXES + "  top_k: 1" + "0" * 400 + "\n", "grid.top_k: 1000"),  # beyond a float
    (_RANGE.format(fast="[1" + "0" * 400 + "]"), "grid.indicators.0.params.fast: 1000"),
    (_RANGE.format(fast="{min: 5, max: 1" + "0" * 400 + "}"), "params.fast.max: 1000"),
    (_AXES + "  prune: {min_trades: 1" + "0" * 400 + "}\n", "grid.prune.min_trades: 1000"),
    (_AXES + "  max_variants: .inf\n", "grid.max_variants: inf"),
    (_AXES + "  max_compute_bytes: .nan\n", "grid.max_compute_bytes: nan"),
    (_AXES + "  max_variants: 5\n", "more than max_variants = 5"),
    (_AXES + "  max_compute_bytes: 1000\n", "more than max_compute_bytes"),
    (_AXES + "  prune: [1]\n", "grid.prune: [1]: must be a mapping"),
    (_AXES + "  prune: {min_trades: a}\n", "grid.prune.min_trades: 'a'"),
    (_AXES + "  prune: {max_drawdown_floor: .nan}\n", "grid.prune.max_drawdown_floor: nan"),
    (_AXES + "  prune: {max_drawdown_floor: 10}\n", "grid.prune.max_drawdown_floor: 10"),
    (_AXES + "  prune: {min_trades: 10, max_trades: 5}\n", "is more than max_trades 5"),
    (_AXES + "  prune: {max_dd: 1}\n", "grid.prune.max_dd: 1: unknown key"),
    (_AXES + "  direction: sideways\n", "grid.direction: 'sideways'"),
    (_AXES + "  direction: 1\n", "grid.direction: 1"),
    (_AXES + "  sizing: {mode: fixed_quote}\n", "grid.sizing.amount"),
    (_AXES + "  sizing: {mode: martingale}\n", "grid.sizing.mode"),
    (_AXES + "  sizing: [1]\n", "grid.sizing: [1]"),
    (_AXES + "  sizing: {mode: fixed_quote, amount: .nan}\n", "grid.sizing: "),
    (_AXES + "  sizing: {mode: all_in, leverage: 3}\n", "grid.sizing.leverage"),
    (
        _AXES + "  sizing: {mode: strategy_compound, budget: 1.0e+9}\n",
        "grid.sizing.budget: 1000000000.0: larger than backtest.init_cash",
    ),
    (_AXES + "  colour: red\n", "grid.colour: 'red': unknown key"),
    (_AXES + "  1: 2\n", "grid.1: 2: unknown key"),
    ("grid: [1, 2]\n", "grid: [1, 2]: must be a mapping"),
    ("grid: just a string\n", "grid: 'just a string': must be a mapping"),
    (
        "grid:\n  indicators: [{name: sma, params: {window: [10, 20]}}]\n",
        "the grid sweeps [sma] but the rule example_ma_cross v1.0 has [ma_cross]",
    ),
    (
        "grid:\n  indicators: [{name: ma_cross}, {name: sma}]\n",
        "the grid sweeps [ma_cross, sma] but the rule example_ma_cross v1.0 has [ma_cross]",
    ),
    (
        "grid:\n  indicators: [{name: atr, params: {k: {min: 0.1, max: 20, step: 1.0e-7}}}]\n",
        "199,000,001 values, more than an axis may hold (1,000,000)",
    ),
]


def test_every_bad_grid_value_is_exit_11_naming_it(pipeline):
    stored = _stored(pipeline)
    for grid, fragment in BAD_GRIDS:
        _set_grid(pipeline, grid)
        result = invoke("grid", "run", "--workers", "1")
        assert result.exit_code == 11, (grid, result.output)
        assert fragment in result.stderr, (grid, result.stderr)
        assert "params.yaml" in result.stderr or "checkpoint" in result.stderr
        assert _stored(pipeline) == stored, grid
    assert not (pipeline / "results" / "grid").exists()


def test_the_dvc_stage_refuses_a_nan_target_as_well(pipeline):
    """The recipe of the issue: `tp_pct: [.nan]` ended in canonical JSON's ValueError."""
    stored = _stored(pipeline)
    _set_grid(pipeline, _AXES + "  targets: {sl_pct: [null], tp_pct: [.nan]}\n")
    proc = ita_vc_subprocess("grid", "run", "--workers", "1", cwd=pipeline)
    assert proc.returncode == 11, proc.stderr
    assert "grid.targets.tp_pct: nan" in proc.stderr and "Traceback" not in proc.stderr
    from tests.helpers import VENV_BIN, run

    stage = run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "grid"], cwd=pipeline, check=False
    )
    assert stage.returncode == 11, stage.stderr
    assert "grid.targets.tp_pct: nan" in stage.stderr
    assert _stored(pipeline) == stored


# -- the checkpoint -----------------------------------------------------------------------------
def _partial(repo):
    """A stopped grid: a real checkpoint of this request to damage."""
    _set_grid(
        repo,
        "grid:\n  indicators: [{name: ma_cross, params: {fast: {min: 2, max: 9}, "
        "slow: [30, 50]}}]\n  batch_size: 2\n  top_k: 5\n",
    )
    stopped = invoke(
        "grid", "run", "--workers", "1", "--max-seconds", "0", "--out", str(repo / "g")
    )
    assert stopped.exit_code == 0 and "PARTIAL" in stopped.stdout, stopped.output
    checkpoint = repo / ".ita" / "grid" / "checkpoint.json"
    return checkpoint, json.loads(checkpoint.read_text())


def _damaged(doc):
    state = doc["state"]
    item = state["shortlist"][0]
    return [
        (b"", "not a readable grid checkpoint"),
        (json.dumps(doc).encode()[:57], "not a readable grid checkpoint"),
        (b"\xff\xfe\x00garbage", "not a readable grid checkpoint"),
        (b"[" * 100_000, "not a readable grid checkpoint"),
        (b"[]", "not a grid checkpoint"),
        (
            json.dumps({**doc, "request_hash": "sha256:" + "0" * 64}).encode(),
            "of another grid or engine setting",
        ),
        (json.dumps({**doc, "state": None}).encode(), "search state is damaged"),
        (json.dumps({**doc, "state": {**state, "stage": "Z"}}).encode(), "search state is damaged"),
        (
            json.dumps({**doc, "state": {**state, "next_batch": -1}}).encode(),
            "search state is damaged",
        ),
        (
            json.dumps({**doc, "state": {**state, "evaluated_a": "3"}}).encode(),
            "search state is damaged",
        ),
        (
            json.dumps({**doc, "state": {**state, "shortlist": {}}}).encode(),
            "search state is damaged",
        ),
        (
            json.dumps({**doc, "state": {**state, "shortlist": [1]}}).encode(),
            "search state is damaged",
        ),
        (
            json.dumps(
                {**doc, "state": {**state, "shortlist": [{**item, "trades": "x"}]}}
            ).encode(),
            "search state is damaged",
        ),
        (
            json.dumps(
                {
                    **doc,
                    "state": {
                        **state,
                        "shortlist": [
                            {
                                **item,
                                "variant": {
                                    "indicators": [["ma_cross", [["fast", "2"], ["slow", 30]]]]
                                },
                            }
                        ],
                    },
                }
            ).encode(),
            "search state is damaged",
        ),
        (
            json.dumps(
                {
                    **doc,
                    "state": {
                        **state,
                        "topk": [
                            {
                                **item,
                                "variant": {
                                    "indicators": [["ma_cross", [["fast", 3], ["slow", 31]]]]
                                },
                            }
                        ],
                    },
                }
            ).encode(),
            "search state is damaged",
        ),
    ]


def test_a_damaged_checkpoint_with_resume_is_a_clear_error(pipeline):
    checkpoint, doc = _partial(pipeline)
    stored = _stored(pipeline)
    for content, fragment in _damaged(doc):
        checkpoint.write_bytes(content)
        stored[".ita/grid/checkpoint.json"] = hashlib.sha256(content).hexdigest()
        result = invoke("grid", "run", "--workers", "1", "--resume", "--out", str(pipeline / "g"))
        assert result.exit_code == 11, (content[:80], result.output)
        assert fragment in result.stderr, (content[:80], result.stderr)
        assert ".ita/grid/checkpoint.json" in result.stderr
        assert "delete it, or run without --resume" in result.stderr
        assert _stored(pipeline) == stored
    # the advice works: without --resume the grid starts over and overwrites it
    done = invoke("grid", "run", "--workers", "1", "--out", str(pipeline / "g"))
    assert done.exit_code == 0, done.output
    assert json.loads(checkpoint.read_text())["state"]["stage"] == "done"


def test_an_intact_checkpoint_still_resumes(pipeline):
    _checkpoint, _doc = _partial(pipeline)
    resumed = invoke("grid", "run", "--workers", "1", "--resume", "--out", str(pipeline / "g"))
    assert resumed.exit_code == 0 and "PARTIAL" not in resumed.stdout, resumed.output


def test_a_symlinked_checkpoint_folder_leading_outside_is_refused(pipeline, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (pipeline / ".ita").mkdir(exist_ok=True)
    (pipeline / ".ita" / "grid").symlink_to(outside, target_is_directory=True)
    stored = _stored(pipeline)
    proc = ita_vc_subprocess("grid", "run", "--workers", "1", cwd=pipeline)
    assert proc.returncode == 9, proc.stderr
    assert ".ita/grid" in proc.stderr and "leads outside the workspace" in proc.stderr
    assert list(outside.iterdir()) == []
    assert _stored(pipeline) == stored and not (pipeline / "results" / "grid").exists()
