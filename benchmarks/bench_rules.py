"""Rule check (pre-commit hook) speed with 1,000 rule files in the repo and 10 staged.

Times, as fresh processes (median of several): the hook's entry point ``ita-vc-rule-check``
(what ``.git/hooks/pre-commit`` and the pre-commit framework run), the full ``ita-vc rule
check`` CLI, and a ``git commit`` through the installed hook. Target: the hook under 0.3 s.
Then the hook on hostile staged files (a 550-byte billion-laughs rule, 1 MiB of nesting, a
file over the size limit, a bomb in configs/config.yaml): its time, exit code and peak RSS.

Run: ``.venv/bin/python benchmarks/bench_rules.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, median_time, print_table, run_quiet


def make_repo(root: Path, setups: int, versions: int) -> None:
    from ita_vc.rules.validate import compute_params_hash
    from ita_vc.yaml_read import load_yaml_text

    run_quiet(str(BIN / "ita-vc"), "init", str(root))
    for s in range(setups):
        sid = f"setup_{s:03d}"
        folder = root / "rules" / sid
        folder.mkdir(parents=True)
        for v in range(versions):
            body = (
                f'schema_version: 1\nsetup_id: {sid}\nversion: "1.{v}"\nauthor: bench\n'
                f'created: "2025-01-01"\ncomponents: []\nindicators:\n'
                f"  - {{name: ma_cross, params: {{fast: {5 + v}, slow: 50}}}}\n"
                f"rules: {{}}\ntargets: {{tp_pct: {1 + s % 5}, sl_pct: 1}}\n"
                f"direction: long-short\nsizing: {{mode: all_in}}\n"
            )
            digest = compute_params_hash(load_yaml_text(body))
            (folder / f"v1.{v}.yaml").write_text(body + f"params_hash: {digest}\n")
        (folder / "lifecycle.yaml").write_text(
            f"schema_version: 1\nsetup_id: {sid}\nversions:\n  v1.0: {{active: true}}\n"
        )
    run_quiet("git", "add", "-A", cwd=root)
    run_quiet("git", "commit", "-q", "-m", "rules", "--no-verify", cwd=root)
    run_quiet(str(BIN / "ita-vc"), "hooks", "install", "--no-dvc", cwd=root)


def stage_bumps(root: Path, count: int) -> None:
    for s in range(count):
        run_quiet(
            str(BIN / "ita-vc"),
            "rule",
            "bump",
            f"setup_{s:03d}",
            "-S",
            "targets.sl_pct=2",
            cwd=root,
        )
    run_quiet("git", "add", "-A", cwd=root)


BOMB = (
    "\n".join(
        ['lol1: &l1 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(2, 10)]
    )
    + "\n"
)
HOSTILE = {
    "billion laughs (550 B) as a rule": ("rules/hostile/v1.0.yaml", BOMB),
    "1 MiB of '[' as a rule": ("rules/hostile/v1.0.yaml", "[" * (1 << 20)),
    "100k levels of '- ' as a rule": ("rules/hostile/v1.0.yaml", "- " * 100_000 + "x"),
    "1.5 MiB rule file": ("rules/hostile/v1.0.yaml", "a: " + "x" * (3 << 19) + "\n"),
    "billion laughs in config.yaml": ("configs/config.yaml", None),
}


def run_measured(args: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall time, exit code and peak RSS (MiB) of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, proc.returncode, usage.ru_maxrss // 1024


def hostile_rows(root: Path, repeat: int) -> list[tuple[str, ...]]:
    """The hook on each hostile file, staged alone (median time, exit code, peak RSS)."""
    rows = []
    for what, (rel, hostile) in HOSTILE.items():
        path = root / rel
        original = path.read_bytes() if path.exists() else None
        text = (
            hostile
            if hostile is not None
            else (original or b"").decode()
            + "x_bomb:\n"
            + "".join(f"  {line}\n" for line in BOMB.splitlines())
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        run_quiet("git", "add", "--", rel, cwd=root)
        samples = [run_measured([str(BIN / "ita-vc-rule-check")], root) for _ in range(repeat)]
        times = sorted(t for t, _code, _rss in samples)
        codes = {code for _t, code, _rss in samples}
        rows.append(
            (
                what,
                f"{times[len(times) // 2] * 1000:.0f} ms",
                f"exit {'/'.join(map(str, sorted(codes)))}",
                f"{max(rss for _t, _c, rss in samples)} MiB",
            )
        )
        if original is None:
            run_quiet("git", "rm", "-q", "--cached", "--", rel, cwd=root)
            path.unlink()
        else:
            path.write_bytes(original)
            run_quiet("git", "add", "--", rel, cwd=root)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 5 if args.quick else 11
    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-rules-"))
    try:
        root = base / "ws"
        make_repo(root, 100, 10)
        stage_bumps(root, 10)
        files = len(list((root / "rules").rglob("v*.yaml")))
        staged = subprocess.run(
            ["git", "diff", "--cached", "--name-only"],
            cwd=root,
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        hook = median_time(lambda: run_quiet(str(BIN / "ita-vc-rule-check"), cwd=root), repeat)
        cli = median_time(lambda: run_quiet(str(BIN / "ita-vc"), "rule", "check", cwd=root), repeat)

        def commit() -> None:
            run_quiet("git", "commit", "-q", "-m", "bench", cwd=root)
            run_quiet("git", "reset", "-q", "--soft", "HEAD~1", cwd=root)

        commit_t = median_time(commit, repeat)
        no_verify = median_time(
            lambda: (
                run_quiet("git", "commit", "-q", "-m", "bench", "--no-verify", cwd=root),
                run_quiet("git", "reset", "-q", "--soft", "HEAD~1", cwd=root),
            ),
            repeat,
        )
        print(f"repo: {files} rule version files, {len(staged)} staged paths")
        print_table(
            "Rule check on the staged state (fresh processes, median)",
            [
                ("ita-vc-rule-check (the hook)", f"{hook * 1000:.0f} ms", "target < 300 ms"),
                ("ita-vc rule check (CLI)", f"{cli * 1000:.0f} ms", ""),
                (
                    "git commit through the hook",
                    f"{commit_t * 1000:.0f} ms",
                    f"+{(commit_t - no_verify) * 1000:.0f} ms vs --no-verify",
                ),
                ("git commit --no-verify", f"{no_verify * 1000:.0f} ms", ""),
            ],
            ("what", "median", "note"),
        )
        run_quiet("git", "reset", "-q", cwd=root)  # unstage the bumps: one hostile file each
        print_table(
            "The hook on one hostile staged file (fresh processes; target < 300 ms)",
            hostile_rows(root, repeat),
            ("staged file", "median", "exit", "peak RSS"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
