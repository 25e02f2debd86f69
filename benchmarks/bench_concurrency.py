"""Stress: 8 processes mixing everything that writes a workspace, for 60 s; nothing may be lost.

In a fresh ``ita-vc init`` workspace with 6 days of 1m candles, a rule and committed params:

* 2 importers - each imports its own disjoint future days of the same dataset, one per
  iteration (``data import --commit --wait 600``: merge, ``dvc add`` and the commit of
  ``data.dvc`` in one locked step);
* 2 runners - ``ita-vc run -S backtest.fee_pct=<new> --wait 600`` (dvc repro, snapshot, commit);
* 2 collectors - ``ita-vc gc --yes --wait 600`` under a policy that deletes candle versions
  after 0 days unless a run of the active rule version uses them (so every import makes the
  previous version collectable, and every run must keep its own);
* 2 store writers - ``save_json`` to a shared artifact and their own, with metadata, in a
  git-ignored kind (``.ita/scratch``: a run must not see them as uncommitted changes).

Then it counts: candle rows expected vs present, runs recorded / refused (exit 10, counted
apart) / failed, snapshots failing ``snapshot verify`` (light, then deep on the last run),
objects missing for HEAD (``dvc status``), store artifacts whose file, sidecar and index row
disagree. It exits non-zero on any loss.

Run: ``.venv/bin/python benchmarks/bench_concurrency.py [--seconds 60] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, print_table

DAY_MS = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01
BASE_DAYS = 6
POLICY = """\
candle_versions: {paths: ["data/candles/**"], retain_days: 0, strategy: delete}
keep_last_runs: 0
max_runs: null
safety_window_days: 0
confirm_above_gb: 100
exceptions: {tags: [], active_rules: true}
"""
_RUN_ID = re.compile(r"bt_\d{4}_\d\d_\d\d_\d{3}_[0-9a-f]{3}")


def _ita(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ita-vc"), *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )


def _day_csv(folder: Path, day: int) -> Path:
    """One day of 1m bars, Binance dump format (no header, 12 columns, ms open times)."""
    import numpy as np

    rng = np.random.default_rng(day)
    n = 1440
    close = np.round(94_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    ts = T0 + day * DAY_MS + np.arange(n, dtype=np.int64) * 60_000
    lines = [
        f"{t},{o},{max(o, c) + 1},{min(o, c) - 1},{c},1.5,{t + 59_999},0,1,0,0,0"
        for t, o, c in zip(ts, open_, close, strict=True)
    ]
    path = folder / f"day-{day:03d}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def setup(root: Path, feeds: Path) -> None:
    def check(proc: subprocess.CompletedProcess[str]) -> None:
        if proc.returncode != 0:
            raise SystemExit(f"setup failed: {proc.args}\n{proc.stdout}{proc.stderr}")

    check(_ita("init", str(root), cwd=root.parent))
    (root / "configs/retention.yaml").write_text(POLICY)
    config = root / "configs/config.yaml"
    config.write_text(
        config.read_text().replace(
            "    retention: .ita/retention",
            "    retention: .ita/retention\n    scratch: .ita/scratch",
        )
    )
    params = (root / "params.yaml").read_text()
    params = params.replace('start: "2025-01-10"', 'start: "2025-01-03"').replace(
        'end: "2025-03-01"', 'end: "2025-01-06"'
    )
    (root / "params.yaml").write_text(params)
    for cmd in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "init"]):
        subprocess.run(cmd, cwd=root, env=ENV, check=True)
    check(
        _ita(
            "data",
            "import",
            *[str(_day_csv(feeds, d)) for d in range(BASE_DAYS)],
            "--market",
            "binance-spot",
            "--symbol",
            "BTCUSDT",
            "--commit",
            cwd=root,
        )
    )
    check(_ita("rule", "new", "example_ma_cross", cwd=root))
    check(_ita("rule", "activate", "example_ma_cross", "v1.0", cwd=root))
    for cmd in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "rule"]):
        subprocess.run(cmd, cwd=root, env=ENV, check=True)


def importer(root: Path, feeds: Path, worker: int, deadline: float, out: mp.Queue) -> None:
    imported = []
    day = BASE_DAYS + worker  # disjoint days: worker 0 even offsets, worker 1 odd
    while time.monotonic() < deadline:
        csv = _day_csv(feeds, day)
        proc = _ita(
            "data",
            "import",
            str(csv),
            "--market",
            "binance-spot",
            "--symbol",
            "BTCUSDT",
            "--commit",
            "--wait",
            "600",
            cwd=root,
        )
        imported.append((day, proc.returncode, proc.stderr[-300:]))
        day += 2
    out.put(("import", worker, imported))


def runner(root: Path, worker: int, deadline: float, out: mp.Queue) -> None:
    results = []
    i = 0
    while time.monotonic() < deadline:
        fee = round(0.05 + 0.001 * (worker * 1000 + i), 4)
        proc = _ita("run", "-S", f"backtest.fee_pct={fee}", "--wait", "600", cwd=root)
        match = _RUN_ID.search(proc.stdout)
        results.append((proc.returncode, match.group(0) if match else None, proc.stderr[-300:]))
        i += 1
    out.put(("run", worker, results))


def collector(root: Path, worker: int, deadline: float, out: mp.Queue) -> None:
    results = []
    while time.monotonic() < deadline:
        proc = _ita("gc", "--yes", "--json", "--wait", "600", cwd=root)
        trashed = json.loads(proc.stdout)["total_files_trashed"] if proc.returncode == 0 else 0
        results.append((proc.returncode, trashed, proc.stderr[-300:]))
    out.put(("gc", worker, results))


def writer(root: Path, worker: int, deadline: float, out: mp.Queue) -> None:
    os.chdir(root)
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    store = PersistentStore(Workspace.at(root))
    count = 0
    while time.monotonic() < deadline:
        for name in ("shared.json", f"own-{worker}.json"):
            store.save_json(
                {"worker": worker, "i": count},
                "scratch",
                name,
                meta={"run_id": f"w{worker}-{count}"},
            )
        count += 1
    out.put(("store", worker, count))


def check_store(root: Path) -> list[str]:
    """Artifacts whose file, index row and metadata disagree (also after an index rebuild)."""
    from ita_vc.store import PersistentStore
    from ita_vc.utils.hashing import hash_file
    from ita_vc.workspace import Workspace

    bad = []
    for rebuilt in (False, True):
        store = PersistentStore(Workspace.at(root))
        if rebuilt:
            store.rebuild()
        for path in sorted((root / ".ita" / "scratch").glob("*.json")):
            if path.name.endswith(".ita-meta.json"):
                continue
            rel = path.relative_to(root).as_posix()
            row = store.index.get(rel)
            content = json.loads(path.read_text())
            wanted = {"run_id": f"w{content['worker']}-{content['i']}"}
            if (
                row is None
                or row.sha256 != hash_file(path)[0]
                or json.loads(row.meta_json) != wanted
            ):
                bad.append(f"{rel}{' (after rebuild)' if rebuilt else ''}")
    return bad


def missing_objects(root: Path) -> list[str]:
    """Objects HEAD's data.dvc and dvc.lock name that the DVC cache does not hold."""
    import yaml

    from ita_vc.vcs.dvc import cache_paths

    wanted = []
    for name in ("data.dvc", "dvc.lock"):
        doc = yaml.safe_load((root / name).read_text()) or {}
        outs = doc.get("outs") or [
            o for body in (doc.get("stages") or {}).values() for o in body.get("outs") or []
        ]
        wanted += [(o["path"], o["md5"]) for o in outs if o.get("md5")]
    paths = cache_paths(root, [md5 for _p, md5 in wanted])
    missing = []
    for path, md5 in wanted:
        if not paths[md5].is_file():
            missing.append(f"{path} ({md5})")
        elif md5.endswith(".dir"):
            entries = json.loads(paths[md5].read_text())
            inner = cache_paths(root, [e["md5"] for e in entries])
            missing += [f"{path}/{e['relpath']}" for e in entries if not inner[e["md5"]].is_file()]
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="20 s instead of 60")
    args = parser.parse_args()
    seconds = 20.0 if args.quick else args.seconds
    base = Path(tempfile.mkdtemp(prefix="ita-vc-bench-concurrency-"))
    root, feeds = base / "ws", base / "feeds"
    root.mkdir()
    feeds.mkdir()
    try:
        started = time.perf_counter()
        setup(root, feeds)
        print(
            f"setup {time.perf_counter() - started:.1f} s; stressing for {seconds:.0f} s "
            "with 8 processes",
            flush=True,
        )
        deadline = time.monotonic() + seconds
        ctx = mp.get_context("spawn")
        queue: mp.Queue = ctx.Queue()
        procs = [
            ctx.Process(target=importer, args=(root, feeds, w, deadline, queue)) for w in (0, 1)
        ]
        procs += [ctx.Process(target=runner, args=(root, w, deadline, queue)) for w in (0, 1)]
        procs += [ctx.Process(target=collector, args=(root, w, deadline, queue)) for w in (0, 1)]
        procs += [ctx.Process(target=writer, args=(root, w, deadline, queue)) for w in (0, 1)]
        for proc in procs:
            proc.start()
        reports = [queue.get(timeout=seconds + 1800) for _ in procs]
        for proc in procs:
            proc.join()
        elapsed = time.perf_counter() - started
        return report(root, reports, elapsed)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(root: Path, reports: list[tuple[str, int, object]], elapsed: float) -> int:
    import pandas as pd

    by_kind: dict[str, list[object]] = {}
    for kind, _worker, payload in reports:
        by_kind.setdefault(kind, []).append(payload)
    imports = [x for batch in by_kind["import"] for x in batch]  # type: ignore[union-attr]
    ok_days = sorted(d for d, code, _e in imports if code == 0)
    failed_imports = [(d, code, e) for d, code, e in imports if code != 0]
    runs = [x for batch in by_kind["run"] for x in batch]  # type: ignore[union-attr]
    recorded = [rid for code, rid, _e in runs if code == 0 and rid]
    refused = [r for r in runs if r[0] == 10]
    failed_runs = [r for r in runs if r[0] not in (0, 10)]
    gcs = [x for batch in by_kind["gc"] for x in batch]  # type: ignore[union-attr]
    writes = sum(int(x) for x in by_kind["store"])  # type: ignore[call-overload]
    candles = pd.read_parquet(root / "data/candles/binance-spot/BTCUSDT/1m.parquet")
    expected = (BASE_DAYS + len(ok_days)) * 1440
    present = len(candles)
    verify = _ita("snapshot", "verify", "--all", cwd=root)
    failing = [line for line in verify.stdout.splitlines() if "FAIL" in line]
    deep = _ita("snapshot", "verify", recorded[-1], "--deep", cwd=root) if recorded else None
    missing = missing_objects(root)
    bad_store = check_store(root)
    print_table(
        "bench_concurrency (8 processes)",
        [
            (
                "candle rows",
                f"expected {expected:,}",
                f"present {present:,}",
                f"{len(ok_days)} day imports ok, {len(failed_imports)} failed",
            ),
            (
                "runs",
                f"recorded {len(recorded)}",
                f"refused {len(refused)}",
                f"failed {len(failed_runs)}",
            ),
            (
                "snapshots",
                f"verifying {len(recorded) - len({f.split()[0] for f in failing})}",
                f"failing {len({f.split()[0] for f in failing})}",
                "deep verify of the last: " + ("pass" if deep and deep.returncode == 0 else "FAIL"),
            ),
            (
                "gc",
                f"{len(gcs)} executions",
                f"trashed {sum(t for _c, t, _e in gcs)} objects",
                f"failed {sum(1 for c, _t, _e in gcs if c != 0)}",
            ),
            ("store", f"{writes} rounds x 2 writes", f"inconsistent {len(bad_store)}", ""),
            ("objects missing for HEAD", str(len(missing)), ", ".join(missing[:3]), ""),
            ("wall time", f"{elapsed:.1f} s", "", ""),
        ],
        ("what", "a", "b", "c"),
    )
    for day, code, err in failed_imports[:3]:
        print(f"  import of day {day} exited {code}: {err.strip()}")
    for code, _rid, err in failed_runs[:3]:
        print(f"  run exited {code}: {err.strip()}")
    lost = (
        present != expected
        or failing
        or (deep is not None and deep.returncode != 0)
        or missing
        or bad_store
        or failed_imports
        or failed_runs
        or any(c != 0 for c, _t, _e in gcs)
    )
    print("RESULT:", "LOSS OR FAILURE" if lost else "nothing lost")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
