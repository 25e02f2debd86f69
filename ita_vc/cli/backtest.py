"""``ita-vc backtest ...``: the backtest core without DVC."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

app = typer.Typer(help="Run the backtest core directly (no DVC).", no_args_is_help=True)


@app.command("run")
def run_command(
    candles: Annotated[
        Path,
        typer.Option(
            help="Candle file: canonical parquet or any format `ita-vc data import` reads."
        ),
    ],
    rule: Annotated[Path, typer.Option(help="Rule YAML file (anywhere).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    params: Annotated[Path | None, typer.Option(help="params.yaml-shaped file.")] = None,
) -> None:
    """Backtest RULE on CANDLES; write trades, fills, equity, drawdown, metrics, summary,
    report.md and charts to OUT."""
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import run_backtest
    from ita_vc.candles.importers import read_candle_file
    from ita_vc.catalog import load_catalog
    from ita_vc.cli.console import out as console
    from ita_vc.errors import DataValidationError
    from ita_vc.pipeline.outputs import DirSink, write_backtest, write_report
    from ita_vc.snapshot.records import recorded_run
    from ita_vc.yaml_read import YamlError, load_yaml_document, read_text_file

    sink = DirSink(out)  # refuses an --out that is a file or cannot be created, before any work
    run_params = parse_params({})
    if params is not None:  # every problem named with this file's name and line
        try:
            doc = load_yaml_document(
                read_text_file(params, max_bytes=1 << 20), str(params), allow_aliases=True
            )
        except YamlError as exc:
            raise DataValidationError(str(exc)) from exc
        run_params = parse_params(doc.data, index=doc.index, source=str(params))
    workspace = _workspace_or_none()
    with contextlib.ExitStack() as stack:
        rec = (
            stack.enter_context(recorded_run(workspace, "backtest"))
            if workspace is not None
            else None
        )
        frame = read_candle_file(candles, validate=True)
        catalog = load_catalog(workspace.root) if workspace is not None else None
        result = run_backtest(frame, rule, run_params, catalog=catalog)
        write_backtest(result, sink, sink)
        write_report(
            result.summary,
            result.metrics,
            result.equity,
            result.drawdown,
            sink,
            trades=result.trades,
            candles=frame if result.candles_used is None else result.candles_used,
        )
        if rec is not None:
            rec.summary(result.summary)
            rec.finish([out.resolve()], result.metrics)
    from ita_vc.backtest.format import format_metric

    m = result.metrics
    shown = {
        k: format_metric(k, m.get(k))
        for k in ("Num. Trades", "Total Return [%]", "Max. Drawdown [%]", "Sharpe Ratio")
    }
    console().print(
        f"{result.summary['setup_id']} {result.summary['rule_version']}: "
        f"{shown['Num. Trades']} trades, Total Return {shown['Total Return [%]']} %, "
        f"Max DD {shown['Max. Drawdown [%]']} %, Sharpe {shown['Sharpe Ratio']} -> {out}",
        markup=False,
    )


def _workspace_or_none() -> Workspace | None:
    """The workspace the command runs in (its catalog and run log), None outside one (the
    embedded catalog applies and nothing is recorded)."""
    from ita_vc.errors import NotInitializedError
    from ita_vc.workspace import Workspace

    try:
        return Workspace.discover()
    except NotInitializedError:
        return None
