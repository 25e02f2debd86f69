"""Team-remote benchmarks on a real S3 API (moto's standalone server on localhost, IAM auth on):
``ita-vc push``/``pull`` next to plain ``dvc push``/``dvc pull`` of the same objects, and remote
gc planning next to the local plan, all in one run.

a) 10,000 small objects (a DVC-tracked folder of 10,000 files of seeded random bytes,
   256 B - 4 KiB) and b) one 1 GiB object (seeded random bytes): each repeat pushes to a fresh
   prefix of the bucket (empty remote) and pulls into a fresh ``git clone`` (empty cache), dvc
   and ita-vc alternating first; the prefix is emptied afterwards. Goal: ita-vc within 10 % of
   dvc (the transfer is DVC's; ita-vc adds its planning, the git push/fetch and a check).
c) a history of 100 backdated commits over a folder of 10,000 PNG-like files, each commit
   changing 100 of them (~20,000 file objects + 100 ``.dir`` objects, all pushed with
   ``dvc push --all-commits``): ``ita-vc gc --cloud --dry-run`` next to the local
   ``ita-vc gc --dry-run`` (and ``dvc gc -A --cloud --dry``, which applies no policy).

Workspaces are made by ``python -m ita_vc init --hooks`` (this checkout on PYTHONPATH) with a bare
git repository as ``origin``. moto keeps objects in memory and serves them from one Python
process: absolute times say more about moto than about a real object store; the ratios, measured
in the same run against the same server, are the numbers. Machine noise (2 shared cores) is
several percent from one run to the next.

Run: ``.venv/bin/python benchmarks/bench_remote.py [--quick] [--only transfer|gc]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.s3server

from _util import BIN, print_table

from tests.s3server import S3Server, configure_s3_remote, set_s3_credentials

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[1]
REMOTE = "bench"
MiB = 1 << 20
POLICY = """\
annotated_pngs: {paths: ["data/png/**"], retain_days: 90, strategy: delete}
keep_last_runs: 5
max_runs: 100
safety_window_days: 7
confirm_above_gb: 100
exceptions: {tags: [], active_rules: true}
"""
NOT_YET = "not available yet"


# -- environment and commands ----------------------------------------------------------------
def isolate(base: Path) -> None:
    """This process and its children: the checkout on PYTHONPATH, a private HOME and git
    identity, no AWS settings of the machine, DVC's site cache under ``base``."""
    home = base / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Bench\n\temail = bench@example.com\n"
        "[commit]\n\tgpgsign = false\n"
    )
    for key in [k for k in os.environ if k.startswith(("AWS_", "GIT_"))]:
        del os.environ[key]
    os.environ.update(
        {
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(home / ".config/dvc"),
            "DVC_SYSTEM_CONFIG_DIR": str(home / ".config/dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / ".cache/dvc-site"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(REPO),
        }
    )


def sh(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a command; raise with its output when it fails."""
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{[str(a) for a in args]} exited {proc.returncode} in {cwd}\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def dvc(*args: str | Path, cwd: Path) -> None:
    sh(BIN / "dvc", *args, cwd=cwd)


def ita_vc(*args: str | Path, cwd: Path) -> None:
    sh(sys.executable, "-m", "ita_vc", *args, cwd=cwd)


def git(*args: str | Path, cwd: Path) -> None:
    sh("git", *args, cwd=cwd)


def has_command(*words: str) -> bool:
    """True when ``ita-vc WORDS --help`` works in this checkout."""
    proc = subprocess.run(
        [sys.executable, "-m", "ita_vc", *words, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0


def has_option(command: str, option: str) -> bool:
    """True when ``ita-vc COMMAND --help`` lists ``option``."""
    proc = subprocess.run(
        [sys.executable, "-m", "ita_vc", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and option in proc.stdout


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# -- S3 ------------------------------------------------------------------------------------
def count_keys(server: S3Server, bucket: str, prefix: str) -> int:
    paginator = server.client().get_paginator("list_objects_v2")
    return sum(page.get("KeyCount", 0) for page in paginator.paginate(Bucket=bucket, Prefix=prefix))


def empty_prefix(server: S3Server, bucket: str, prefix: str) -> None:
    """Delete every object under ``prefix`` (moto keeps them in memory)."""
    client = server.client()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def point_remote(root: Path, url: str) -> None:
    """This checkout's DVC remote ``bench`` -> ``url`` (in .dvc/config.local only)."""
    dvc("remote", "modify", "--local", REMOTE, "url", url, cwd=root)


# -- workspaces ------------------------------------------------------------------------------
def new_workspace(base: Path, name: str, server: S3Server, bucket: str) -> Path:
    """An ``ita-vc init --hooks`` workspace with a bare ``origin`` and DVC remote ``bench``
    (endpoint committed, keys in config.local), everything committed and pushed to origin."""
    root = base / name
    ita_vc("init", "--hooks", root, cwd=base)
    configure_s3_remote(root, REMOTE, f"s3://{bucket}/{name}-setup", server)
    git("add", "-A", cwd=root)
    git("commit", "-q", "--no-verify", "-m", "ita-vc init + remote", cwd=root)
    bare = base / f"{name}.git"
    git("init", "-q", "--bare", bare, cwd=base)
    git("remote", "add", "origin", bare, cwd=root)
    git("push", "-q", "--no-verify", "origin", "main", cwd=root)
    return root


def commit_all(root: Path, message: str, stamp: int | None = None) -> None:
    env = {}
    if stamp is not None:
        env = {"GIT_AUTHOR_DATE": f"@{stamp} +0000", "GIT_COMMITTER_DATE": f"@{stamp} +0000"}
    sh("git", "add", "-A", cwd=root, env=env)
    sh("git", "commit", "-q", "--no-verify", "-m", message, cwd=root, env=env)


def write_small_files(folder: Path, n: int, seed: int) -> int:
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    sizes = rng.integers(256, 4097, n)
    for i, size in enumerate(sizes):
        (folder / f"obj_{i:05d}.bin").write_bytes(rng.bytes(int(size)))
    return int(sizes.sum())


def write_big_file(path: Path, size: int, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = 64 * MiB
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(rng.bytes(min(chunk, left)))
            left -= chunk


# -- a) b) push / pull -----------------------------------------------------------------------
def transfer_case(
    base: Path,
    server: S3Server,
    bucket: str,
    name: str,
    target: str,
    objects: int,
    repeat: int,
    check: Callable[[Path], None],
) -> dict[str, list[float]]:
    """Time push (fresh prefix) and pull (fresh clone) for dvc and ita-vc, ``repeat`` times."""
    root = base / name
    bare = base / f"{name}.git"
    have_push = has_command("push")
    have_pull = has_command("pull")
    times: dict[str, list[float]] = {
        k: [] for k in ("dvc push", "ita push", "dvc pull", "ita pull")
    }
    for rep in range(repeat):
        tools = ["dvc", "ita"] if rep % 2 == 0 else ["ita", "dvc"]
        for tool in tools:
            if tool == "ita" and not have_push:
                continue
            prefix = f"{name}-{tool}-{rep}"
            url = f"s3://{bucket}/{prefix}"
            point_remote(root, url)
            if tool == "dvc":
                push = timed(lambda: dvc("push", "-q", target, cwd=root))
            else:
                push = timed(lambda: ita_vc("push", "--dvc-remote", REMOTE, cwd=root))
            landed = count_keys(server, bucket, prefix + "/")
            assert landed >= objects, (
                f"{tool} push: {landed} objects under {prefix}, want {objects}"
            )
            times[f"{tool} push"].append(push)
            if tool == "ita" and not have_pull:
                empty_prefix(server, bucket, prefix + "/")
                continue
            clone = base / f"clone-{name}-{tool}-{rep}"
            git("clone", "-q", bare, clone, cwd=base)
            point_remote(clone, url)
            set_s3_credentials(clone, REMOTE, server)
            if tool == "dvc":
                pull = timed(lambda c=clone: dvc("pull", "-q", target, cwd=c))
            else:
                pull = timed(lambda c=clone: ita_vc("pull", "--dvc-remote", REMOTE, cwd=c))
            check(clone)
            times[f"{tool} pull"].append(pull)
            shutil.rmtree(clone)
            empty_prefix(server, bucket, prefix + "/")
    point_remote(root, f"s3://{bucket}/{name}-setup")
    return times


def transfer_rows(label: str, times: dict[str, list[float]], detail: str) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for op in ("push", "pull"):
        base_t = statistics.median(times[f"dvc {op}"])
        rows.append((f"{label}: dvc {op}", f"{base_t:.2f} s", "1.00x", detail))
        ita = times[f"ita {op}"]
        if ita:
            t = statistics.median(ita)
            rows.append((f"{label}: ita-vc {op}", f"{t:.2f} s", f"{t / base_t:.2f}x dvc", detail))
        else:
            rows.append((f"{label}: ita-vc {op}", NOT_YET, "", ""))
    return rows


def bench_transfer(
    base: Path, server: S3Server, n_small: int, big_size: int, repeat: int
) -> list[tuple[str, ...]]:
    bucket = server.bucket("bench-transfer")
    rows: list[tuple[str, ...]] = []

    started = time.perf_counter()
    small = new_workspace(base, "small", server, bucket)
    total = write_small_files(small / "data/small", n_small, seed=21)
    dvc("add", "-q", "data/small", cwd=small)
    commit_all(small, f"{n_small} small objects")
    git("push", "-q", "--no-verify", "origin", "main", cwd=small)
    print(
        f"a) {n_small:,} small objects ({total / MiB:.1f} MiB) tracked in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )

    def small_ok(clone: Path) -> None:
        got = sum(1 for _ in (clone / "data/small").iterdir())
        assert got == n_small, f"pulled {got} of {n_small} files"

    times = transfer_case(
        base, server, bucket, "small", "data/small.dvc", n_small + 1, repeat, small_ok
    )
    rows += transfer_rows(f"{n_small:,} small", times, f"{n_small:,} objects + 1 .dir")

    started = time.perf_counter()
    big = new_workspace(base, "big", server, bucket)
    write_big_file(big / "data/big.bin", big_size, seed=22)
    dvc("add", "-q", "data/big.bin", cwd=big)
    commit_all(big, "one big object")
    git("push", "-q", "--no-verify", "origin", "main", cwd=big)
    print(
        f"b) one {big_size / MiB:,.0f} MiB object tracked in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    head = (big / "data/big.bin").open("rb").read(MiB)

    def big_ok(clone: Path) -> None:
        path = clone / "data/big.bin"
        assert path.stat().st_size == big_size, f"pulled {path.stat().st_size} bytes"
        assert path.open("rb").read(MiB) == head

    times = transfer_case(base, server, bucket, "big", "data/big.bin.dvc", 1, repeat, big_ok)
    label = f"{big_size / MiB:,.0f} MiB object"
    rows += transfer_rows(label, times, f"{big_size / MiB / 1024:.2f} GiB")
    shutil.rmtree(small, ignore_errors=True)
    shutil.rmtree(big, ignore_errors=True)
    return rows


# -- c) remote gc planning -------------------------------------------------------------------
def build_history(base: Path, server: S3Server, commits: int, files: int, changed: int) -> Path:
    bucket = server.bucket("bench-gc")
    root = new_workspace(base, "history", server, bucket)
    point_remote(root, f"s3://{bucket}/store")
    (root / "configs/retention.yaml").write_text(POLICY)
    folder = root / "data/png"
    folder.mkdir(parents=True)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2 * commits)
    for c in range(commits):
        picked = range(files) if c == 0 else range((c - 1) * changed, c * changed)
        for i in picked:
            f = i % files
            (folder / f"shot_{f:05d}.png").write_bytes(b"\x89PNG" + f"{c}:{f}".encode() * 40)
        dvc("add", "-q", "data/png", cwd=root)
        commit_all(root, f"c{c}", int((start + dt.timedelta(days=2 * c)).timestamp()))
    git("push", "-q", "--no-verify", "origin", "main", cwd=root)
    dvc("push", "-q", "--all-commits", "data/png.dvc", cwd=root)
    return root


def bench_gc(
    base: Path, server: S3Server, commits: int, files: int, changed: int, repeat: int
) -> list[tuple[str, ...]]:
    started = time.perf_counter()
    root = build_history(base, server, commits, files, changed)
    remote_objects = count_keys(server, "bench-gc", "store/")
    print(
        f"c) {commits} commits x {files:,} files ({changed} changed per commit), "
        f"{remote_objects:,} objects on the remote, built and pushed in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )

    def median_of(fn: Callable[[], object]) -> float:
        fn()  # warm-up: page cache, dvc's state db
        return statistics.median(timed(fn) for _ in range(repeat))

    t_local = median_of(lambda: ita_vc("gc", "--dry-run", cwd=root))
    rows: list[tuple[str, ...]] = [
        ("ita-vc gc --dry-run (local plan)", f"{t_local:.2f} s", "1.00x", "the local cache")
    ]
    if has_option("gc", "--cloud"):
        t_cloud = median_of(
            lambda: ita_vc("gc", "--cloud", "--dry-run", "--dvc-remote", REMOTE, cwd=root)
        )
        rows.append(
            (
                "ita-vc gc --cloud --dry-run",
                f"{t_cloud:.2f} s",
                f"{t_cloud / t_local:.2f}x local",
                f"{remote_objects:,} remote objects listed and planned",
            )
        )
    else:
        rows.append(("ita-vc gc --cloud --dry-run", NOT_YET, "", ""))
    t_dvc = median_of(lambda: dvc("gc", "-A", "--cloud", "--dry", "-f", cwd=root))
    rows.append(
        (
            "dvc gc -A --cloud --dry",
            f"{t_dvc:.2f} s",
            f"{t_dvc / t_local:.2f}x local",
            "revision walk + remote listing, no policy",
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 objects, 100 MiB, 1 repeat")
    parser.add_argument("--only", choices=("transfer", "gc"), help="run one part only")
    args = parser.parse_args()
    if args.quick:
        n_small, big_size, repeat = 1_000, 100 * MiB, 1
        commits, files, changed = 20, 1_000, 50
    else:
        n_small, big_size, repeat = 10_000, 1024 * MiB, 3
        commits, files, changed = 100, 10_000, 100

    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-remote-"))
    saved = dict(os.environ)
    try:
        isolate(base)
        with S3Server() as server:
            print(f"moto S3 server (IAM auth on) at {server.endpoint}", flush=True)
            if args.only in (None, "transfer"):
                rows = bench_transfer(base, server, n_small, big_size, repeat)
                print_table(
                    f"Push / pull to the local S3 server, median of {repeat} "
                    "(fresh prefix / fresh clone each)",
                    rows,
                    ("what", "time", "ratio", "objects"),
                )
            if args.only in (None, "gc"):
                rows = bench_gc(base, server, commits, files, changed, repeat)
                print_table(
                    f"Remote gc planning, {commits} commits x {files:,} files, median of {repeat}",
                    rows,
                    ("what", "time", "ratio", "detail"),
                )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
