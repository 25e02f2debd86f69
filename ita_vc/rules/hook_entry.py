"""``ita-vc-rule-check``: the lean entry point of the pre-commit hook.

The same checks as ``ita-vc rule check`` without the CLI framework (typer costs ~0.1 s to start
a command), so a commit is checked in well under 0.3 s, hostile files included (every YAML
file is read under the limits of :mod:`ita_vc.yaml_read`). Exit codes: 0 ok, 4 rule problems,
5 not a workspace, 8 an invalid config or catalog, 1 other errors.
"""

from __future__ import annotations

import argparse
import sys

from ita_vc.errors import ItaVcError


def main(argv: list[str] | None = None) -> int:
    """Run the rule checks; print problems to stderr; return the exit code."""
    parser = argparse.ArgumentParser(prog="ita-vc-rule-check", description=__doc__)
    parser.add_argument("files", nargs="*", help="check these working-tree files")
    parser.add_argument("--against", metavar="REV", help="check every commit since REV")
    parser.add_argument(
        "--all",
        action="store_true",
        dest="all_files",
        help="check every rule file in the working tree",
    )
    args = parser.parse_args(argv)
    from ita_vc.rules.check import run_rule_check

    try:
        report = run_rule_check(files=args.files, against=args.against, all_files=args.all_files)
    except ItaVcError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    if not report.ok:
        sys.stderr.write(report.describe() + "\n")
        return 4
    sys.stdout.write(f"rule check: {len(report.checked)} file(s) OK\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
