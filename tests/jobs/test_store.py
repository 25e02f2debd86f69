"""The job store's contract on both backends (SQLite file, real PostgreSQL server): migrations,
atomic claims, leases, conditional writes, reclaim, cancel, damaged rows, errors."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from ita_vc.errors import ItaVcError, JobStoreError, UsageError
from ita_vc.jobs.store import SCHEMA_VERSION, JobStore, open_job_store, redact_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """None (SQLite at tmp_path/jobs.sqlite) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


@pytest.fixture
def connect(url, tmp_path):
    opened: list[JobStore] = []

    def open_one() -> JobStore:
        store = open_job_store(url, tmp_path / "jobs.sqlite")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _queue(store: JobStore, n: int = 1, **kw) -> list[int]:
    return [
        store.submit("grid", {"i": i, "git_commit": "c"}, f"sha256:{i}", **kw) for i in range(n)
    ]


def test_migrations_are_versioned_and_idempotent(connect):
    first = connect()
    assert first.schema_version() == SCHEMA_VERSION
    second = connect()  # a second open migrates nothing
    assert second.schema_version() == SCHEMA_VERSION
    rows = second.db.execute("SELECT COUNT(*) FROM ita_jobs_schema")
    assert rows[0][0] == SCHEMA_VERSION


def test_a_store_migrated_by_a_newer_ita_vc_is_refused(connect):
    store = connect()
    store.db.execute(
        "INSERT INTO ita_jobs_schema (version, applied_at) VALUES (?, 0)", (SCHEMA_VERSION + 1,)
    )
    with pytest.raises(JobStoreError, match="upgrade ita-vc") as info:
        connect()
    assert info.value.exit_code == 14


def test_claims_follow_priority_then_age_and_each_job_is_claimed_once(connect):
    store = connect()
    low, high, mid = (
        _queue(store, priority=0)[0],
        _queue(store, priority=5)[0],
        _queue(store, priority=2)[0],
    )
    order = []
    for owner in ("a", "b", "c"):
        claim = store.claim(owner, lease_seconds=60, max_active=10)
        assert claim is not None and claim.attempt == 1 and not claim.resumed
        order.append(claim.job.id)
    assert order == [high, mid, low]
    assert store.claim("d", lease_seconds=60, max_active=10) is None


def test_concurrent_claims_never_share_a_job(connect, url, tmp_path):
    ids = _queue(connect(), 8)
    workers = 4
    barrier = threading.Barrier(workers)
    got: list[list[int]] = [[] for _ in range(workers)]

    def claim_all(index: int) -> None:  # each thread its own connection, as workers have
        store = open_job_store(url, tmp_path / "jobs.sqlite")
        try:
            barrier.wait()
            while claim := store.claim(f"w{index}", lease_seconds=60, max_active=99):
                got[index].append(claim.job.id)
        finally:
            store.close()

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    claimed = [job for jobs in got for job in jobs]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_max_active_counts_live_leases_only(connect):
    store = connect()
    _queue(store, 3)
    assert store.claim("a", lease_seconds=60, max_active=1) is not None
    assert store.claim("b", lease_seconds=60, max_active=1) is None
    assert store.active_count() == 1


def test_an_expired_lease_is_reclaimed_and_the_old_worker_can_write_nothing(connect):
    store = connect()
    (job_id,) = _queue(store, max_attempts=3)
    old = store.claim("old", lease_seconds=0.05, max_active=5)
    assert old is not None
    time.sleep(0.3)
    new = store.claim("new", lease_seconds=60, max_active=5)
    assert new is not None and new.job.id == job_id and new.attempt == 2 and new.resumed
    assert store.heartbeat(old, 60) == (False, False)
    assert store.report(old, stage="stage_a", processed=1, total=2, checkpoint=b"{}") == "lost"
    assert not store.succeed(old, {"x": 1}, [], {"f": b"1"})
    assert not store.stop(old, "failed", "boom")
    assert store.checkpoint(job_id) is None and store.files(job_id) == {}
    assert store.report(new, stage="stage_a", processed=1, total=2, checkpoint=b'{"a": 1}') == "ok"
    assert store.checkpoint(job_id) == {"a": 1}
    assert store.succeed(new, {"x": 1}, [{"rank": 1}], {"results/grid/a": b"1"})
    job = store.get(job_id)
    assert (job.state, job.attempt, job.result) == ("succeeded", 2, {"x": 1})
    assert store.files(job_id) == {"results/grid/a": b"1"}
    assert store.topk(job_id) == ([{"rank": 1}], True, 2)


def test_a_job_whose_workers_keep_dying_ends_failed(connect):
    store = connect()
    (job_id,) = _queue(store, max_attempts=2)
    for owner in ("a", "b"):
        assert store.claim(owner, lease_seconds=0.05, max_active=5) is not None
        time.sleep(0.3)
    assert store.claim("c", lease_seconds=60, max_active=5) is None
    job = store.get(job_id)
    assert job.state == "failed" and "lease expired" in (job.last_error or "")
    assert job.attempt == 2


def test_cancel_is_idempotent_queued_at_once_running_asked(connect):
    store = connect()
    queued, running = _queue(store, 2)
    claim = store.claim("w", lease_seconds=60, max_active=5)
    assert claim is not None and claim.job.id == queued
    # the first claimed is `queued`'s id: cancel the other one while queued
    assert store.cancel(running).state == "cancelled"
    assert store.cancel(running).state == "cancelled"
    asked = store.cancel(queued)
    assert asked.state == "running" and asked.cancel_requested
    assert store.heartbeat(claim, 60) == (True, True)
    assert store.report(claim, stage="stage_b", processed=3, total=9) == "cancel"
    assert store.stop(claim, "cancelled", None)
    assert store.cancel(queued).state == "cancelled"
    with pytest.raises(ItaVcError, match="no job 999"):
        store.cancel(999)


def test_a_released_attempt_is_not_counted_a_failed_one_is(connect):
    store = connect()
    (job_id,) = _queue(store)
    claim = store.claim("w", lease_seconds=60, max_active=5)
    assert store.stop(claim, "queued", "stopped", counted=False)
    assert store.get(job_id).attempt == 0
    claim = store.claim("w", lease_seconds=60, max_active=5)
    assert store.stop(claim, "queued", "boom")
    job = store.get(job_id)
    assert (job.state, job.attempt, job.last_error) == ("queued", 1, "boom")


def test_damaged_rows_are_listed_failed_by_the_claim_and_skipped(connect):
    store = connect()
    bad_json, bad_state, good = _queue(store, 3)
    store.db.execute("UPDATE jobs SET request_json = ? WHERE id = ?", ("[1, 2", bad_json))
    store.db.execute("UPDATE jobs SET kind = ? WHERE id = ?", ("rm -rf", bad_state))
    listed = {job.id: job for job in store.list_jobs()}
    assert listed[bad_json].damaged and "damaged" in listed[bad_json].damaged
    claim = store.claim("w", lease_seconds=60, max_active=5)
    assert claim is not None and claim.job.id == good
    assert store.get(bad_json).state == "failed"
    assert "unknown kind" in (store.get(bad_state).last_error or "")
    store.db.execute(
        "INSERT INTO job_topk (job_id, attempt, final, rows_json, updated_at) "
        "VALUES (?, 1, 0, '{oops', 0)",
        (good,),
    )
    with pytest.raises(JobStoreError, match="top-K is damaged"):
        store.topk(good)


def test_a_stored_file_is_checked_against_its_hash(connect):
    store = connect()
    (job_id,) = _queue(store)
    claim = store.claim("w", lease_seconds=60, max_active=5)
    assert store.succeed(claim, {}, [], {"results/grid/topk.parquet": b"data"})
    store.db.execute("UPDATE job_files SET data = ? WHERE job_id = ?", (b"dat4", job_id))
    with pytest.raises(JobStoreError, match="does not match its sha256"):
        store.files(job_id)


def test_list_filters_by_state_and_refuses_unknown_states(connect):
    store = connect()
    first, _second = _queue(store, 2)
    store.cancel(first)
    assert [j.id for j in store.list_jobs("cancelled")] == [first]
    with pytest.raises(UsageError):
        store.list_jobs("done")


def test_events_are_the_jobs_log(connect):
    store = connect()
    (job_id,) = _queue(store)
    claim = store.claim("w", lease_seconds=60, max_active=5)
    store.log(claim, "hello")
    assert [m for _at, _a, _l, m in store.events(job_id)] == [
        "submitted (grid, priority 0)",
        "claimed by w (attempt 1)",
        "hello",
    ]


def test_an_unreachable_server_is_a_clear_error_without_the_password(tmp_path):
    url = "postgresql://ita:s3cret@127.0.0.1:1/jobs"
    with pytest.raises(JobStoreError) as info:
        open_job_store(url, tmp_path / "x.sqlite", timeout=2)
    assert "s3cret" not in str(info.value) and "cannot connect" in str(info.value)
    assert info.value.exit_code == 14
    assert redact_url(url) == "postgresql://ita:***@127.0.0.1:1/jobs"


def test_an_unreadable_sqlite_file_is_a_clear_error(tmp_path):
    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JobStoreError, match="jobs.sqlite"):
        open_job_store(None, path)


def test_the_sqlite_store_is_in_wal_mode(tmp_path):
    open_job_store(None, tmp_path / "jobs.sqlite").close()
    conn = sqlite3.connect(tmp_path / "jobs.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_request_json_round_trips(connect):
    store = connect()
    request = {"params": {"grid": {"top_k": 5}}, "git_commit": "abc", "note": "é"}
    job_id = store.submit("backtest", request, "sha256:x", note="n")
    job = store.get(job_id)
    assert job.request == request and job.kind == "backtest" and job.note == "n"
    assert json.loads(json.dumps(job.to_dict()))["request"] == request
