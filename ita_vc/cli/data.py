"""``ita-vc data ...``: candle import and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Import candles and show what is stored.", no_args_is_help=True)


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="Candle files (csv, zip, parquet).")],
    market: Annotated[str, typer.Option(help="binance-spot, binance-futures, bybit-spot, "
                                        "bybit-futures or generic (candles.markets).")],
    symbol: Annotated[str, typer.Option(help="Instrument, e.g. BTCUSDT.")],
    timeframe: Annotated[str, typer.Option(help="Bar size of the files.")] = "1m",
    fmt: Annotated[str, typer.Option("--format", help="auto, binance, bybit, csv or "
                                     "parquet.")] = "auto",
    on_conflict: Annotated[str, typer.Option(help="Same timestamp, other values: error, "
                                             "keep-new or keep-old.")] = "error",
    no_track: Annotated[bool, typer.Option("--no-track", help="Do not `dvc add` the data "
                                           "root afterwards.")] = False,
) -> None:
    """Validate and merge candle files into the canonical store, then track data/ with DVC."""
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.candles.validate import format_ts
    from ita_vc.cli.console import out
    from ita_vc.workspace import Workspace

    report = CandleStore(Workspace.discover()).import_files(
        files, market=market, symbol=symbol, timeframe=timeframe, fmt=fmt,
        on_conflict=on_conflict, track=not no_track,
    )
    console = out()
    for path, used, rows in report.files:
        console.print(f"read {path}: {rows:,} rows ({used})")
    info = report.dataset
    if report.unchanged:
        console.print(f"{info.path}: nothing new ({info.rows:,} rows); nothing written")
        return
    first = format_ts(info.first_ts) if info.first_ts is not None else "-"
    last = format_ts(info.last_ts) if info.last_ts is not None else "-"
    console.print(
        f"{info.path}: {info.rows:,} rows ({report.added:+,}), {first} .. {last}, "
        f"{info.gaps} gap(s), {report.duplicates:,} duplicate(s) dropped"
        + (f", {report.conflicts_resolved} conflict(s) resolved ({on_conflict})"
           if report.conflicts_resolved else "")
    )
    console.print(f"data_hash {info.data_hash}")
    if report.tracked:
        console.print("tracked with DVC: git add data.dvc .gitignore && git commit")


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Imported datasets: symbol, timeframe, range, rows, gaps, content hash."""
    from rich.table import Table

    from ita_vc.candles.dataset import CandleStore
    from ita_vc.cli.console import out
    from ita_vc.workspace import Workspace

    rows = [d.to_dict() for d in CandleStore(Workspace.discover()).status()]
    if as_json:
        out().print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} candle dataset(s)", caption="data_hash: first 12 hex")
    for column in ("instrument", "tf", "rows", "first", "last", "gaps", "data_hash"):
        table.add_column(column, overflow="fold",
                         justify="right" if column in ("rows", "gaps") else "left")
    for r in rows:
        table.add_row(r["instrument_key"], r["timeframe"], f"{r['rows']:,}", r["first"] or "-",
                      r["last"] or "-", str(r["gaps"]), r["data_hash"][7:19])
    out().print(table)
