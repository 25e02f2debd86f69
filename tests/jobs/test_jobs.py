"""Jobs end to end on both stores (issue #18): submit, worker, progress, top, cancel, adopt.

Every test runs against the SQLite store (``.ita/jobs.sqlite``) and a real PostgreSQL server
(``pg_url``: a fresh database per test; tests/jobs/conftest.py starts the server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TmpRepo, invoke, make_pipeline_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch):
    """The job store of the test: ITA_VC_JOBS_URL unset (SQLite) or a fresh PG database."""
    if request.param == "sqlite":
        monkeypatch.delenv("ITA_VC_JOBS_URL", raising=False)
        return None
    url = request.getfixturevalue("pg_url")
    monkeypatch.setenv("ITA_VC_JOBS_URL", url)
    return url


@pytest.fixture(scope="module")
def grid_repo(_template_repo, tmp_path_factory):
    """A workspace with candles, the example rule, a small grid; and the grid stage's
    outputs from `dvc repro grid` (the foreground reference)."""
    root = tmp_path_factory.mktemp("jobs") / "repo"
    import shutil

    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root))
    params = (root / "params.yaml").read_text()
    params = params.replace(
        "overfitting: {partitions: 4, max_variants: 20000}", "overfitting: null"
    )
    params = params.replace("  top_k: 20\n", "  top_k: 20\n  batch_size: 2\n")  # many batches
    (root / "params.yaml").write_text(params)
    config = (root / "configs" / "config.yaml").read_text()
    config = (
        config.replace("lease_seconds: 60", "lease_seconds: 3")
        .replace("heartbeat_seconds: 5", "heartbeat_seconds: 1")
        .replace("claim_poll_seconds: 1 ", "claim_poll_seconds: 0.2 ")
    )
    (root / "configs" / "config.yaml").write_text(config)
    repo.git("commit", "-qam", "small batches, short leases")
    from ita_vc.snapshot.runner import pipeline_env

    run([sys.executable, "-m", "dvc", "repro", "-q", "grid"], cwd=root, env=pipeline_env())
    reference = {p.name: p.read_bytes() for p in sorted((root / "results" / "grid").iterdir())}
    run([sys.executable, "-m", "dvc", "repro", "-q", "report"], cwd=root, env=pipeline_env())
    outs = [
        "results/prepared",
        "results/backtest",
        "results/metrics.json",
        "results/report",
        "results/plots/equity.csv",
    ]
    repo.backtest_reference = {  # type: ignore[attr-defined]
        p.relative_to(root).as_posix(): p.read_bytes()
        for out in outs
        for p in sorted([root / out, *(root / out).rglob("*")])
        if p.is_file()
    }
    repo.git("checkout", "--", ".")
    repo.git("clean", "-fdxq", "results")
    repo.reference = reference  # type: ignore[attr-defined]
    return repo


@pytest.fixture
def ws(grid_repo, tmp_path, monkeypatch, backend):
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(grid_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    repo = TmpRepo(root)
    repo.reference = grid_repo.reference  # type: ignore[attr-defined]
    repo.backtest_reference = grid_repo.backtest_reference  # type: ignore[attr-defined]
    return repo


def _submit(*args: str) -> int:
    result = invoke("jobs", "submit", "--json", *args)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def _status(job_id: int) -> dict:
    result = invoke("jobs", "status", str(job_id), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _job_files(job_id: int) -> dict[str, bytes]:
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    store = open_store(Workspace.discover())
    try:
        return store.files(job_id)
    finally:
        store.close()


def test_a_grid_job_equals_the_grid_stage_byte_for_byte(ws):
    job_id = _submit("--grid", "--note", "first")
    assert _status(job_id)["state"] == "queued"
    result = invoke("worker", "--once")
    assert result.exit_code == 0, result.output
    status = _status(job_id)
    assert status["state"] == "succeeded", status
    assert status["attempt"] == 1
    files = _job_files(job_id)
    assert {Path(k).name: v for k, v in files.items()} == ws.reference
    top = json.loads(invoke("jobs", "top", str(job_id), "--json", "--limit", "3").stdout)
    assert top["final"] and len(top["rows"]) == 3 and top["rows"][0]["rank"] == 1
    assert "report_table_md" in top["rows"][0]
    shown = invoke("jobs", "top", str(job_id), "--limit", "2")
    assert shown.exit_code == 0 and "final top-K" in shown.stdout, shown.output
    assert top["rows"][0]["variant_key"][:20] in shown.stdout.replace("\n", "")
    status = invoke("jobs", "status", str(job_id))
    assert status.exit_code == 0, status.output
    for part in ("job 1: succeeded", "search      complete: Stage A 12", "`ita-vc jobs adopt 1`"):
        assert part in status.stdout, status.stdout
    logs = invoke("jobs", "logs", str(job_id))
    assert "claimed by" in logs.stdout and "succeeded" in logs.stdout


def _worker(**settings):
    """An in-process worker with the workspace's settings (``settings`` override them)."""
    import dataclasses

    from ita_vc.jobs import Worker
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    return Worker(workspace, settings=dataclasses.replace(workspace.config.jobs, **settings))


def _run_until(predicate, *, worker=None, deadline_s: float = 120.0) -> list:
    """Run ``worker.run(once=True)`` until ``predicate()`` (a lease must expire first)."""
    import time

    worker = worker or _worker()
    outcomes: list = []
    end = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < end, "the job was not reclaimed in time"
        outcomes += worker.run(once=True)
        if not outcomes:
            time.sleep(0.2)
    return outcomes


def test_two_jobs_two_worker_processes_each_claimed_once(ws):
    first, second = _submit("--priority", "1"), _submit()
    result = invoke("worker", "--concurrency", "2", "--once")
    assert result.exit_code == 0, result.output
    owners = set()
    for job_id in (first, second):
        status = _status(job_id)
        assert status["state"] == "succeeded" and status["attempt"] == 1, status
        claims = [m for _at, _a, _l, m in _events(job_id) if "claimed by" in m]
        assert len(claims) == 1, claims
        owners.add(claims[0])
        assert {Path(k).name: v for k, v in _job_files(job_id).items()} == ws.reference
    assert len(owners) == 2  # two different workers


def _events(job_id: int) -> list:
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    store = open_store(Workspace.discover())
    try:
        return store.events(job_id)
    finally:
        store.close()


def _wrapped_worker(script: str) -> subprocess.CompletedProcess[str]:
    """Run a worker wrapped by ``script`` (which signals itself at an exact point) in a
    process of its own, a checkpoint after every batch."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ITA_VC_GRID_CHECKPOINT_SECONDS": "0"}
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


_KILL_MID_STAGE_A = textwrap.dedent(
    """
    import os, signal
    from ita_vc.jobs import worker as w
    save = w._Reporter.save
    def killing_save(self, document, state):
        save(self, document, state)  # the checkpoint is in the store
        if state.stage == "A" and state.next_batch >= 2:
            os.kill(os.getpid(), signal.SIGKILL)
    w._Reporter.save = killing_save
    from ita_vc.cli import main
    main(["worker", "--once"])
    """
)


def test_a_killed_worker_loses_its_job_which_another_resumes(ws):
    job_id = _submit()
    proc = _wrapped_worker(_KILL_MID_STAGE_A)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    killed = _status(job_id)
    assert killed["state"] == "running" and killed["stage"] == "stage_a", killed
    assert 0 < killed["processed"] < killed["total"]
    outcomes = _run_until(lambda: _status(job_id)["state"] != "running")
    assert [o.state for o in outcomes] == ["succeeded"]
    status = _status(job_id)
    assert status["state"] == "succeeded" and status["attempt"] == 2, status
    assert {Path(k).name: v for k, v in _job_files(job_id).items()} == ws.reference
    messages = [m for _at, _a, _l, m in _events(job_id)]
    assert any("reclaimed by" in m for m in messages), messages
    assert any("resuming from the checkpoint: stage A" in m for m in messages), messages


def test_cancel_a_queued_job_at_once_and_idempotently(ws):
    job_id = _submit()
    for _ in range(2):
        result = invoke("jobs", "cancel", str(job_id))
        assert result.exit_code == 0 and "cancelled" in result.stdout, result.output
    assert _status(job_id)["state"] == "cancelled"
    assert _worker().run(once=True) == []  # nothing left to claim


def test_cancel_a_running_job_at_the_next_batch_and_progress_is_monotonic(ws, monkeypatch):
    from ita_vc.jobs import worker as w
    from ita_vc.jobs.store import JobStore

    monkeypatch.setenv("ITA_VC_GRID_CHECKPOINT_SECONDS", "0")
    job_id = _submit()
    reports: list[tuple[str, int | None]] = []
    tops: list[dict] = []
    report = JobStore.report

    def recording_report(self, claim, *, stage, processed, total, **kw):
        reports.append((stage, processed))
        return report(self, claim, stage=stage, processed=processed, total=total, **kw)

    save = w._Reporter.save

    def cancelling_save(self, document, state):
        save(self, document, state)
        top = invoke("jobs", "top", str(job_id), "--json", "--limit", "500")
        tops.append(json.loads(top.stdout))
        if state.stage == "B" and state.next_batch >= 2:
            assert invoke("jobs", "cancel", str(job_id)).exit_code == 0

    monkeypatch.setattr(JobStore, "report", recording_report)
    monkeypatch.setattr(w._Reporter, "save", cancelling_save)
    outcomes = _worker().run(once=True)
    assert [o.state for o in outcomes] == ["cancelled"]
    status = _status(job_id)
    assert status["state"] == "cancelled" and status["last_error"] is None, status
    order = ["preparing", "stage_a", "stage_b", "finalizing"]
    keys = [(order.index(stage), done or 0) for stage, done in reports]
    assert keys == sorted(keys) and keys[-1][0] == 2  # never finalized
    # `top` while running: a consistent snapshot each time (ranks 1..n, best first)
    assert tops and all(not t["final"] and t["state"] == "running" for t in tops)
    for top in tops:
        ranks = [r["rank"] for r in top["rows"]]
        returns = [r["Total Return [%]"] for r in top["rows"]]
        assert ranks == list(range(1, len(ranks) + 1))
        assert returns == sorted(returns, reverse=True)
    assert _worker().run(once=True) == []


def test_bad_job_ids_and_unknown_jobs(ws):
    for bad in ("abc", "0", "-3", "1.5", "../etc", "9" * 30):
        result = invoke("jobs", "status", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert "not a job id" in result.stderr or "No such option" in result.stderr
    result = invoke("jobs", "cancel", "4242")
    assert result.exit_code == 1 and "no job 4242" in result.stderr, result.output
    assert invoke("jobs", "list", "--state", "nope").exit_code == 2


def test_a_corrupted_row_is_named_and_the_queue_goes_on(ws):
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    broken, good = _submit(), _submit()
    store = open_store(Workspace.discover())
    store.db.execute("UPDATE jobs SET request_json = ? WHERE id = ?", ('{"kind": ', broken))
    store.close()
    listed = invoke("jobs", "list")
    assert listed.exit_code == 0 and "DAMAGED" in listed.stdout, listed.output
    assert "damaged" in invoke("jobs", "status", str(broken)).stdout
    outcomes = _worker().run(once=True)
    assert [(o.job_id, o.state) for o in outcomes] == [(good, "succeeded")]
    status = _status(broken)
    assert status["state"] == "failed" and "damaged" in status["last_error"], status


def test_max_active_jobs_is_a_quota_over_every_worker(ws):
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    first, second = _submit(), _submit()
    store = open_store(Workspace.discover())
    try:
        held = store.claim("other-machine", lease_seconds=60, max_active=1)
        assert held is not None and held.job.id == first
        assert _worker(max_active_jobs=1).run(once=True) == []  # refused: quota reached
        assert _status(second)["state"] == "queued"
        outcomes = _worker(max_active_jobs=2).run(once=True)
        assert [(o.job_id, o.state) for o in outcomes] == [(second, "succeeded")]
    finally:
        store.close()


def _rewrite_request(job_id: int, change, *, rehash: bool = True) -> None:
    """Change a queued job's request in the store (and its request_hash, unless told not)."""
    from ita_vc.jobs import open_store
    from ita_vc.utils.hashing import hash_canonical
    from ita_vc.workspace import Workspace

    store = open_store(Workspace.discover())
    request = store.get(job_id).request
    change(request)
    old = store.get(job_id).request_hash
    store.db.execute(
        "UPDATE jobs SET request_json = ?, request_hash = ? WHERE id = ?",
        (json.dumps(request), hash_canonical(request) if rehash else old, job_id),
    )
    store.close()


def test_a_job_that_keeps_failing_ends_failed_with_its_last_error(ws, monkeypatch):
    from ita_vc.jobs import worker as w

    def broken(*_args):
        raise OSError("the disk is on fire")

    monkeypatch.setattr(w, "_link_candles", broken)
    job_id = _submit()
    states = [o.state for _ in range(3) for o in _worker().run(once=True)]
    assert states == ["released", "released", "failed"]
    status = _status(job_id)
    assert status["state"] == "failed" and status["attempt"] == 3
    assert status["last_error"] == "OSError: the disk is on fire"
    errors = [(a, m) for _at, a, level, m in _events(job_id) if level == "error"]
    assert errors == [(3, "failed: OSError: the disk is on fire")]  # once, with its attempt


def test_a_job_whose_commit_or_data_cannot_be_found_fails_at_once_saying_so(ws):
    no_commit, no_data = _submit(), _submit()
    _rewrite_request(no_commit, lambda r: r.update(git_commit="0" * 40))
    _rewrite_request(no_data, lambda r: r["data"].update(md5="f" * 32))
    assert [o.state for _ in range(2) for o in _worker().run(once=True)] == ["failed", "failed"]
    status = _status(no_commit)
    assert status["attempt"] == 1
    assert "is not in this clone nor on its git remote" in status["last_error"]
    status = _status(no_data)
    assert status["attempt"] == 1 and "ffffffff" in status["last_error"]
    assert "neither this clone's DVC cache nor its DVC remote" in status["last_error"]


@pytest.mark.parametrize("path", ["/tmp/victim.txt", "../victim.txt", "data/../../victim.txt"])
def test_a_tampered_request_runs_nothing_and_writes_nowhere(ws, tmp_path, path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    changed, escaping = _submit(), _submit()
    _rewrite_request(changed, lambda r: r["params"]["grid"].update(top_k=1), rehash=False)
    target = str(victim) if path.startswith("/") else path
    _rewrite_request(escaping, lambda r: r["data"].update(path=target))
    assert [o.state for _ in range(2) for o in _worker().run(once=True)] == ["failed", "failed"]
    assert "does not hash to its request_hash" in _status(changed)["last_error"]
    assert "is not a path inside its workspace" in _status(escaping)["last_error"]
    assert victim.read_text() == "precious"


def test_submit_refuses_uncommitted_inputs_unless_allowed(ws):
    rule = ws / "rules" / "example_ma_cross" / "v1.0.yaml"
    (ws / "configs" / "indicators.yaml").write_text(
        (ws / "configs" / "indicators.yaml").read_text() + "\n# edited\n"
    )
    result = invoke("jobs", "submit")
    assert result.exit_code == 12 and "configs/indicators.yaml" in result.stderr, result.output
    result = invoke("jobs", "submit", "--allow-dirty")
    assert result.exit_code == 0 and "NOT in the job" in result.stdout, result.output
    rule.write_text(rule.read_text() + "\n# edited\n")
    result = invoke("jobs", "submit", "--allow-dirty")
    assert result.exit_code == 12 and "is not committed" in result.stderr, result.output
    assert invoke("jobs", "submit", "-S", "grid.top_k=-1", "--allow-dirty").exit_code in (4, 11)


def test_adopt_makes_the_job_a_committed_run_or_says_what_differs(ws):
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.workspace import Workspace

    job_id = _submit()
    queued = invoke("jobs", "adopt", str(job_id))
    assert queued.exit_code == 2 and "queued" in queued.stderr, queued.output
    assert [o.state for o in _worker().run(once=True)] == ["succeeded"]
    params = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_text(params.replace("top_k: 20", "top_k: 7"))
    ws.git("commit", "-qam", "another top_k")
    refused = invoke("jobs", "adopt", str(job_id))
    assert refused.exit_code == 12, refused.output
    assert "params.yaml: grid.top_k: 7 here, 20 in the job" in refused.stderr
    (ws / "params.yaml").write_text(params)
    ws.git("commit", "-qam", "back")
    head = ws.git("rev-parse", "HEAD").stdout.strip()
    adopted = invoke("jobs", "adopt", str(job_id))
    assert adopted.exit_code == 0, adopted.output
    assert ws.git("rev-parse", "HEAD~1").stdout.strip() == head  # one run commit
    run_id = adopted.stdout.split(" adopted as ")[1].split()[0]
    snapshot = SnapshotStore(Workspace.discover()).load_snapshot(run_id)
    assert snapshot["stages"]["grid"] == "run"
    grid_files = {p.name: p.read_bytes() for p in sorted((ws / "results" / "grid").iterdir())}
    assert grid_files == ws.reference
    assert ws.git("status", "--porcelain").stdout.strip() == ""
    verify = invoke("snapshot", "verify", run_id)
    assert verify.exit_code == 0, verify.output


def test_a_backtest_job_equals_the_pipeline_stages_and_is_adopted(ws):
    job_id = _submit("--backtest", "-S", "backtest.fee_pct=0.1")
    assert [o.state for o in _worker().run(once=True)] == ["succeeded"]
    status = _status(job_id)
    assert status["kind"] == "backtest" and status["stage"] == "finalizing", status
    files = _job_files(job_id)
    assert set(files) == set(ws.backtest_reference)
    # the -S value is in the job: the metrics differ from the committed params' run
    assert files["results/metrics.json"] != ws.backtest_reference["results/metrics.json"]
    refused = invoke("jobs", "adopt", str(job_id))
    assert refused.exit_code == 12, refused.output
    assert "params.yaml: backtest.fee_pct: None here, 0.1 in the job" in refused.stderr
    same = _submit("--backtest")
    assert [o.state for o in _worker().run(once=True)] == ["succeeded"]
    assert _job_files(same) == ws.backtest_reference
    adopted = invoke("jobs", "adopt", str(same))
    assert adopted.exit_code == 0, adopted.output
    assert ws.git("status", "--porcelain").stdout.strip() == ""


_TERM_AFTER_FIRST_SAVE = textwrap.dedent(
    """
    import os, signal
    from ita_vc.jobs import worker as w
    save = w._Reporter.save
    def terminating_save(self, document, state):
        save(self, document, state)
        if state.stage == "A" and state.next_batch == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a service manager stops it
    w._Reporter.save = terminating_save
    from ita_vc.cli import main
    main(["worker"])
    """
)


def test_a_stopped_worker_gives_its_job_back_which_resumes_elsewhere(ws):
    job_id = _submit()
    proc = _wrapped_worker(_TERM_AFTER_FIRST_SAVE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"job {job_id}: released" in proc.stderr
    status = _status(job_id)
    assert (status["state"], status["attempt"]) == ("queued", 0), status
    assert [o.state for o in _worker().run(once=True)] == ["succeeded"]
    assert _status(job_id)["attempt"] == 1  # the stopped attempt was not counted
    assert {Path(k).name: v for k, v in _job_files(job_id).items()} == ws.reference
    assert any("resuming from the checkpoint" in m for _at, _a, _l, m in _events(job_id))


@pytest.mark.parametrize(
    "name", ["results/grid/../params.yaml", "/etc/passwd", "rules/x.yaml", "results/grid/"]
)
def test_adopt_refuses_stored_files_outside_the_outputs(ws, name):
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    job_id = _submit()
    assert [o.state for o in _worker().run(once=True)] == ["succeeded"]
    store = open_store(Workspace.discover())
    store.db.execute(
        "UPDATE job_files SET name = ? WHERE job_id = ? AND name = ?",
        (name, job_id, "results/grid/report.md"),
    )
    store.close()
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file() and ".git" not in p.parts}
    result = invoke("jobs", "adopt", str(job_id))
    assert result.exit_code == 14 and "nothing was written" in result.stderr, result.output
    after = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file() and ".git" not in p.parts}
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert all(".ita" in p.parts or "logs" in p.parts for p in changed), changed


def test_a_job_on_a_dask_cluster_equals_the_grid_stage(ws):
    import dataclasses

    import distributed

    from ita_vc.jobs import Worker
    from ita_vc.workspace import Workspace

    job_id = _submit()
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        workspace = Workspace.discover()
        worker = Worker(
            workspace,
            settings=dataclasses.replace(workspace.config.jobs),
            options={"scheduler": cluster.scheduler_address},
        )
        assert [o.state for o in worker.run(once=True)] == ["succeeded"]
    assert {Path(k).name: v for k, v in _job_files(job_id).items()} == ws.reference


def _wait_for(predicate, what: str, deadline_s: float = 60.0):
    import time

    end = time.monotonic() + deadline_s
    while not (value := predicate()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_concurrency_replaces_a_killed_worker_process_and_stops_on_sigint(ws):
    import psutil

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-m", "ita_vc", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []

    def wait_ready(n: int) -> None:  # n worker processes said they wait for jobs
        assert parent.stderr is not None
        while sum("waiting for jobs" in line for line in seen) < n:
            line = parent.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)

    try:
        wait_ready(2)
        victim = psutil.Process(parent.pid).children()[0].pid
        os.kill(victim, signal.SIGKILL)
        wait_ready(3)  # the replacement is up
        parent.send_signal(signal.SIGINT)  # `kill -INT`, not the terminal's group-wide Ctrl-C
        _out, err = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    err = "".join(seen) + err
    assert parent.returncode == 0, err
    assert f"worker process {victim} was killed (signal 9)" in err
    assert "Traceback" not in err
