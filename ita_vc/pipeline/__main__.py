"""``python -m ita_vc.pipeline {prepare,backtest,report,grid,validate}``: the commands of dvc.yaml.

Exit codes: 0, an :class:`ItaVcError`'s code, or 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys

from ita_vc.backtest.run import ENGINE_VERSION, SUPPORTED_ENGINES
from ita_vc.errors import EXIT_INTERRUPTED, ConfigError, ItaVcError
from ita_vc.pipeline import stages
from ita_vc.utils.process import die_with_parent


def check_engine(pinned: str | None) -> None:
    """The stage's ``--engine`` must be one this ita-vc runs exactly; without one (a workspace
    made before engines were pinned) a warning says how to pin it.

    Raises:
        ConfigError: an engine version this ita-vc does not implement.
    """
    if pinned is None:
        print(
            f"warning: dvc.yaml does not pin the engine; this ita-vc runs engine "
            f"{ENGINE_VERSION}. Run `ita-vc init --upgrade --yes` so an engine change shows "
            "in `dvc status`",
            file=sys.stderr,
        )
        return
    if pinned not in SUPPORTED_ENGINES:
        move = (
            f"move the pipeline to engine {ENGINE_VERSION} with `ita-vc init --upgrade --yes`"
            if _older(pinned)
            else f"edit dvc.yaml's `--engine {pinned}` to {ENGINE_VERSION} (a newer pin is "
            "never lowered by `init --upgrade`)"
        )
        raise ConfigError(
            f"dvc.yaml pins engine {pinned}; this ita-vc implements engine(s) "
            f"{', '.join(SUPPORTED_ENGINES)}, so its results would differ. Install an ita-vc "
            f"that implements {pinned}, or {move} (its stages then re-run, as `dvc status` "
            "shows)"
        )


def _older(pinned: str) -> bool:
    """Whether the pin names an engine older than the newest this ita-vc implements."""
    try:
        return tuple(map(int, pinned.split("."))) < tuple(map(int, ENGINE_VERSION.split(".")))
    except ValueError:
        return False


def _validation_line(summary: dict[str, object]) -> str:
    """What ran and its headline numbers, on one line (as `ita-vc validate` prints them)."""
    from ita_vc.validation.verdict import verdict_lines

    lines = [line for line in verdict_lines(summary) if "skipped" not in line]
    return "; ".join(" ".join(line.split()) for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Run one stage; print one line; return the exit code."""
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m ita_vc.pipeline")
    parser.add_argument("stage", choices=["prepare", "backtest", "report", "grid", "validate"])
    parser.add_argument(
        "--engine",
        metavar="VERSION",
        help="the engine version dvc.yaml pins (refused unless supported)",
    )
    args = parser.parse_args(argv)
    try:
        check_engine(args.engine)
        if args.stage == "prepare":
            report = stages.stage_prepare()
            print(f"prepare: {report['bars']} bars in range, {report['warmup_bars']} warm-up")
        elif args.stage == "backtest":
            summary = stages.stage_backtest(engine=args.engine)
            print(
                f"backtest: {summary['setup_id']} {summary['rule_version']}, "
                f"{summary['num_trades']} trades, config {summary['config_hash'][:19]}"
            )
        elif args.stage == "grid":
            summary = stages.stage_grid(engine=args.engine)
            counts = summary["counts"]
            print(
                f"grid: {counts['stage_a_evaluated']} + {counts['stage_b_evaluated']} "
                f"variants, top {counts['top_k']} in {summary['timings']['search_s']} s"
            )
        elif args.stage == "validate":
            print(f"validate: {_validation_line(stages.stage_validate(engine=args.engine))}")
        else:
            print(f"report: {stages.stage_report(engine=args.engine)}")
    except ItaVcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # the grid stage stops before writing; the others may have written some outs
        # (each atomically), which DVC does not record after a non-zero exit
        done = (
            "its outputs were not written"
            if args.stage == "grid"
            else "DVC records none of its outputs"
        )
        print(f"{args.stage}: interrupted; {done}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
