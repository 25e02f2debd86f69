"""``ita-vc data ...``: candle import, removal and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Import candles and show what is stored.", no_args_is_help=True)

_WAIT_HELP = (
    "Seconds to wait for another ita-vc command holding the workspace (0: refuse at once, exit 10)."
)
_COMMIT_HELP = (
    "Commit data.dvc (and the .gitignore DVC edited) in the same locked step; "
    "nothing else staged is committed."
)


def _commit_line(committed: str | None, tracked: bool) -> str:
    if committed:
        return f"committed data.dvc: {committed[:10]}"
    if tracked:
        return "tracked with DVC: git add data.dvc .gitignore && git commit (or pass --commit)"
    return ""


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="Candle files (csv, zip, parquet).")],
    market: Annotated[
        str,
        typer.Option(
            help="binance-spot, binance-futures, bybit-spot, "
            "bybit-futures or generic (candles.markets)."
        ),
    ],
    symbol: Annotated[str, typer.Option(help="Instrument, e.g. BTCUSDT.")],
    timeframe: Annotated[
        str | None,
        typer.Option(
            help="Bar size of the files (1m ... 1d); default: inferred from the median spacing "
            "of the bars. A timeframe the spacing contradicts is refused."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, binance, bybit, csv or parquet.")
    ] = "auto",
    on_conflict: Annotated[
        str, typer.Option(help="Same timestamp, other values: error, keep-new or keep-old.")
    ] = "error",
    no_track: Annotated[
        bool, typer.Option("--no-track", help="Do not `dvc add` the data root afterwards.")
    ] = False,
    commit: Annotated[bool, typer.Option("--commit", help=_COMMIT_HELP)] = False,
    wait: Annotated[float, typer.Option(help=_WAIT_HELP)] = 0,
) -> None:
    """Validate and merge candle files into the canonical store, then track data/ with DVC."""
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.candles.validate import format_ts
    from ita_vc.cli.console import out
    from ita_vc.workspace import Workspace

    report = CandleStore(Workspace.discover()).import_files(
        files,
        market=market,
        symbol=symbol,
        timeframe=timeframe,
        fmt=fmt,
        on_conflict=on_conflict,
        track=not no_track,
        commit=commit,
        wait=wait,
    )
    console = out()
    for path, used, rows in report.files:
        console.print(f"read {path}: {rows:,} rows ({used})", markup=False)
    info = report.dataset
    if report.timeframe_inferred:
        console.print(f"timeframe {info.timeframe} (inferred from the spacing of the bars)")
    if report.unchanged:
        console.print(
            f"{info.path}: nothing new ({info.rows:,} rows); nothing written", markup=False
        )
        if report.tracked:
            console.print(
                "the data root did not match its .dvc file (an earlier import was "
                "not tracked): tracked it now with `dvc add`",
                markup=False,
            )
        if report.committed:
            console.print(f"committed the .dvc file ({report.committed[:10]})", markup=False)
        return
    first = format_ts(info.first_ts) if info.first_ts is not None else "-"
    last = format_ts(info.last_ts) if info.last_ts is not None else "-"
    console.print(
        f"{info.path}: {info.rows:,} rows ({report.added:+,}), {first} .. {last}, "
        f"{info.gaps} gap(s), {report.duplicates:,} duplicate(s) dropped"
        + (
            f", {report.conflicts_resolved} conflict(s) resolved ({on_conflict})"
            if report.conflicts_resolved
            else ""
        ),
        markup=False,
    )
    console.print(f"data_hash {info.data_hash}")
    if line := _commit_line(report.committed, report.tracked):
        console.print(line, markup=False)


@app.command("rm")
def rm_command(
    market: Annotated[str, typer.Option(help="Market of the dataset (candles.markets).")],
    symbol: Annotated[str, typer.Option(help="Instrument, e.g. BTCUSDT.")],
    timeframe: Annotated[str, typer.Option(help="Timeframe of the dataset, e.g. 1m or 1d.")],
    no_track: Annotated[
        bool, typer.Option("--no-track", help="Do not `dvc add` the data root afterwards.")
    ] = False,
    commit: Annotated[bool, typer.Option("--commit", help=_COMMIT_HELP)] = False,
    wait: Annotated[float, typer.Option(help=_WAIT_HELP)] = 0,
) -> None:
    """Remove one dataset (its file and index row) and update data.dvc."""
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.cli.console import out
    from ita_vc.workspace import Workspace

    report = CandleStore(Workspace.discover()).remove(
        market, symbol, timeframe, track=not no_track, commit=commit, wait=wait
    )
    info = report.dataset
    what = f" ({info.rows:,} rows, data_hash {info.data_hash})" if info is not None else ""
    console = out()
    console.print(f"removed {report.path}{what}", markup=False)
    if line := _commit_line(report.committed, report.tracked):
        console.print(line, markup=False)
    elif not report.tracked:
        console.print(
            "not tracked: data.dvc still lists the dataset until `dvc add data`", markup=False
        )


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Imported datasets: symbol, timeframe, range, rows, gaps, content hash."""
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.workspace import Workspace

    rows = [d.to_dict() for d in CandleStore(Workspace.discover()).status()]
    if as_json:
        out().print_json(json.dumps(rows))
        return
    columns = [
        Col("instrument", no_wrap=True),
        Col("tf", no_wrap=True),
        Col("rows", 1, justify="right", no_wrap=True),
        Col("first", 2, no_wrap=True),
        Col("last", 2, no_wrap=True),
        Col("gaps", 3, justify="right", no_wrap=True),
        Col("data_hash", 4, no_wrap=True),
    ]
    cells = [
        [
            r["instrument_key"],
            r["timeframe"],
            f"{r['rows']:,}",
            r["first"] or "-",
            r["last"] or "-",
            str(r["gaps"]),
            r["data_hash"][7:19],
        ]
        for r in rows
    ]
    print_table(
        out(),
        columns,
        cells,
        title=f"{len(rows)} candle dataset(s)",
        caption="data_hash: first 12 hex",
    )
