"""Retention benchmarks: planning and execution for 100 commits x 10,000 cached objects, next
to ``dvc gc -A --dry`` on the same repository (one run; medians where repeated).

The repository: ``data/png/`` holds 100 screenshots; each of 100 backdated commits (one every
two days) replaces all of them, so the DVC cache holds 10,000 file objects (+100 directory
objects) and every revision uses 100. The policy deletes PNGs older than 90 days.

Run: ``.venv/bin/python benchmarks/bench_retention.py [--quick]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, median_time, print_table, run_quiet

POLICY = """\
annotated_pngs: {paths: ["data/png/**"], retain_days: 90, strategy: delete}
keep_last_runs: 5
max_runs: 100
safety_window_days: 7
confirm_above_gb: 100
exceptions: {tags: [], active_rules: true}
"""


def build(root: Path, commits: int, files: int) -> None:
    run_quiet(str(BIN / "ita-vc"), "init", str(root))
    (root / "configs/retention.yaml").write_text(POLICY)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2 * commits)
    folder = root / "data/png"
    folder.mkdir(parents=True)
    for c in range(commits):
        for f in range(files):
            (folder / f"shot_{f:03d}.png").write_bytes(b"\x89PNG" + f"{c}:{f}".encode() * 40)
        run_quiet(str(BIN / "dvc"), "add", "-q", "data", cwd=root)
        stamp = int((start + dt.timedelta(days=2 * c)).timestamp())
        env = {**ENV, "GIT_AUTHOR_DATE": f"@{stamp} +0000", "GIT_COMMITTER_DATE": f"@{stamp} +0000"}
        subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
        subprocess.run(
            ["git", "commit", "-q", "--no-verify", "-m", f"c{c}"], cwd=root, env=env, check=True
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    commits, files = (20, 50) if args.quick else (100, 100)
    from ita_vc.retention.apply import compute_plan, execute_plan
    from ita_vc.retention.policy import load_policy
    from ita_vc.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-retention-"))
    try:
        root = base / "ws"
        started = time.perf_counter()
        build(root, commits, files)
        objects = sum(1 for p in (root / ".dvc/cache/files/md5").rglob("*") if p.is_file())
        print(
            f"built {commits} commits, {objects:,} cached objects in "
            f"{time.perf_counter() - started:.0f} s"
        )
        workspace = Workspace.at(root)
        t_plan = median_time(lambda: compute_plan(workspace), 3, warmup=1)
        plan, _facts = compute_plan(workspace)
        doomed = len(plan.by_action("delete"))

        def dvc_gc() -> None:
            subprocess.run(
                [str(BIN / "dvc"), "gc", "-A", "--dry", "-f"],
                cwd=root,
                env=ENV,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        t_dvc = median_time(dvc_gc, 3, warmup=1)
        copy = base / "ws-exec"
        shutil.copytree(root, copy, symlinks=True)
        ws_copy = Workspace.at(copy)
        os.chdir(copy)
        started = time.perf_counter()
        plan2, facts2 = compute_plan(ws_copy)
        planned = time.perf_counter() - started
        started = time.perf_counter()
        report = execute_plan(ws_copy, plan2, load_policy(copy), facts2, yes=True)
        t_exec = time.perf_counter() - started
        assert len(report.trashed) == doomed
        print_table(
            f"Retention on {commits} commits x {objects:,} cached objects",
            [
                (
                    "ita-vc gc --dry-run (plan)",
                    f"{t_plan:.2f} s",
                    f"{t_plan / t_dvc:.2f}x dvc",
                    f"{len(plan.decisions):,} objects decided, {doomed:,} to delete",
                ),
                ("dvc gc -A --dry", f"{t_dvc:.2f} s", "1.00x", "revision walk only, no policy"),
                (
                    "ita-vc gc (plan + soft delete)",
                    f"{planned + t_exec:.2f} s",
                    "",
                    f"{len(report.trashed):,} moved to the trash ({t_exec:.2f} s of moves, "
                    f"{len(report.trashed) / t_exec:,.0f} objects/s)",
                ),
            ],
            ("what", "time", "ratio", "detail"),
        )
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
