"""Job queue benchmark (issue #18, docs/jobs.md): a grid run as a job vs in the foreground,
and claim latency (submit -> running), with the SQLite and the PostgreSQL job store.

The workspace is built as a user builds one: ``ita-vc init``, synthetic 1m candles imported
(``CandleStore.import_files``), the example rule, ``params.yaml`` with a grid of about 10,000
variants (Stage A: ma_cross 40 fast x 100 slow windows; Stage B: the 500 best x 4 SL x 3 TP;
``--quick``: about 1,000) and ``validation.overfitting: null`` (the grid stage then runs only
the grid), all committed.

1. Overhead. Foreground: the grid stage's command as ``dvc repro grid`` runs it
   (``python -m ita_vc.pipeline grid --engine X`` in the workspace), wall time. Job: the job
   submitted beforehand (``ita-vc jobs submit --json``), the wall time of ``ita-vc worker
   --once`` (claim, worktree at the job's commit, candles from the DVC cache, the same stage
   code, outputs stored in the job store); the job must end ``succeeded`` with output files
   equal to the foreground's ``results/grid`` byte for byte. The worker runs with ``--workers``
   = the CPU count, the foreground's pool size (also ``ita-vc worker``'s default). Each number
   is the median of ``--repeat`` fresh processes, the order alternating. The foreground's
   feature cache is warm after its first run, and a job uses the workspace's cache too (its
   worktree's stage is pointed at it); a foreground run with the cache cleared (``cold``) is
   timed as well.
2. Claim latency. An idle ``ita-vc worker`` in the background; N times a job is submitted
   through the Python API (``freeze_request`` + ``store.submit``, no CLI start-up counted) and
   the store polled every 10 ms until the job is ``running``: latency = submit returned ->
   running seen. Each job is then cancelled (its worker stops at the next batch boundary;
   ``cancel->ended`` is that time) and the next one submitted at an evenly spread, shuffled
   phase of the worker's poll (the idle worker looks for a job right after one ends), so a
   few submissions sample the wait without bias. Bounded by ``claim_poll_seconds`` (1 s by
   default: a median near poll/2); measured again with 0.1 s (configs/config.yaml edited and
   committed) for the floor.

The machine of the reference numbers has 2 shared, noisy cores: quote the ratios.

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--quick] [--repeat N]
[--only overhead|latency] [--backend sqlite|postgresql|both]``
(PostgreSQL: a server on ``$ITA_VC_BENCH_PG``, default
``postgresql://ita_vc:ita_vc@127.0.0.1:54329/postgres`` - ``scripts/postgres.sh start``; a fresh
database per run, dropped at the end.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BIN, ENV, print_table

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("ITA_VC_BENCH_PG", "postgresql://ita_vc:ita_vc@127.0.0.1:54329/postgres")
T0 = 1_735_689_600_000  # 2025-01-01

# (days of 1m candles, backtest timeframe, fast, slow, preselect)
FULL = (120, "5m", {"min": 2, "max": 41, "step": 1}, {"min": 50, "max": 149, "step": 1}, 500)
QUICK = (60, "5m", {"min": 2, "max": 21, "step": 1}, {"min": 50, "max": 69, "step": 1}, 50)
TARGETS = "{sl_pct: [null, 1.0, 2.0, 3.0], tp_pct: [null, 2.0, 4.0]}"


def _env(url: str | None = None) -> dict[str, str]:
    env = {**ENV, "PYTHONPATH": str(REPO), "PATH": f"{BIN}{os.pathsep}{ENV.get('PATH', '')}"}
    env.pop("ITA_VC_JOBS_URL", None)
    if url:
        env["ITA_VC_JOBS_URL"] = url
    return env


def _run(args: list[str], cwd: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=_env(url), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {args}\n{proc.stdout}{proc.stderr}")
    return proc


def _ita(*args: str, cwd: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run([str(BIN / "ita-vc"), *args], cwd, url)


def _git_commit(root: Path, message: str) -> None:
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", message], root)


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise SystemExit(f"params/config template changed: {old!r} not found")
    return text.replace(old, new)


# -- the workspace ---------------------------------------------------------------------------


def build_workspace(root: Path, quick: bool) -> str:
    """``ita-vc init``, candles, the rule, the grid params, committed; the pinned engine."""
    days, timeframe, fast, slow, preselect = QUICK if quick else FULL
    _ita("init", str(root), cwd=root.parent)
    os.environ.update({"DVC_NO_ANALYTICS": "1"})
    from ita_vc.candles import CandleStore
    from ita_vc.candles.sample import SampleSpec, generate_candles
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(root)
    spec = SampleSpec("binance-spot", "BTCUSDT", T0, days, 94_000.0, 0.55, 0.01, 12.0, 7)
    export = root.parent / "candles.parquet"
    generate_candles(spec).drop(columns="gap_flag").to_parquet(export)
    CandleStore(workspace).import_files([export], market="binance-spot", symbol="BTCUSDT")
    RuleRegistry(workspace).new("example_ma_cross", author="bench")
    params = (root / "params.yaml").read_text()
    end = time.strftime("%Y-%m-%d", time.gmtime(T0 / 1000 + days * 86_400))
    for old, new in (
        ('start: "2025-01-10"', 'start: "2025-01-01"'),
        ('end: "2025-03-01"', f'end: "{end}"'),
        ("timeframe: 1h ", f"timeframe: {timeframe} "),
        (
            "params: {fast: {min: 5, max: 20, step: 5}, slow: [30, 50, 80]}",
            f"params: {{fast: {json.dumps(fast)}, slow: {json.dumps(slow)}}}",
        ),
        ("targets: {sl_pct: [null, 2.0], tp_pct: [null, 4.0]}", f"targets: {TARGETS}"),
        ("preselect: 20000", f"preselect: {preselect}"),
        ("overfitting: {partitions: 8, max_variants: 20000}", "overfitting: null"),
    ):
        params = _replace(params, old, new)
    (root / "params.yaml").write_text(params)
    _git_commit(root, "bench: candles, rule, grid params")
    found = re.search(r"pipeline grid --engine (\S+)", (root / "dvc.yaml").read_text())
    if found is None:
        raise SystemExit("dvc.yaml: the grid stage pins no engine")
    return found.group(1)


def set_claim_poll(root: Path, seconds: float) -> None:
    config = root / "configs" / "config.yaml"
    before = config.read_text()
    text = re.sub(r"claim_poll_seconds: [0-9.]+", f"claim_poll_seconds: {seconds:g}", before)
    if "claim_poll_seconds" not in text:
        raise SystemExit(f"{config}: no jobs.claim_poll_seconds to edit")
    if text == before:
        return
    config.write_text(text)
    _run(["git", "add", "-A"], root)
    if not _run(["git", "status", "--porcelain"], root).stdout.strip():
        line = next(x for x in text.splitlines() if "claim_poll_seconds" in x)
        raise SystemExit(f"{config}: the edit ({line.strip()}) left nothing to commit")
    _run(["git", "commit", "-q", "-m", f"bench: claim_poll_seconds {seconds:g}"], root)


def grid_files(root: Path) -> dict[str, bytes]:
    folder = root / "results" / "grid"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- PostgreSQL ------------------------------------------------------------------------------


def create_database() -> str:
    """A fresh database on the benchmark server; its URL."""
    import psycopg

    name = f"ita_bench_jobs_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- 1. overhead -----------------------------------------------------------------------------


def foreground(root: Path, engine: str, *, cold: bool) -> float:
    """Wall time of the grid stage's command (``dvc repro grid``'s), fresh process."""
    import shutil

    shutil.rmtree(root / "results" / "grid", ignore_errors=True)
    if cold:
        shutil.rmtree(root / ".ita" / "cache", ignore_errors=True)
    started = time.perf_counter()
    _run(["python", "-m", "ita_vc.pipeline", "grid", "--engine", engine], root)
    return time.perf_counter() - started


def job(root: Path, url: str | None, reference: dict[str, bytes]) -> dict:
    """Submit a grid job (CLI), then time ``ita-vc worker --once``; checks and inner times."""
    from ita_vc.jobs.worker import open_store
    from ita_vc.workspace import Workspace

    submitted = json.loads(_ita("jobs", "submit", "--json", cwd=root, url=url).stdout)
    job_id = int(submitted["id"])
    started = time.perf_counter()
    proc = _ita("worker", "--once", f"--workers={os.cpu_count() or 1}", cwd=root, url=url)
    wall = time.perf_counter() - started
    inner = re.search(r"succeeded in ([0-9.]+) s", proc.stderr)
    old = os.environ.pop("ITA_VC_JOBS_URL", None)
    if url:
        os.environ["ITA_VC_JOBS_URL"] = url
    try:
        store = open_store(Workspace.at(root))
        try:
            row = store.get(job_id)
            files = store.files(job_id)
            events = store.events(job_id)
        finally:
            store.close()
    finally:
        os.environ.pop("ITA_VC_JOBS_URL", None)
        if old is not None:
            os.environ["ITA_VC_JOBS_URL"] = old
    if row.state != "succeeded":
        raise SystemExit(f"job {job_id} ended {row.state}: {row.last_error}\n{proc.stderr}")
    result = row.result or {}
    claimed = next((at for at, _a, _l, m in events if m.startswith("claimed")), row.started_at)
    return {
        "seconds": wall,
        "run_claimed_s": float(inner.group(1)) if inner else float("nan"),
        "db_run_s": ((row.finished_at or 0) - (row.started_at or 0)) / 1000,
        "claimed_at": claimed,
        "equal": files == reference,
        "names": sorted(files),
        "counts": (result.get("summary") or {}).get("counts"),
        "bytes": result.get("bytes"),
    }


def overhead(root: Path, engine: str, backends: list[tuple[str, str | None]], repeat: int):
    foreground(root, engine, cold=False)  # warm-up: numba caches, the feature cache, page cache
    reference = grid_files(root)
    fg: dict[str, list[float]] = {"warm": [], "cold": []}
    jobs: dict[str, list[dict]] = {name: [] for name, _url in backends}
    for i in range(repeat):
        order = ["warm", "cold", *jobs] if i % 2 == 0 else [*reversed(jobs), "cold", "warm"]
        for what in order:
            if what in fg:
                fg[what].append(foreground(root, engine, cold=what == "cold"))
                if grid_files(root) != reference:
                    raise SystemExit("the foreground grid outputs changed between runs")
            else:
                jobs[what].append(job(root, dict(backends)[what], reference))
    return reference, fg, jobs


def breakdown_case(workers: int, shared_cache: bool) -> dict[str, float]:
    """In this process (cwd: the workspace): submit a grid job and run it with a ``Worker``
    whose steps are timed; seconds by step. ``shared_cache``: a what-if - the job's stage
    uses the workspace's feature cache instead of its worktree's (empty) one."""
    import collections
    import contextlib

    import ita_vc.jobs.store as store_module
    import ita_vc.jobs.worker as worker_module
    import ita_vc.pipeline.stages as stages_module
    from ita_vc.jobs.request import freeze_request
    from ita_vc.workspace import Workspace

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(owner: object, name: str, label: str) -> None:
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(owner, name, wrapper)

    for name, label in (
        ("ensure_commit", "worktree add"),
        ("_link_candles", "candles copy + sha256"),
        ("_collect", "outputs read"),
    ):
        timed(worker_module, name, label)
    for name, label in (
        ("grid_inputs", "stage: candles + inputs"),
        ("run_grid", "stage: search"),
        ("write_grid", "stage: outputs written"),
    ):
        timed(stages_module, name, label)
    for name, label in (
        ("claim", "store: claim"),
        ("report", "store: progress reports"),
        ("succeed", "store: result + files"),
    ):
        timed(store_module.JobStore, name, label)
    real_tree = worker_module._worktree

    @contextlib.contextmanager
    def tree(*args):
        started = time.perf_counter()
        manager = real_tree(*args)
        path = manager.__enter__()
        spent["worktree add"] += time.perf_counter() - started
        try:
            yield path
        finally:
            started = time.perf_counter()
            manager.__exit__(None, None, None)
            spent["worktree remove"] += time.perf_counter() - started

    worker_module._worktree = tree
    workspace = Workspace.at(Path.cwd())
    if shared_cache:
        real_settings = stages_module.cache_settings
        stages_module.cache_settings = lambda _root, **kw: real_settings(workspace.root, **kw)
    store = worker_module.open_store(workspace)
    frozen = freeze_request(workspace, "grid")
    store.submit(frozen.kind, frozen.body, frozen.request_hash)
    store.close()
    started = time.perf_counter()
    outcome = worker_module.Worker(workspace, options={"workers": workers}).run(once=True)
    total = time.perf_counter() - started
    spent["other (imports, heartbeat join, ...)"] = total - sum(spent.values())
    spent["total (Worker.run)"] = total
    if [o.state for o in outcome] != ["succeeded"]:
        raise SystemExit(f"breakdown job: {outcome}")
    return dict(spent)


def breakdown(root: Path, url: str | None, shared_cache: bool = False) -> dict[str, float]:
    """The worker's fixed start-up (``worker --once``, empty queue) and the timed steps of one
    job (:func:`breakdown_case`, a fresh process)."""
    started = time.perf_counter()
    _ita("worker", "--once", cwd=root, url=url)
    startup = time.perf_counter() - started
    args = [sys.executable, __file__, "--case", "breakdown", "--workers", str(os.cpu_count() or 1)]
    proc = _run([*args, *(["--shared-cache"] if shared_cache else [])], root, url)
    steps: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"worker start + exit (empty queue)": startup, **steps}


# -- 2. claim latency ------------------------------------------------------------------------


def _poll(store, job_id: int, states: set[str], limit: float = 600.0) -> float:
    """Poll every 10 ms until the job is in ``states``; the time it was first seen so."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if store.get(job_id).state in states:
            return time.perf_counter()
        time.sleep(0.01)
    raise SystemExit(f"job {job_id}: not {states} after {limit:.0f} s")


def latency(root: Path, url: str | None, n: int, poll: float) -> dict:
    from ita_vc.jobs.model import FINAL_STATES
    from ita_vc.jobs.request import freeze_request
    from ita_vc.jobs.worker import open_store
    from ita_vc.workspace import Workspace

    set_claim_poll(root, poll)
    phases = [(i + 0.5) / n for i in range(n)]  # stratified: unbiased with few submissions
    random.Random(18).shuffle(phases)
    for key in ("ITA_VC_JOBS_URL",):
        os.environ.pop(key, None)
    if url:
        os.environ["ITA_VC_JOBS_URL"] = url
    worker = subprocess.Popen(
        [str(BIN / "ita-vc"), "worker", "--workers=1"],
        cwd=root,
        env=_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workspace = Workspace.at(root)
    store = open_store(workspace)
    claims: list[float] = []
    cancels: list[float] = []
    try:
        time.sleep(2 * poll + 1.0)  # the worker is up and idle
        frozen = freeze_request(workspace, "grid")
        for phase in phases:
            job_id = store.submit(
                frozen.kind,
                frozen.body,
                frozen.request_hash,
                max_attempts=workspace.config.jobs.max_attempts,
            )
            submitted = time.perf_counter()
            claims.append(_poll(store, job_id, {"running", *FINAL_STATES}) - submitted)
            asked = time.perf_counter()
            store.cancel(job_id)
            _poll(store, job_id, set(FINAL_STATES))
            cancels.append(time.perf_counter() - asked)
            # the idle worker looked for a job right after this one ended: the next one lands
            # at this phase of its poll
            time.sleep(poll * (1 + phase))
    finally:
        store.close()
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
        os.environ.pop("ITA_VC_JOBS_URL", None)
    return {"claim": claims, "cancel": cancels}


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


# -- report ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~1,000 variants, fewer bars")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["overhead", "breakdown", "latency"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--latency-jobs", type=int, help="submissions per setting (10; quick 5)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--shared-cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "breakdown":
        print(json.dumps(breakdown_case(args.workers, args.shared_cache)))
        return 0
    n_latency = args.latency_jobs or (5 if args.quick else 10)
    created: str | None = None
    backends: list[tuple[str, str | None]] = []
    if args.backend in ("sqlite", "both"):
        backends.append(("sqlite", None))
    with tempfile.TemporaryDirectory(prefix="ita-bench-jobs-") as tmp:
        try:
            if args.backend in ("postgresql", "both"):
                created = create_database()
                backends.append(("postgresql", created))
            root = Path(tmp) / "ws"
            root.mkdir()
            started = time.perf_counter()
            engine = build_workspace(root, args.quick)
            print(f"workspace built in {time.perf_counter() - started:.1f} s ({root})")
            if args.only in (None, "overhead"):
                report_overhead(root, engine, backends, args.repeat)
            if args.only in (None, "breakdown"):
                report_breakdown(root, engine, backends)
            if args.only in (None, "latency"):
                report_latency(root, backends, n_latency)
        finally:
            if created:
                drop_database(created)
    print(
        "\nmachine: 2 shared, noisy cores (other sessions run alongside): quote the ratios, "
        "not the seconds"
    )
    return 0


def report_overhead(root: Path, engine: str, backends, repeat: int) -> None:
    reference, fg, jobs = overhead(root, engine, backends, repeat)
    warm = statistics.median(fg["warm"])
    cold = statistics.median(fg["cold"])
    first = next(iter(jobs.values()))[-1]
    counts = first["counts"] or {}
    print(f"\ngrid counts (the job's summary): {json.dumps(counts, sort_keys=True)}")
    print(
        f"outputs: {len(reference)} files, {sum(len(v) for v in reference.values()):,} bytes "
        f"({', '.join(sorted(reference))})"
    )
    rows = [
        ("foreground (cache warm)", f"{warm:.2f} s", "-", "-", "-", "-"),
        ("foreground (cache cold)", f"{cold:.2f} s", "-", "-", "-", "-"),
    ]
    for name, samples in jobs.items():
        seconds = statistics.median(s["seconds"] for s in samples)
        inner = statistics.median(s["run_claimed_s"] for s in samples)
        equal = all(s["equal"] for s in samples)
        rows.append(
            (
                f"job, {name}",
                f"{seconds:.2f} s",
                f"{inner:.2f} s",
                f"{seconds - warm:+.2f} s ({(seconds - warm) / warm:+.1%})",
                f"{seconds - cold:+.2f} s ({(seconds - cold) / cold:+.1%})",
                "yes" if equal else "NO",
            )
        )
    print_table(
        f"grid as a job vs in the foreground: median of {repeat} (fresh process each; job = "
        "`ita-vc worker --once`, its `run` = the worker's own time for the attempt)",
        rows,
        ("mode", "wall", "job run", "vs warm", "vs cold", "outputs equal"),
    )
    print("goal: overhead < 5 % and < 1 s")
    print("samples (s, in run order):")
    for what, values in fg.items():
        print(f"  foreground {what}: {', '.join(f'{v:.2f}' for v in values)}")
    for name, samples in jobs.items():
        seconds = [sample["seconds"] for sample in samples]
        print(f"  job {name}: {', '.join(f'{v:.2f}' for v in seconds)}")


def report_breakdown(root: Path, engine: str, backends) -> None:
    foreground(root, engine, cold=False)  # the workspace's feature cache filled
    found = {name: breakdown(root, url) for name, url in backends}
    labels = list(dict.fromkeys(k for steps in found.values() for k in steps))
    labels.remove("total (Worker.run)")
    labels.append("total (Worker.run)")
    rows = [
        (label, *(f"{steps.get(label, 0.0):.3f} s" for steps in found.values())) for label in labels
    ]
    print_table(
        "where a job's time goes: one job, its worker's steps timed in-process (the stage "
        "steps are the foreground's code too; the rest is the job's own cost)",
        rows,
        ("step", *found),
    )


def report_latency(root: Path, backends, n: int) -> None:
    rows = []
    for poll in (1.0, 0.1):
        for name, url in backends:
            found = latency(root, url, n, poll)
            claim, cancel = found["claim"], found["cancel"]
            rows.append(
                (
                    name,
                    f"{poll:g} s",
                    f"{statistics.median(claim) * 1000:.0f} ms",
                    f"{_p90(claim) * 1000:.0f} ms",
                    f"{min(claim) * 1000:.0f} ms",
                    f"{max(claim) * 1000:.0f} ms",
                    f"{statistics.median(claim) / poll:.2f}",
                    f"{statistics.median(cancel):.2f} s",
                )
            )
    print_table(
        f"claim latency: submit (Python API) -> running seen (10 ms polls), {n} jobs each, an "
        "idle `ita-vc worker`",
        rows,
        ("store", "claim_poll", "median", "p90", "min", "max", "median/poll", "cancel->ended"),
    )
    print(
        "an idle worker looks for a job every claim_poll_seconds: the latency is uniform in "
        "[0, poll] + the claim (median ~ poll/2); 0.1 s shows the floor"
    )


if __name__ == "__main__":
    raise SystemExit(main())
