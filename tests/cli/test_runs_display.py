"""What a person reads in the terminal: `run` result lines, `runs show/list/diff`, run refs in
every command that takes a run, bad input, and tables that fit (pipes and narrow terminals)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil

import pytest
from rich.console import Console

from ita_vc.cli.console import PIPE_WIDTH, Col, print_table
from tests.helpers import VENV_BIN, TmpRepo, invoke, run

_DURATION = re.compile(r"\d+ days \d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def cli_runs(ran_repo, tmp_path_factory):
    """A copy of ``ran_repo`` with a second run recorded through the CLI (fee 0.05)."""
    root = tmp_path_factory.mktemp("cli") / "repo"
    shutil.copytree(ran_repo, root, symlinks=True)
    repo = TmpRepo(root)
    result = invoke("run", "-S", "backtest.fee_pct=0.05", "--note", "cheaper fee", cwd=root)
    assert result.exit_code == 0, result.output
    repo.run_output = result.stdout  # type: ignore[attr-defined]
    repo.first = ran_repo.report.run_id  # type: ignore[attr-defined]
    repo.second = re.search(r"run (bt_\w+):", result.stdout).group(1)  # type: ignore[attr-defined,union-attr]
    return repo


def test_the_run_result_lines_use_each_metrics_precision(cli_runs):
    lines = dict(
        re.findall(
            r"^  (Total Return \[%\]|Max\. Drawdown \[%\]|Sharpe Ratio|Num\. Trades)\s+(\S+)$",
            cli_runs.run_output,
            re.M,
        )
    )
    assert re.fullmatch(r"-?\d+\.\d\d", lines["Total Return [%]"])
    assert re.fullmatch(r"-?\d+\.\d\d", lines["Max. Drawdown [%]"])
    assert re.fullmatch(r"-?\d+\.\d{3}", lines["Sharpe Ratio"])
    assert re.fullmatch(r"\d+", lines["Num. Trades"])


def test_runs_show_is_a_one_screen_summary_and_json_the_whole_snapshot(cli_runs):
    shown = invoke("runs", "show", cli_runs.first, cwd=cli_runs)
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    for part in ("[rule]", "[data]", "[execution]", "[git]", "[outputs]", "[environment]"):
        assert part in text
    assert "example_ma_cross" in text and "ma_cross(fast=10, slow=20)" in text
    assert "Sharpe Ratio" in text and _DURATION.search(text)
    assert "numpy " in text and "Traceback" not in shown.output
    assert len(text.splitlines()) <= 60  # one screen, not 522 lines of JSON
    as_json = invoke("runs", "show", cli_runs.first, "--json", cwd=cli_runs)
    on_disk = json.loads((cli_runs / f"provenance/{cli_runs.first}.json").read_text())
    assert json.loads(as_json.stdout) == on_disk


@pytest.mark.parametrize("ref", ["@latest~1", "prefix"])
def test_runs_show_takes_a_prefix_and_latest(cli_runs, ref):
    ref = cli_runs.first[:-3] if ref == "prefix" else ref
    result = invoke("runs", "show", ref, "--json", cwd=cli_runs)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == cli_runs.first


def test_runs_diff_shows_changes_and_percent(cli_runs):
    result = invoke("runs", "diff", "@latest~1", "@latest", cwd=cli_runs)
    assert result.exit_code == 0, result.output
    assert f"{cli_runs.first} -> {cli_runs.second}" in result.stdout
    assert "fee_pct" in result.stdout and "0.075" in result.stdout and "-33.33 %" in result.stdout
    assert "Total Return [%]" in result.stdout
    document = json.loads(
        invoke("runs", "diff", cli_runs.first, cli_runs.second[:-2], "--json", cwd=cli_runs).stdout
    )
    rows = {(r["section"], r["key"]): r for r in document["differences"]}
    assert rows[("execution", "fee_pct")]["delta"] == pytest.approx(-0.025)
    assert rows[("params", "backtest.fee_pct")]["b"] == 0.05
    assert rows[("run", "note")]["a"] == "first run" and rows[("run", "note")]["b"] == "cheaper fee"
    same = invoke("runs", "diff", cli_runs.first, cli_runs.first, cwd=cli_runs)
    assert same.exit_code == 0 and "no differences" in same.stdout


@pytest.mark.parametrize("sort", ["sharpe", "SHARPE RATIO", "dd", "Calmar", "return", "trades"])
def test_runs_list_sorts_by_names_and_aliases(cli_runs, sort):
    result = invoke("runs", "list", "--sort", sort, cwd=cli_runs)
    assert result.exit_code == 0, result.output
    assert cli_runs.first in result.stdout and cli_runs.second in result.stdout


def test_runs_list_filters(cli_runs):
    def ids(*args):
        result = invoke("runs", "list", "--json", *args, cwd=cli_runs)
        assert result.exit_code == 0, result.output
        return [r["run_id"] for r in json.loads(result.stdout)]

    assert ids() == [cli_runs.second, cli_runs.first]
    assert ids("--note", "CHEAPER") == [cli_runs.second]
    assert ids("--symbol", "BTCUSDT", "--setup", "example_ma_cross") == ids()
    assert ids("--setup", "EXAMPLE_MA_CROSS") == ids()  # like --symbol: any case
    assert ids("--symbol", "ETHUSDT") == []
    assert ids("--since", "2000-01-01") == ids()
    assert ids("--since", "2999-12-31") == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("runs", "list", "--sort", "happiness"), "unknown metric 'happiness'"),
        (("runs", "list", "--since", "last tuesday"), "--since 'last tuesday' is not a date"),
        (("runs", "list", "--since", "2025-02-30"), "is not a date"),
        (("runs", "show", "bt_"), "is ambiguous"),
        (("runs", "show", "@latest~9"), "only 2 run(s)"),
        (("runs", "diff", "@latest", "nope"), "not a run id: 'nope'"),
        (("runs", "keep", "@latest~5"), "only 2 run(s)"),
        (("snapshot", "verify", "bt_"), "is ambiguous"),
        (("reproduce", "bt_"), "is ambiguous"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_value(cli_runs, args, match):
    result = invoke(*args, cwd=cli_runs)
    assert result.exit_code == 2, result.output
    assert match in result.stderr
    assert "Traceback" not in result.output


def test_the_sort_error_lists_the_valid_names(cli_runs):
    result = invoke("runs", "list", "--sort", "happiness", cwd=cli_runs)
    assert "Sharpe Ratio" in result.stderr and "sharpe" in result.stderr


def test_keep_and_verify_take_run_refs(cli_runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(cli_runs, root, symlinks=True)
    kept = invoke("runs", "keep", "@latest~1", "--reason", "baseline", cwd=root)
    assert kept.exit_code == 0, kept.output
    assert f"pinned {cli_runs.first}: tag ita/keep/{cli_runs.first}" in kept.stdout
    verified = invoke("snapshot", "verify", cli_runs.second[:-1], cwd=root)
    assert verified.exit_code == 0, verified.output
    assert cli_runs.second in verified.stdout and "FAIL" not in verified.stdout


@pytest.mark.slow
def test_reproduce_takes_a_prefix(cli_runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(cli_runs, root, symlinks=True)
    result = invoke("reproduce", cli_runs.first[:-2], cwd=root)
    assert result.exit_code == 0, result.output
    assert f"{cli_runs.first} reproduced bit-exactly" in result.stdout


def test_a_piped_runs_list_prints_whole_rows_whatever_columns_says(cli_runs):
    env = dict(os.environ, COLUMNS="60")
    proc = run([str(VENV_BIN / "ita-vc"), "runs", "list"], cwd=cli_runs, env=env)
    rows = [line for line in proc.stdout.splitlines() if "bt_" in line]
    assert len(rows) == 2  # one line per run: grep finds each whole
    for line, run_id in zip(rows, [cli_runs.second, cli_runs.first], strict=True):
        assert run_id in line and "example_ma_cross" in line and "BTCUSDT" in line
    assert "cheaper fee" in rows[0] and "first run" in rows[1]  # even the last column
    assert max(len(line) for line in proc.stdout.splitlines()) > 60
    diff = run(
        [str(VENV_BIN / "ita-vc"), "runs", "diff", "@latest~1", "@latest"], cwd=cli_runs, env=env
    )
    assert any(
        cli_runs.first in line and cli_runs.second in line for line in diff.stdout.splitlines()
    )


_COLUMNS = [
    Col("run_id", no_wrap=True),
    Col("setup", 2),
    Col("version", 3, no_wrap=True),
    Col("created", 5, no_wrap=True),
    Col("Sharpe Ratio", 0, justify="right", no_wrap=True),
    Col("note", 7),
]
_ROWS = [
    [
        "bt_2026_11_28_002_361",
        "example_ma_cross",
        "v1.0",
        "2026-11-28T12:51:08Z",
        "-1.234",
        "a note",
    ]
]


def _render(width: int) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    print_table(console, _COLUMNS, _ROWS, title="runs")
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_wide_terminal_shows_every_column():
    text = _render(200)
    assert all(c.header in text for c in _COLUMNS) and "not shown" not in text


@pytest.mark.parametrize("width", [80, 60, 40, 20])
def test_a_narrow_terminal_drops_low_priority_columns_and_never_breaks_an_id(width):
    text = _render(width)
    assert "bt_2026_11_28_002_361" in text  # whole, on one line
    assert "-1.234" in text  # priority 0 stays
    shown, _, hidden = text.partition("not shown (narrow terminal):")
    assert "created" in hidden and "created" not in shown  # the lowest priority that is wide
    table_lines = [line for line in shown.splitlines() if "│" in line or "┃" in line]
    if width >= 60:
        assert max(len(line) for line in table_lines) <= width
    else:  # narrower than the id and the kept metric: lines run on, the id stays whole
        assert all(c.header not in shown for c in _COLUMNS[1:4])


def test_a_dropped_column_that_fits_again_comes_back():
    from ita_vc.cli.console import _shown

    columns = [Col("id"), Col("wide", 1), Col("small", 2)]
    # 10 + 30 + 5 + 3 * 3 + 1 = 55: "small" goes first, then "wide"; "small" fits again
    assert _shown(columns, [10, 30, 5], 40) == ([0, 2], ["wide"])
    assert _shown(columns, [10, 30, 5], 55) == ([0, 1, 2], [])
    assert _shown(columns, [10, 30, 5], 10) == ([0], ["wide", "small"])


def test_the_console_of_a_pipe_is_full_width():
    from ita_vc.cli.console import out

    with io.StringIO() as buffer:
        import contextlib

        with contextlib.redirect_stdout(buffer):
            assert out().width == PIPE_WIDTH


def test_a_damaged_snapshot_is_shown_or_refused_without_a_traceback(cli_runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(cli_runs, root, symlinks=True)
    damaged = {
        "run_id": "bt_2020_01_01_001_abc",
        "metrics": [1, 2],
        "env": "python",
        "outputs": {"x": 1},
        "params": None,
        "data_range": "2020",
        "meta": 7,
    }
    (root / "provenance/bt_2020_01_01_001_abc.json").write_text(json.dumps(damaged))
    for args in (("runs", "show", "bt_2020"), ("runs", "diff", "bt_2020", "@latest")):
        result = invoke(*args, cwd=root)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1, 6, 9), result.output


def test_user_text_with_rich_markup_prints_as_typed(cli_runs, tmp_path):
    """A note or reason is user text: "[/]" or "[bold]" in it is printed, never parsed (it
    crashed `runs list` for every later user of the repository, exit 3)."""
    root = tmp_path / "markup"
    shutil.copytree(cli_runs, root, symlinks=True)
    note = '[/] <script>alert("x")</script> é" [bold red]RED fee [x]'
    result = invoke("run", "--force", "--note", note, cwd=root)
    assert result.exit_code == 0, result.output
    for args in (
        ("runs", "list"),
        ("runs", "list", "--sort", "sharpe"),
        ("runs", "show", "@latest"),
    ):
        shown = invoke(*args, cwd=root)
        assert shown.exit_code == 0, (args, shown.output)
        assert note in shown.stdout, args
    bumped = invoke(
        "rule", "deprecate", "example_ma_cross", "v1.0", "--reason", "[/]oops", cwd=root
    )
    assert bumped.exit_code == 0, bumped.output
    assert "[/]oops" in bumped.stdout
    listed = invoke("rule", "list", cwd=root)
    assert listed.exit_code == 0 and "[/]oops" in listed.stdout, listed.output
