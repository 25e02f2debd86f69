"""The grid report's charts: heatmap.png, distribution.png and report.html from real grids."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ita_vc.charts.grid import (
    RETURN,
    SHARPE,
    grid_charts,
    grid_view,
    heatmap_cells,
    render_distribution_png,
    render_grid_html,
    render_heatmap_png,
)
from tests.helpers import invoke, ita_vc_subprocess, make_pipeline_repo

# --- checks shared with test_compare.py -------------------------------------------------------


def png_pixels(data: bytes) -> np.ndarray:
    """The PNG's RGB pixels as 0-255 integers (checks it is a PNG first)."""
    import matplotlib.image as mpimg

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    return np.round(pixels * 255).astype(int)


def assert_not_blank(data: bytes) -> np.ndarray:
    """Pixels vary (something is drawn), and they are returned for colour checks."""
    pixels = png_pixels(data)
    assert pixels.std() > 20, "the PNG is (nearly) one colour"
    return pixels


def has_colour(pixels: np.ndarray, hex_colour: str, tolerance: int = 12, count: int = 20) -> bool:
    """At least ``count`` pixels within ``tolerance`` of ``hex_colour`` on every channel."""
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    close = (np.abs(pixels - target) <= tolerance).all(axis=-1)
    return int(close.sum()) >= count


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def bokeh_document(html: bytes) -> dict:
    """Parse the HTML (stdlib parser): nothing fetched from the internet, the embedded Bokeh
    document returned as JSON."""
    text = html.decode("utf-8")
    scan = _Scan()
    scan.feed(text)
    scan.close()
    for tag, attrs in scan.tags:
        if tag == "script":
            assert not (attrs.get("src") or "").startswith("http"), attrs
        if tag == "link":
            assert not (attrs.get("href") or "").startswith("http"), attrs
    assert '<script src="http' not in text and '<link href="http' not in text
    docs = [s for s in scan.scripts if s.strip().startswith("{") and '"roots"' in s]
    assert len(docs) == 1
    (doc,) = json.loads(docs[0]).values()
    return doc


def column_values(doc: dict, name: str) -> list[list]:
    """Every data column ``name`` of the document's ColumnDataSources."""
    found: list[list] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("name") == "ColumnDataSource":
                entries = dict(node["attributes"]["data"]["entries"])
                if name in entries:
                    found.append(entries[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return found


# --- a real grid ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_outcome(_template_repo, tmp_path_factory):
    """The example grid (ma_cross fast 5..20 x slow 30/50/80, SL/TP none/2 x none/4) run
    through the API on a real workspace."""
    import shutil

    from ita_vc.grid import run_grid
    from ita_vc.pipeline.stages import grid_inputs, load_params_file
    from ita_vc.workspace import Workspace
    from tests.helpers import TmpRepo

    root = tmp_path_factory.mktemp("gridcharts") / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root))
    prepared, rule, params, request = grid_inputs(Workspace.at(repo), load_params_file(repo))
    return run_grid(prepared, rule, params, request, workers=1)


def test_the_heatmap_cells_are_the_evaluated_variants(grid_outcome):
    evaluated = grid_outcome.evaluated
    assert len(evaluated) == 12  # 4 fast x 3 slow, every Stage A variant held
    view = grid_view(grid_outcome.topk, evaluated, grid_outcome.summary)
    assert view.mapped == ["ma_cross.fast", "ma_cross.slow"]  # most values first
    by_key = dict(zip(evaluated["variant_key"], evaluated[RETURN], strict=True))
    sharpe = dict(zip(evaluated["variant_key"], evaluated[SHARPE], strict=True))
    for metric, expected in ((RETURN, by_key), (SHARPE, sharpe)):
        cells = heatmap_cells(view, metric)
        assert len(cells) == 12
        for cell in cells.to_dict("records"):
            key = f"ma_cross(fast={cell['x']},slow={cell['y']})|sl=none|tp=none"
            assert cell["variant_key"] == key
            assert cell[metric] == expected[key]
    # the same numbers as the top-K's single backtests, where a plain variant made the top-K
    topk = grid_outcome.topk.set_index("variant_key")
    plain = [k for k in topk.index if k.endswith("|sl=none|tp=none")]
    assert plain
    for key in plain:
        assert topk.loc[key, RETURN] == by_key[key]
    # an SL/TP slice holds exactly the top-K variants of that combination
    cells = heatmap_cells(view, RETURN, ("2", "4"))
    in_topk = {k: v for k, v in topk[RETURN].items() if k.endswith("|sl=2|tp=4")}
    assert dict(zip(cells["variant_key"], cells[RETURN], strict=True)) == in_topk
    assert ("2", "4") in view.slices() and ("none", "none") not in view.slices()


def test_the_pngs_are_drawn(grid_outcome):
    view = grid_view(grid_outcome.topk, grid_outcome.evaluated, grid_outcome.summary)
    heat = assert_not_blank(render_heatmap_png(view))
    # RdYlGn's ends: the worst cell dark red, the best dark green; grey cells outside the top-K
    assert has_colour(heat, "#a50026", 25) and has_colour(heat, "#006837", 25)
    assert has_colour(heat, "#d9d9d9", 3)
    dist = assert_not_blank(render_distribution_png(view))
    assert has_colour(dist, "#d62728", 20, 5)  # the best, marked
    assert has_colour(dist, "#ffbf86", 20)  # the top-K bars (orange at half alpha on white)


def test_the_html_parses_and_holds_the_cells(grid_outcome):
    view = grid_view(grid_outcome.topk, grid_outcome.evaluated, grid_outcome.summary)
    html = render_grid_html(view)
    doc = bokeh_document(html)
    cells = heatmap_cells(view, RETURN)
    returns = column_values(doc, "ret")
    assert [float(v) for v in cells[RETURN]] in returns  # the plain heatmap's cells
    assert sorted(returns[-1]) == sorted(float(v) for v in grid_outcome.topk[RETURN])  # marks
    variants = column_values(doc, "variant")
    assert list(cells["variant_key"]) in variants
    assert b"example_ma_cross" in html and b"ma_cross.fast" in html
    assert html == render_grid_html(view)  # same view, same bytes


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "variant_key": r["key"],
                "params_json": json.dumps(
                    {
                        "indicators": [["x", [[k, v] for k, v in r["params"].items()]]],
                        "sl_pct": r.get("sl"),
                        "tp_pct": r.get("tp"),
                    }
                ),
                RETURN: r["ret"],
                "Max. Drawdown [%]": -1.0,
                SHARPE: r["sharpe"],
                "Num. Trades": 3,
                **({"rank": r["rank"]} if "rank" in r else {}),
            }
            for r in rows
        ]
    )


def test_three_parameters_map_the_two_with_most_values_best_over_the_third():
    rows = []
    for a in (1, 2, 3):
        for b in (10, 20):
            for c in (0.5, 1.5):
                ret = a * 10 + b / 10 + c  # the best over c is c=1.5
                rows.append(
                    {
                        "key": f"x(a={a},b={b},c={c})|sl=none|tp=none",
                        "params": {"a": a, "b": b, "c": c},
                        "ret": ret,
                        "sharpe": -ret,  # the best Sharpe is c=0.5
                    }
                )
    evaluated = _frame(rows)
    summary = {"setup_id": "s", "rule_version": "v1.0", "counts": {"stage_a_variants": 12}}
    view = grid_view(evaluated.head(0), evaluated, summary)
    assert view.mapped == ["x.a", "x.b"]  # 3 values, 2 values, c (2 values, later) left out
    cells = heatmap_cells(view, RETURN)
    assert len(cells) == 6
    best = cells.set_index(["x", "y"])
    assert best.loc[("2", "20"), RETURN] == 2 * 10 + 2 + 1.5
    assert best.loc[("2", "20"), "variant_key"] == "x(a=2,b=20,c=1.5)|sl=none|tp=none"
    sharpe = heatmap_cells(view, SHARPE).set_index(["x", "y"])
    assert sharpe.loc[("2", "20"), "variant_key"] == "x(a=2,b=20,c=0.5)|sl=none|tp=none"
    charts = grid_charts(evaluated.head(0), evaluated, summary)
    assert_not_blank(charts["heatmap.png"])
    assert b"best over x.c" in charts["report.html"]


def test_one_parameter_draws_lines_and_one_combination_a_note():
    rows = [
        {"key": f"x(a={a})|sl=none|tp=none", "params": {"a": a}, "ret": a - 2.0, "sharpe": a}
        for a in (1, 2, 3, 4)
    ]
    evaluated = _frame(rows)
    topk = _frame([{**rows[3], "rank": 1}])
    summary = {"setup_id": "s", "rule_version": "v1.0"}
    view = grid_view(topk, evaluated, summary)
    assert view.mapped == ["x.a"]
    assert_not_blank(render_heatmap_png(view))
    doc = bokeh_document(render_grid_html(view))
    assert [-1.0, 0.0, 1.0, 2.0] in column_values(doc, "y")
    single = _frame(rows[:1])
    charts = grid_charts(single, single, summary)
    assert b"no parameter axis to map" in charts["report.html"]
    assert_not_blank(charts["distribution.png"])


def test_grid_run_writes_the_charts_the_same_bytes_in_two_processes(tmp_repo):
    make_pipeline_repo(tmp_repo)
    names = ("heatmap.png", "distribution.png", "report.html")
    for out in ("g1", "g2"):
        proc = ita_vc_subprocess("grid", "run", "--workers", "1", "--out", out, cwd=tmp_repo)
        assert proc.returncode == 0, proc.stderr
    for name in names:
        assert (tmp_repo / "g1" / name).read_bytes() == (tmp_repo / "g2" / name).read_bytes()
    for name in ("topk.parquet", "trades.parquet"):
        assert (tmp_repo / "g1" / name).read_bytes() == (tmp_repo / "g2" / name).read_bytes()
    # stopped at once, then resumed from the checkpoint: the same charts
    stopped = invoke("grid", "run", "--workers", "1", "--max-seconds", "0", "--out", "g3")
    assert stopped.exit_code == 0 and "PARTIAL" in stopped.stdout
    resumed = invoke("grid", "run", "--workers", "1", "--resume", "--out", "g3")
    assert resumed.exit_code == 0 and "PARTIAL" not in resumed.stdout
    for name in names:
        assert (tmp_repo / "g3" / name).read_bytes() == (tmp_repo / "g1" / name).read_bytes()
    report = (tmp_repo / "g1" / "report.md").read_text()
    assert report.endswith("![heatmap](heatmap.png)\n\n![distribution](distribution.png)\n")
    # through the store (results/grid, what the dvc.yaml stage writes) as well
    result = invoke("grid", "run", "--workers", "1")
    assert result.exit_code == 0, result.output
    for name in names:
        assert (tmp_repo / "results/grid" / name).read_bytes() == (
            Path(tmp_repo / "g1" / name).read_bytes()
        )


@pytest.mark.slow  # a real run of the grid stage and its reproduction in a worktree
def test_a_run_of_the_grid_stage_reproduces_its_charts_bit_exactly(tmp_repo):
    from ita_vc.snapshot.reproduce import reproduce_run
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.workspace import Workspace

    make_pipeline_repo(tmp_repo)
    workspace = Workspace.at(tmp_repo)
    report = run_pipeline(workspace, stages=["report", "grid"])
    for name in ("heatmap.png", "distribution.png", "report.html"):
        assert (tmp_repo / "results/grid" / name).is_file()
    assert reproduce_run(workspace, report.run_id).bit_exact
