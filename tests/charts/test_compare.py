"""`ita-vc runs plot`: real runs overlaid, read from what each run committed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ita_vc.charts.compare import RunSeries, render_runs_html, render_runs_png
from ita_vc.snapshot.plot import load_run_series, plot_runs
from tests.charts.test_grid_charts import (
    assert_not_blank,
    bokeh_document,
    column_values,
    has_colour,
)
from tests.helpers import TmpRepo, invoke, ita_vc_subprocess, make_pipeline_repo, run


@pytest.fixture(scope="module")
def three_runs(_template_repo, tmp_path_factory):
    """A workspace with three recorded runs: the example, more slippage, half the cash."""
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.workspace import Workspace

    root = tmp_path_factory.mktemp("plot") / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root))
    workspace = Workspace.at(repo)
    reports = [
        run_pipeline(workspace, overrides=overrides)
        for overrides in (
            [],
            [("backtest.slippage_pct", 0.2)],
            [("backtest.init_cash", 5000), ("backtest.slippage_pct", 0.0)],
        )
    ]
    repo.run_ids = [r.run_id for r in reports]  # type: ignore[attr-defined]
    repo.snapshots = [r.snapshot for r in reports]  # type: ignore[attr-defined]
    return repo


@pytest.fixture
def in_runs(three_runs, monkeypatch):
    monkeypatch.chdir(three_runs)
    return three_runs


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
def test_series_are_the_runs_own_numbers_after_later_runs(in_runs):
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(in_runs)
    first, _second, third = in_runs.run_ids
    # results/ now holds the third run's outputs; the first still reads as it was recorded
    current = pd.read_parquet(in_runs / "results/backtest/equity.parquet")
    for run_id, snapshot, cash in zip(
        in_runs.run_ids, in_runs.snapshots, (10_000, 10_000, 5_000), strict=True
    ):
        equity = load_run_series(workspace, run_id, "equity")
        returns = load_run_series(workspace, run_id, "returns")
        drawdown = load_run_series(workspace, run_id, "drawdown")
        assert equity.label == f"{run_id} example_ma_cross v1.0 BTCUSDT 1h"
        assert equity.values[0] == pytest.approx(1.0)
        metrics = snapshot["metrics"]
        assert returns.values[-1] == pytest.approx(metrics["Total Return [%]"], abs=1e-9)
        assert drawdown.values.min() == pytest.approx(metrics["Max. Drawdown [%]"], abs=1e-9)
        if run_id == third:
            assert np.allclose(equity.values * cash, current["equity"])
    assert not np.allclose(
        load_run_series(workspace, first, "equity").values * 10_000, current["equity"]
    )
    assert load_run_series(workspace, "@latest~2").run_id == first


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
def test_runs_plot_html_overlays_every_run(in_runs):
    result = invoke("runs", "plot", *in_runs.run_ids)
    assert result.exit_code == 0, result.output
    out = in_runs / "dvc_plots" / "runs_plot.html"
    assert f"wrote {out}" in result.stdout
    html = out.read_bytes()
    doc = bokeh_document(html)
    for run_id in in_runs.run_ids:
        assert f"{run_id} example_ma_cross v1.0 BTCUSDT 1h".encode() in html
    values = column_values(doc, "v")
    assert len(values) == 3 and all(v[0] == pytest.approx(1.0) for v in values)
    from ita_vc.workspace import Workspace

    series = load_run_series(Workspace.at(in_runs), in_runs.run_ids[1])
    assert [float(v) for v in series.values] in values  # 180 bars: nothing decimated
    again = invoke("runs", "plot", *in_runs.run_ids, "--out", "again.html")
    assert again.exit_code == 0 and (in_runs / "again.html").read_bytes() == html


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
def test_runs_plot_png_by_suffix_and_prefix_ids(in_runs, tmp_path):
    target = tmp_path / "dd.png"
    short = [run_id[:-4] for run_id in in_runs.run_ids[:2]]  # unique prefixes
    proc = ita_vc_subprocess(
        "runs",
        "plot",
        *short,
        "@latest",
        "--metric",
        "drawdown",
        "--out",
        str(target),
        cwd=in_runs,
    )
    assert proc.returncode == 0, proc.stderr
    pixels = assert_not_blank(target.read_bytes())
    assert has_colour(pixels, "#1f77b4", 30) and has_colour(pixels, "#ff7f0e", 30)
    assert has_colour(pixels, "#2ca02c", 30)
    from ita_vc.workspace import Workspace

    path = plot_runs(Workspace.at(in_runs), ["@latest"], "returns", tmp_path / "r.png")
    assert (
        path.read_bytes()
        == plot_runs(
            Workspace.at(in_runs), ["@latest"], "returns", tmp_path / "r2.png"
        ).read_bytes()
    )


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
def test_the_default_chart_file_never_makes_the_workspace_dirty(in_runs, tmp_path):
    result = invoke("runs", "plot", "@latest", "@latest~1")
    assert result.exit_code == 0, result.output
    assert (in_runs / "dvc_plots/runs_plot.html").is_file()
    assert "dvc_plots" not in run(["git", "status", "--porcelain"], cwd=in_runs).stdout
    target = tmp_path / "elsewhere.html"
    target.write_text("mine")
    (in_runs / "link.html").symlink_to(target)
    refused = invoke("runs", "plot", "@latest", "--out", "link.html")
    assert refused.exit_code == 2 and "symlink" in refused.stderr
    assert target.read_text() == "mine"


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["nope"], 2, "not a run id: 'nope'"),
        (["@latest", "--out", "results/report/report.html"], 2, "inside results/"),
        (["@latest", "--out", "data/candles/x.png"], 2, "inside data/"),
        (["@latest", "@latest"], 2, "a run is given twice"),
        (["bt_2099_01_01_001_abc"], 1, "no snapshot for run bt_2099_01_01_001_abc"),
        (["@latest~7"], 2, "only 3 run(s)"),
        (["@latest", "--metric", "sharpe"], 2, "use one of equity, drawdown, returns"),
        (["@latest", "--out", "x.pdf"], 2, "must end in .html"),
        ([], 2, "Missing argument"),
    ],
)
def test_runs_plot_refuses_bad_input(in_runs, args, code, says):
    result = invoke("runs", "plot", *args)
    assert result.exit_code == code, result.output
    assert says in result.stderr and "Traceback" not in result.output


@pytest.mark.slow  # the three real `ita-vc run`s of the fixture
def test_a_missing_equity_object_is_named(in_runs):
    first = in_runs.run_ids[0]
    snapshot = json.loads(next((in_runs / "provenance").glob(f"{first}.json")).read_text())
    oid = next(o["md5"] for o in snapshot["outputs"] if o["path"] == "results/backtest")
    cache = in_runs / ".dvc/cache/files/md5"
    entries = json.loads((cache / oid[:2] / oid[2:]).read_text())
    md5 = next(e["md5"] for e in entries if e["relpath"] == "equity.parquet")
    held = cache / md5[:2] / md5[2:]
    moved = in_runs.parent / "equity.object"
    shutil.move(held, moved)
    try:
        result = invoke("runs", "plot", first, "@latest")
    finally:
        shutil.move(moved, held)
    assert result.exit_code == 6, result.output
    assert first in result.stderr and md5 in result.stderr and "equity.parquet" in result.stderr
    assert "Traceback" not in result.output
    assert invoke("runs", "plot", first).exit_code == 0  # back in the cache: plots again


def test_a_million_bars_are_decimated_for_display():
    n = 1_000_000
    t = 1_735_689_600_000 + np.arange(n, dtype=np.int64) * 60_000
    rng = np.random.default_rng(3)
    wave = 1.0 + np.cumsum(rng.normal(0, 1e-4, n))
    wave[123_457] = 3.0  # a spike survives decimation
    series = [
        RunSeries("bt_a", "bt_a s v1.0", t, wave),
        RunSeries("bt_b", "bt_b s v1.0", t, wave * 0.9),
    ]
    doc = bokeh_document(render_runs_html(series, "equity"))
    drawn = column_values(doc, "v")
    assert len(drawn) == 2 and all(len(v) <= 5_000 for v in drawn)
    assert max(drawn[0]) == 3.0 and max(drawn[1]) == pytest.approx(2.7)
    assert_not_blank(render_runs_png(series, "equity"))
