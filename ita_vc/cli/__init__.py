"""The ``ita-vc`` command line: a thin typer layer over the core library.

Each command parses its arguments, calls one core function and renders the result. Every error
passes through :func:`main`, the one error boundary: an :class:`~ita_vc.errors.ItaVcError`
prints its message to stderr and exits with its documented code; anything else is a bug: the
traceback goes to the log file and the exit code is 3 (``--debug`` shows it).
Heavy libraries (dvc, pandas, git) are imported inside the commands that need them, so
``ita-vc --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from ita_vc._version import __version__
from ita_vc.errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, ItaVcError

__all__ = ["app", "main"]

app = typer.Typer(
    name="ita-vc",
    help="Git-native versioning for trading research, on top of git and DVC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ita-vc {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Git-native versioning for trading research, on top of git and DVC."""


def _register() -> None:
    from ita_vc.cli import (
        backtest,
        cache,
        data,
        gc,
        grid,
        hooks,
        index,
        indicators,
        init,
        jobs,
        lineage,
        plot,
        preset,
        rule,
        run,
        store,
        team,
        validate,
    )

    app.command("init")(init.init_command)
    app.add_typer(rule.app, name="rule")
    app.add_typer(data.app, name="data")
    app.add_typer(backtest.app, name="backtest")
    app.add_typer(grid.app, name="grid")
    app.command("validate")(validate.validate_command)
    app.command("run")(run.run_command)
    app.add_typer(run.runs_app, name="runs")
    run.runs_app.command("plot")(plot.plot_command)
    app.add_typer(run.snapshot_app, name="snapshot")
    app.command("reproduce")(run.reproduce_command)
    app.command("gc")(gc.gc_command)
    app.add_typer(gc.trash_app, name="trash")
    app.add_typer(hooks.app, name="hooks")
    app.add_typer(indicators.app, name="indicators")
    app.add_typer(store.app, name="store")
    app.add_typer(index.app, name="index")
    app.command("lineage")(lineage.lineage_command)
    app.add_typer(preset.app, name="preset")
    app.add_typer(cache.app, name="cache")
    app.command("push")(team.push_command)
    app.command("pull")(team.pull_command)
    app.command("clone")(team.clone_command)
    app.add_typer(jobs.app, name="jobs")
    app.command("worker")(jobs.worker_command)


_register()


def _crash_log(exc: BaseException) -> str:
    """Write the traceback of an unexpected error to the workspace log (or a temp file)."""
    import tempfile
    import traceback
    from pathlib import Path

    text = "".join(traceback.format_exception(exc))
    try:
        from ita_vc.workspace import Workspace

        log_file = Workspace.discover().setup_logging()
    except Exception:  # noqa: BLE001 - a crash report must not crash
        log_file = Path(tempfile.gettempdir()) / "ita-vc-crash.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as stream:
            stream.write(text)
    except OSError:
        return "(could not write the traceback)"
    return str(log_file)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe does
    not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``ita-vc`` and ``python -m ita_vc``: the error boundary."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="ita-vc")
    except ItaVcError as exc:
        logging.getLogger("ita_vc").error("%s: %s", type(exc).__name__, exc)  # noqa: TRY400
        if debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # the reader went away (`ita-vc runs list | head -1`): what it read was complete
        _quiet_stdout()
        raise SystemExit(0) from None
    except Exception as exc:
        if debug:
            raise
        where = _crash_log(exc)
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc}\n"
            f"This is a bug in ita-vc; the traceback is in {where} (rerun with --debug to see it)\n"
        )
        raise SystemExit(EXIT_UNEXPECTED) from None
