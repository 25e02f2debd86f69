"""Where a backtest's outputs go: the workspace's Persistent Store, or any folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from ita_vc.backtest import report_v1 as v1
from ita_vc.backtest.report import (
    format_value,
    profit_lock_line,
    render_report_md,
)
from ita_vc.charts.run_series import run_series
from ita_vc.errors import PersistentStoreError
from ita_vc.utils.atomic import atomic_write_bytes, atomic_write_with

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from ita_vc.backtest.run import BacktestResult
    from ita_vc.store.artifacts import PersistentStore

__all__ = [
    "DirSink",
    "OutputSink",
    "StoreSink",
    "write_backtest",
    "write_grid",
    "write_grid_report_v1",
    "write_report",
    "write_report_v1",
    "write_validation",
]


class OutputSink(Protocol):
    """Something that saves named tables, JSON documents and bytes atomically."""

    def table(self, df: pd.DataFrame, name: str) -> None: ...

    def json(self, obj: Any, name: str) -> None: ...

    def binary(self, data: bytes, name: str) -> None: ...


class StoreSink:
    """Writes through the Persistent Store (kind + subdir), so outputs are hashed and indexed."""

    def __init__(
        self,
        store: PersistentStore,
        kind: str,
        subdir: str = "",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.store, self.kind, self.subdir, self.meta = store, kind, subdir, meta

    def table(self, df: pd.DataFrame, name: str) -> None:
        self.store.save_dataframe(df, self.kind, name, subdir=self.subdir, meta=self.meta)

    def json(self, obj: Any, name: str) -> None:
        self.store.save_json(obj, self.kind, name, subdir=self.subdir)

    def binary(self, data: bytes, name: str) -> None:
        self.store.save_binary(data, self.kind, name, subdir=self.subdir)


class DirSink:
    """Writes atomically into a plain folder (``ita-vc backtest run --out DIR``).

    The folder is checked when the sink is made (before any work): it must be a folder or
    creatable as one. Every failed write is a :class:`~ita_vc.errors.PersistentStoreError`
    naming the path, never a raw ``OSError``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._check_folder()

    def _check_folder(self) -> None:
        existing = self.folder
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        if existing == self.folder and not self.folder.is_dir():
            raise PersistentStoreError(
                "is not a folder: --out names the folder the outputs are written into",
                path=str(self.folder),
            )
        if not existing.is_dir():
            raise PersistentStoreError(
                f"cannot create the output folder: {existing} is not a folder",
                path=str(self.folder),
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PersistentStoreError(
                f"cannot write the output folder: {existing} is not writable", path=str(self.folder)
            )

    def _write(self, name: str, write: Any) -> None:
        target = self.folder / name
        try:
            write(target)
        except OSError as exc:
            raise PersistentStoreError(
                f"write failed: {exc.strerror or exc}", path=str(target)
            ) from exc

    def table(self, df: pd.DataFrame, name: str) -> None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        self._write(
            name,
            lambda target: atomic_write_with(
                target, lambda tmp: pq.write_table(table, tmp, compression="zstd")
            ),
        )

    def json(self, obj: Any, name: str) -> None:
        text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        self._write(name, lambda target: atomic_write_bytes(target, (text + "\n").encode()))

    def binary(self, data: bytes, name: str) -> None:
        self._write(name, lambda target: atomic_write_bytes(target, data))


def write_backtest(result: BacktestResult, sink: OutputSink, metrics_sink: OutputSink) -> None:
    """trades/fills/equity/drawdown parquet + summary.json to ``sink``; metrics.json to
    ``metrics_sink``."""
    sink.table(result.trades, "trades.parquet")
    sink.table(result.fills, "fills.parquet")
    sink.table(result.equity, "equity.parquet")
    sink.table(result.drawdown, "drawdown.parquet")
    sink.json(result.summary, "summary.json")
    metrics_sink.json(result.metrics, "metrics.json")


def write_report(
    summary: dict[str, Any],
    metrics: dict[str, Any],
    equity: pd.DataFrame,
    drawdown: pd.DataFrame,
    sink: OutputSink,
    *,
    trades: pd.DataFrame,
    candles: pd.DataFrame,
) -> None:
    """report.md, price.png (the close with every trade's entry and exit), equity.png (with
    the buy-and-hold benchmark), drawdown.png and report.html (interactive, self-contained).

    ``candles`` are the prepared candles of the run (warm-up bars may be among them: the
    charts take the bars of ``equity``).
    """
    # lazy: matplotlib and Bokeh cost about a second; only a report pays it, not every stage
    from ita_vc.charts import run_html, run_png

    init_cash = summary.get("init_cash")
    if init_cash is None:  # a summary without it: hold from the first equity value
        init_cash = float(equity["equity"].iloc[0]) if len(equity) else 1.0
    series = run_series(equity, drawdown, trades, candles, float(init_cash))
    title = f"{summary.get('setup_id')} {summary.get('rule_version')} {summary.get('symbol')}"
    lock = profit_lock_line(equity)
    report = render_report_md(summary, metrics, [lock] if lock else [])
    sink.binary(report.encode("utf-8"), "report.md")
    sink.binary(run_png.render_price_png(series, f"Price and trades: {title}"), "price.png")
    sink.binary(run_png.render_equity_png(series, f"Equity: {title}"), "equity.png")
    sink.binary(
        run_png.render_chart_png(drawdown, "drawdown", f"Drawdown: {title}", percent=True),
        "drawdown.png",
    )
    sink.binary(run_html.render_run_html(series, summary, metrics), "report.html")


_GRID_COLUMNS = ("Total Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "Num. Trades")
"""The metrics of the grid report's table, in its column order."""


def write_grid(
    outcome: Any, sink: OutputSink, *, timings: bool = True, engine: str | None = None
) -> None:
    """topk.parquet, trades.parquet (best ``top_trades_n``), report.md, summary.json and the
    charts (heatmap.png, distribution.png, report.html: :mod:`ita_vc.charts.grid`); under a
    workspace pinned to ``engine`` 1.0, engine 1.0's outputs (:func:`write_grid_report_v1`).

    ``timings=False`` (the dvc.yaml stage) leaves wall-clock timings out of the files, so the
    outputs stay bit-for-bit reproducible.
    """
    if engine == "1.0":
        write_grid_report_v1(outcome, sink, timings=timings)
        return
    charts = ["", "![heatmap](heatmap.png)", "", "![distribution](distribution.png)"]
    s = _write_grid_files(outcome, sink, timings, cell=format_value, tail=charts)
    from ita_vc.charts.grid import grid_charts  # lazy: Bokeh and matplotlib

    for name, data in grid_charts(outcome.topk, outcome.evaluated, s).items():
        sink.binary(data, name)


def write_report_v1(
    summary: dict[str, Any],
    metrics: dict[str, Any],
    equity: pd.DataFrame,
    drawdown: pd.DataFrame,
    sink: OutputSink,
) -> None:
    """Engine 1.0's report.md, equity.png and drawdown.png (frozen:
    :mod:`ita_vc.backtest.report_v1`)."""
    sink.binary(v1.render_report_md(summary, metrics).encode("utf-8"), "report.md")
    title = f"{summary.get('setup_id')} {summary.get('rule_version')} {summary.get('symbol')}"
    sink.binary(v1.render_chart_png(equity, "equity", f"Equity: {title}"), "equity.png")
    sink.binary(
        v1.render_chart_png(drawdown, "drawdown", f"Drawdown: {title}", percent=True),
        "drawdown.png",
    )


def write_grid_report_v1(outcome: Any, sink: OutputSink, *, timings: bool = True) -> None:
    """Engine 1.0's grid outputs: topk.parquet, trades.parquet (best ``top_trades_n``),
    report.md and summary.json (frozen: :mod:`ita_vc.backtest.report_v1`).

    ``timings=False`` (the dvc.yaml stage) leaves wall-clock timings out of the files, so the
    outputs stay bit-for-bit reproducible.
    """
    _write_grid_files(outcome, sink, timings, cell=_cell_v1, tail=[])


def _cell_v1(value: object, name: str) -> str:
    """A grid report cell as engine 1.0 wrote it: counts as they are, the rest raw."""
    return str(value) if name == "Num. Trades" else v1.format_value(value)


def _write_grid_files(
    outcome: Any,
    sink: OutputSink,
    timings: bool,
    *,
    cell: Callable[[object, str], str],
    tail: list[str],
) -> dict[str, Any]:
    """topk.parquet, trades.parquet, report.md (its table cells by ``cell(value, metric)``,
    ``tail`` lines at the end) and summary.json of both engines; returns the summary written."""
    sink.table(outcome.topk, "topk.parquet")
    sink.table(outcome.trades, "trades.parquet")
    s = dict(outcome.summary)
    if not timings:
        s["timings"] = None
    lines = [
        f"# Grid: {s['setup_id']} {s['rule_version']}" + (" (PARTIAL)" if outcome.partial else ""),
        "",
        f"- variants: Stage A {s['counts']['stage_a_evaluated']:,} of "
        f"{s['counts']['stage_a_variants']:,}, Stage B {s['counts']['stage_b_evaluated']:,}, "
        f"pruned {s['counts']['pruned']:,}; top {s['counts']['top_k']}",
        *(
            [f"- axes: params.yaml names none, so the grid swept {s['default_axes']}"]
            if s.get("default_axes")
            else []
        ),
        f"- grid_request_hash `{s['grid_request_hash']}`, engine_params_hash "
        f"`{s['engine_params_hash']}`, data_hash `{s['data_hash']}`",
        f"- search {s['timings']['search_s']} s"
        if s["timings"]
        else "- timings: not recorded in pipeline outputs "
        "(they would break bit-exact reproduction)",
        "",
        "| rank | variant | " + " | ".join(_GRID_COLUMNS) + " |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in outcome.topk.head(50).to_dict("records"):
        key = str(row["variant_key"]).replace("|", "\\|")  # a table cell
        cells = " | ".join(cell(row[name], name) for name in _GRID_COLUMNS)
        lines.append(f"| {row['rank']} | `{key}` | {cells} |")
    if len(outcome.topk):
        best = outcome.topk.iloc[0]
        lines += ["", f"## Best: `{best['variant_key']}`", "", best["report_table_md"]]
    lines += tail
    sink.binary(("\n".join(lines) + "\n").encode("utf-8"), "report.md")
    sink.json(s, "summary.json")
    return s


def write_validation(outcome: Any, sink: OutputSink) -> list[str]:
    """``validation_summary.json``, the charts of the tests that ran
    (:func:`ita_vc.charts.validation.validation_charts`; the others a placeholder saying why,
    so no earlier validation's chart stays beside this one) and ``report.md``; returns the
    file names written. Same outcome, same bytes."""
    from ita_vc.charts.validation import (  # lazy: matplotlib
        CHART_FILES,
        placeholder_png,
        validation_charts,
    )
    from ita_vc.validation.report import render_validation_md

    charts = validation_charts(outcome)
    sink.json(outcome.summary, "validation_summary.json")
    for name in CHART_FILES:
        sink.binary(charts[name] if name in charts else placeholder_png(name, outcome), name)
    sink.binary(render_validation_md(outcome, list(charts)).encode("utf-8"), "report.md")
    return ["validation_summary.json", *CHART_FILES, "report.md"]
