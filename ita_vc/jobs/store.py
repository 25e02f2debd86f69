"""The job store: one small interface, two backends over the same tables and the same SQL.

:class:`JobStore` is the interface every caller uses; :func:`open_job_store` returns the
SQLite backend (``.ita/jobs.sqlite``, WAL: several workers on one machine, no server) or the
PostgreSQL backend (``jobs.url: postgresql://...``, psycopg 3: workers on several machines).
Both run the same statements; only the placeholders, the clock expression, the id column and
how a claim is made atomic differ (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the claims are
serialised by a transaction advisory lock - so ``max_active_jobs`` is exact - and the row is
taken with ``SELECT ... FOR UPDATE SKIP LOCKED``).

Every write a worker makes (heartbeat, progress + checkpoint + best-so-far top-K, the result)
is conditional on its lease (``lease_owner`` and ``attempt``): a worker that lost its lease
changes nothing, so a job is run by at most one worker at a time. Times are the database's
clock in epoch milliseconds (one clock for every machine).

Tables (versioned migrations in :data:`MIGRATIONS`, recorded in ``ita_jobs_schema``):
``jobs`` (the state machine, one row per job), ``job_checkpoints`` (the grid's search state,
so any worker can resume), ``job_topk`` (the best-so-far top-K, then the final one),
``job_files`` (the result's output files, so ``adopt`` works on any clone) and ``job_events``
(``jobs logs``).
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from typing import TYPE_CHECKING, Any, Protocol

from ita_vc.errors import ItaVcError, JobStoreError, UsageError
from ita_vc.jobs.model import FINAL_STATES, JOB_STATES, Job, printable
from ita_vc.utils.hashing import hash_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Claim",
    "JobStore",
    "open_job_store",
    "redact_url",
]

_COMMON = [
    """CREATE TABLE IF NOT EXISTS jobs (
        id {id_column},
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        request_json TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        submitted_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        lease_owner TEXT,
        lease_expires_at BIGINT,
        heartbeat_at BIGINT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        stage TEXT,
        processed BIGINT,
        total BIGINT,
        progress_at BIGINT,
        last_error TEXT,
        result_json TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (state, priority, submitted_at, id)",
    """CREATE TABLE IF NOT EXISTS job_checkpoints (
        job_id BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        data TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS job_topk (
        job_id BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        final INTEGER NOT NULL,
        rows_json TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS job_files (
        job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        data {blob} NOT NULL,
        PRIMARY KEY (job_id, name)
    )""",
    """CREATE TABLE IF NOT EXISTS job_events (
        id {id_column},
        job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        at BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, id)",
]

MIGRATIONS: list[list[str]] = [_COMMON]
"""Schema versions, in order: migration N+1 is the list of statements of ``MIGRATIONS[N]``.
Append-only; each backend fills in its id column and blob type."""

SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "id, kind, state, priority, note, request_json, request_hash, submitted_at, started_at, "
    "finished_at, attempt, max_attempts, lease_owner, lease_expires_at, heartbeat_at, "
    "cancel_requested, stage, processed, total, progress_at, last_error, result_json"
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: in the user part (up to the last ``@``
    of the authority, so a password holding ``@`` is hidden whole) and ``password=`` in the
    query."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        user, at, host = authority.rpartition("@")
        if at and ":" in user:
            authority = user.split(":", 1)[0] + ":***@" + host
        url = f"{scheme}://{authority}{slash}{tail}"
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def _secrets(url: str) -> list[str]:
    """The password strings of ``url`` (raw and percent-decoded), to keep out of messages."""
    from urllib.parse import unquote

    found = []
    _scheme, _sep, rest = url.partition("://")
    user = rest.partition("/")[0].rpartition("@")[0]
    if ":" in user:
        found.append(user.split(":", 1)[1])
    found += re.findall(r"(?i)password=([^&\s]*)", url)
    whole = [x for s in found if s for x in {s, unquote(s)}]
    parts = [p for x in whole for p in x.split("@")]  # libpq may split it at an "@"
    return [x for x in {*whole, *parts} if len(x) >= 2]


def _scrub(text: str, url: str) -> str:
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class Claim:
    """A claimed job and the lease its worker holds (``owner``, ``attempt``)."""

    def __init__(self, job: Job, owner: str, resumed: bool) -> None:
        self.job = job
        self.owner = owner
        self.attempt = job.attempt
        self.resumed = resumed
        """Reclaimed after a lost lease (or a released attempt), not a fresh start."""


class _Backend(Protocol):
    name: str
    now_sql: str
    placeholder: str
    id_column: str
    blob: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def insert_id(self, sql: str, params: Sequence[Any]) -> int: ...

    def transaction(self, *, claim: bool = False) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class _Sqlite:
    """``.ita/jobs.sqlite`` in WAL mode; write transactions are ``BEGIN IMMEDIATE``."""

    name = "sqlite"
    now_sql = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"
    placeholder = "?"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            # a text column holding bytes that are not UTF-8 (a hand-edited or damaged row)
            # reads with replacement characters instead of failing every query
            self.conn.text_factory = lambda data: data.decode("utf-8", "replace")
            self.conn.execute("PRAGMA busy_timeout = 60000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise JobStoreError(f"{path}: cannot open the job store ({exc})") from exc
        self.depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.conn.execute(sql, tuple(params)).fetchall())
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(f"{self.path}: {printable(str(exc))}") from exc

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        try:
            cursor = self.conn.execute(sql, tuple(params))
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(f"{self.path}: {exc}") from exc
        return int(cursor.lastrowid or 0)

    @contextlib.contextmanager
    def transaction(self, *, claim: bool = False) -> Iterator[None]:
        del claim  # BEGIN IMMEDIATE already serialises every writer
        if self.depth:
            yield
            return
        self.execute("BEGIN IMMEDIATE")
        self.depth += 1
        try:
            yield
        except BaseException:
            self.depth -= 1
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self.depth -= 1
        self.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    """A PostgreSQL server through psycopg 3 (autocommit; explicit transactions)."""

    name = "postgresql"
    now_sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    placeholder = "%s"
    id_column = "BIGSERIAL PRIMARY KEY"
    blob = "BYTEA"
    _CLAIM_LOCK = 7_151_821_100_018  # pg_advisory_xact_lock key of the claim

    def __init__(self, url: str, timeout: float) -> None:
        import psycopg  # lazy: only a PostgreSQL store needs it

        self.psycopg = psycopg
        self.url = redact_url(url)
        self.raw = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
        except psycopg.Error as exc:
            raise JobStoreError(
                f"job store {self.url}: cannot connect ({_first_line(exc, url)}); check "
                "jobs.url, that the server runs, and the password (PGPASSWORD or "
                ".ita/jobs.local.yaml; a password with special characters must be "
                "percent-encoded in a URL, or given in PGPASSWORD)"
            ) from None
        self.depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self.conn.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        except self.psycopg.Error as exc:
            raise JobStoreError(f"job store {self.url}: {_first_line(exc, self.raw)}") from None

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        rows = self.execute(sql + " RETURNING id", params)
        return int(rows[0][0])

    @contextlib.contextmanager
    def transaction(self, *, claim: bool = False) -> Iterator[None]:
        if self.depth:
            yield
            return
        self.depth += 1
        try:
            with self.conn.transaction():
                if claim:
                    self.execute("SELECT pg_advisory_xact_lock(?)", (self._CLAIM_LOCK,))
                yield
        except self.psycopg.Error as exc:
            raise JobStoreError(f"job store {self.url}: {_first_line(exc, self.raw)}") from None
        finally:
            self.depth -= 1

    def close(self) -> None:
        self.conn.close()


def _first_line(exc: BaseException, url: str) -> str:
    """The first line of a driver error, with the URL's password kept out."""
    text = str(exc).strip()
    return printable(_scrub(redact_url(text.splitlines()[0] if text else type(exc).__name__), url))


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else None


def _readable(values: dict[str, Any]) -> tuple[dict[str, Any], Any, str | None]:
    """``(request, result, why damaged)`` of a row's JSON columns and state."""
    try:
        request = json.loads(values["request_json"])
        result = _loads(values["result_json"])
    except (ValueError, TypeError, RecursionError) as exc:
        return {}, None, f"the job's row is damaged ({exc})"
    if not isinstance(request, dict):
        return {}, None, "the job's row is damaged (the request is not a JSON object)"
    if values["state"] not in JOB_STATES:
        return request, None, f"the job's row is damaged (unknown state {values['state']!r})"
    return request, result, None


_INTS = ("priority", "submitted_at", "attempt", "max_attempts")
_OPTIONAL_INTS = (
    "started_at",
    "finished_at",
    "lease_expires_at",
    "heartbeat_at",
    "processed",
    "total",
    "progress_at",
)
_TEXTS = ("note", "lease_owner", "stage", "last_error")


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not a whole number")
    return value


def _job(row: tuple[Any, ...]) -> Job:
    """A ``jobs`` row; a row that cannot be read is returned ``damaged`` (listed, never run):
    a bad JSON column, state, number or text (SQLite stores whatever it is given)."""
    values = dict(zip([c.strip() for c in _COLUMNS.split(",")], row, strict=True))
    request, result, damaged = _readable(values)
    numbers: dict[str, Any] = {}
    for name in (*_INTS, *_OPTIONAL_INTS):
        value = values[name]
        try:
            numbers[name] = None if value is None and name in _OPTIONAL_INTS else _whole(value)
        except TypeError as exc:
            damaged = damaged or f"the job's row is damaged ({name}: {exc})"
            numbers[name] = None if name in _OPTIONAL_INTS else 0
    texts: dict[str, Any] = {
        n: values[n] if isinstance(values[n], str | None) else str(values[n]) for n in _TEXTS
    }
    return Job(
        id=int(values["id"]),
        kind=str(values["kind"]),
        state=str(values["state"]),
        request=request,
        request_hash=str(values["request_hash"]),
        cancel_requested=bool(values["cancel_requested"]),
        result=result if isinstance(result, dict) else None,
        damaged=damaged,
        **numbers,
        **texts,
    )


class JobStore:
    """The jobs of a workspace (or a team): submit, claim, report, cancel, read.

    Raises (every method):
        JobStoreError: the store is unreachable or refused a statement.
    """

    def __init__(self, backend: _Backend, where: str) -> None:
        self.db = backend
        self.where = where
        """The store, for messages: a path, or the URL without its password."""
        try:
            self._migrate()
        except JobStoreError as exc:
            backend.close()
            if "permission denied" not in str(exc):
                raise
            raise JobStoreError(
                f"{exc}: the login may not create the job tables in this database; use a "
                "database it owns (`createdb -O USER NAME`; PostgreSQL 15 no longer lets every "
                "login create tables in the shared `postgres` database)"
            ) from exc
        except BaseException:
            backend.close()
            raise

    # -- schema ----------------------------------------------------------------------------

    def _migrate(self) -> None:
        db = self.db
        with db.transaction(claim=True):
            db.execute(
                "CREATE TABLE IF NOT EXISTS ita_jobs_schema "
                "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            rows = db.execute("SELECT MAX(version) FROM ita_jobs_schema")
            current = int(rows[0][0] or 0) if rows else 0
            if current > SCHEMA_VERSION:
                raise JobStoreError(
                    f"{self.where}: the job store has schema {current}, this ita-vc knows "
                    f"{SCHEMA_VERSION}: upgrade ita-vc"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    db.execute(statement.format(id_column=db.id_column, blob=db.blob))
                db.execute(
                    f"INSERT INTO ita_jobs_schema (version, applied_at) VALUES (?, {db.now_sql})",
                    (version,),
                )

    def schema_version(self) -> int:
        """The store's migration version."""
        rows = self.db.execute("SELECT MAX(version) FROM ita_jobs_schema")
        return int(rows[0][0] or 0)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def now(self) -> int:
        """The store's clock (epoch milliseconds)."""
        return int(self.db.execute(f"SELECT {self.db.now_sql}")[0][0])

    # -- submit and read -------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        request: dict[str, Any],
        request_hash: str,
        *,
        priority: int = 0,
        note: str | None = None,
        max_attempts: int = 3,
    ) -> int:
        """Queue a job; its id."""
        db = self.db
        with db.transaction():
            job_id = db.insert_id(
                "INSERT INTO jobs (kind, state, priority, note, request_json, request_hash, "
                f"submitted_at, max_attempts) VALUES (?, 'queued', ?, ?, ?, ?, {db.now_sql}, ?)",
                (
                    kind,
                    priority,
                    note,
                    json.dumps(request, sort_keys=True),
                    request_hash,
                    max_attempts,
                ),
            )
            self._event(job_id, 0, "info", f"submitted ({kind}, priority {priority})")
        return job_id

    def get(self, job_id: int) -> Job:
        """One job.

        Raises:
            ItaVcError: no such job (the message names the store).
        """
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise ItaVcError(f"no job {job_id} in {self.where} (`ita-vc jobs list` lists them)")
        return _job(rows[0])

    def list_jobs(self, state: str | None = None, limit: int | None = None) -> list[Job]:
        """Jobs, newest first; ``state`` one of :data:`JOB_STATES`.

        Raises:
            UsageError: an unknown state.
        """
        if state is not None and state not in JOB_STATES:
            raise UsageError(f"--state must be one of {', '.join(JOB_STATES)}, got {state!r}")
        sql = f"SELECT {_COLUMNS} FROM jobs"
        params: list[Any] = []
        if state is not None:
            sql += " WHERE state = ?"
            params.append(state)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_job(row) for row in self.db.execute(sql, params)]

    def same_request(self, request_hash: str) -> list[int]:
        """Queued, running or succeeded jobs of the same request (ids, oldest first)."""
        rows = self.db.execute(
            "SELECT id FROM jobs WHERE request_hash = ? AND state IN "
            "('queued', 'running', 'succeeded') ORDER BY id",
            (request_hash,),
        )
        return [int(r[0]) for r in rows]

    def active_count(self) -> int:
        """Running jobs whose lease is still valid."""
        rows = self.db.execute(
            f"SELECT COUNT(*) FROM jobs WHERE state = 'running' AND lease_expires_at >= "
            f"{self.db.now_sql}"
        )
        return int(rows[0][0])

    # -- the worker's side -----------------------------------------------------------------

    def claim(self, owner: str, *, lease_seconds: float, max_active: int) -> Claim | None:
        """Take the next job atomically: the highest priority, then the oldest, among queued
        jobs and running jobs whose lease expired (a dead worker's: ``attempt + 1``). None
        when nothing is claimable or ``max_active`` jobs already run. A reclaimed job out of
        attempts ends ``failed``; a damaged row ends ``failed`` naming why (the queue goes
        on)."""
        db = self.db
        lease_ms = int(lease_seconds * 1000)
        with db.transaction(claim=True):
            if self.active_count() >= max_active:
                return None
            while True:
                lock = " FOR UPDATE SKIP LOCKED" if db.name == "postgresql" else ""
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE state = 'queued' OR (state = 'running' "
                    f"AND (lease_expires_at IS NULL OR lease_expires_at < {db.now_sql})) "
                    f"ORDER BY priority DESC, submitted_at, id LIMIT 1{lock}"
                )
                if not rows:
                    return None
                job = _job(rows[0])
                if job.damaged is not None or job.kind not in ("grid", "backtest"):
                    why = job.damaged or f"the job's row is damaged (unknown kind {job.kind!r})"
                    self._end(job.id, "failed", why)
                    self._event(job.id, job.attempt, "error", f"failed: {why}")
                    continue
                reclaimed = job.state == "running"
                if job.cancel_requested:  # asked while its worker was alive: cancelled
                    self._end(job.id, "cancelled", None)
                    self._event(
                        job.id, job.attempt, "info", "cancelled (its worker stopped before)"
                    )
                    continue
                if reclaimed and job.attempt >= job.max_attempts:
                    why = (
                        f"its worker stopped answering (lease expired) on attempt "
                        f"{job.attempt} of {job.max_attempts}"
                    )
                    self._end(job.id, "failed", why)
                    self._event(job.id, job.attempt, "error", f"failed: {why}")
                    continue
                db.execute(
                    "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?, "
                    f"lease_expires_at = {db.now_sql} + ?, heartbeat_at = {db.now_sql}, "
                    f"started_at = COALESCE(started_at, {db.now_sql}) WHERE id = ?",
                    (owner, lease_ms, job.id),
                )
                claimed = self.get(job.id)
                note = (
                    f"reclaimed by {owner} (attempt {claimed.attempt}; the previous worker's "
                    "lease expired)"
                    if reclaimed
                    else f"claimed by {owner} (attempt {claimed.attempt})"
                )
                self._event(job.id, claimed.attempt, "info", note)
                return Claim(claimed, owner, resumed=reclaimed or claimed.attempt > 1)

    def _lease_sql(self) -> str:
        return "id = ? AND lease_owner = ? AND attempt = ? AND state = 'running'"

    def heartbeat(self, claim: Claim, lease_seconds: float) -> tuple[bool, bool]:
        """Extend the lease; ``(still ours, cancel requested)``."""
        db = self.db
        with db.transaction():
            db.execute(
                f"UPDATE jobs SET heartbeat_at = {db.now_sql}, lease_expires_at = "
                f"{db.now_sql} + ? WHERE {self._lease_sql()}",
                (int(lease_seconds * 1000), claim.job.id, claim.owner, claim.attempt),
            )
            rows = db.execute(
                "SELECT lease_owner, attempt, state, cancel_requested FROM jobs WHERE id = ?",
                (claim.job.id,),
            )
        if not rows:
            return False, False
        owner, attempt, state, cancel = rows[0]
        ours = owner == claim.owner and attempt == claim.attempt and state == "running"
        return ours, bool(cancel)

    def report(
        self,
        claim: Claim,
        *,
        stage: str | None,
        processed: int | None,
        total: int | None,
        checkpoint: bytes | None = None,
        topk: list[dict[str, Any]] | None = None,
    ) -> str:
        """Progress, and with it the checkpoint and the best-so-far top-K, in one
        transaction (the worker calls it at batch boundaries, throttled). Returns ``ok``,
        ``cancel`` (written; a cancel was asked) or ``lost`` (the lease is no longer ours:
        nothing written)."""
        db = self.db
        key = (claim.job.id, claim.owner, claim.attempt)
        with db.transaction():
            rows = db.execute(f"SELECT cancel_requested FROM jobs WHERE {self._lease_sql()}", key)
            if not rows:
                return "lost"
            db.execute(
                f"UPDATE jobs SET stage = ?, processed = ?, total = ?, progress_at = {db.now_sql} "
                "WHERE id = ?",
                (stage, processed, total, claim.job.id),
            )
            if checkpoint is not None:
                self._upsert(
                    "job_checkpoints",
                    ("job_id", "attempt", "data"),
                    (claim.job.id, claim.attempt, checkpoint.decode("utf-8")),
                )
            if topk is not None:
                self._upsert(
                    "job_topk",
                    ("job_id", "attempt", "final", "rows_json"),
                    (claim.job.id, claim.attempt, 0, json.dumps(topk, sort_keys=True)),
                )
        return "cancel" if rows[0][0] else "ok"

    def _upsert(self, table: str, columns: Sequence[str], values: Sequence[Any]) -> None:
        db = self.db
        names = ", ".join((*columns, "updated_at"))
        marks = ", ".join(["?"] * len(columns) + [db.now_sql])
        updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns[1:], "updated_at"))
        db.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}",
            values,
        )

    def succeed(
        self,
        claim: Claim,
        result: dict[str, Any],
        topk: list[dict[str, Any]],
        files: dict[str, bytes],
    ) -> bool:
        """The job's result, its final top-K and its output files, and ``succeeded``, in one
        transaction; False (nothing written) when the lease is no longer ours."""
        db = self.db
        key = (claim.job.id, claim.owner, claim.attempt)
        with db.transaction():
            if not db.execute(f"SELECT id FROM jobs WHERE {self._lease_sql()}", key):
                return False
            db.execute("DELETE FROM job_files WHERE job_id = ?", (claim.job.id,))
            for name, data in sorted(files.items()):
                db.execute(
                    "INSERT INTO job_files (job_id, name, sha256, data) VALUES (?, ?, ?, ?)",
                    (claim.job.id, name, hash_bytes(data), data),
                )
            self._upsert(
                "job_topk",
                ("job_id", "attempt", "final", "rows_json"),
                (claim.job.id, claim.attempt, 1, json.dumps(topk, sort_keys=True)),
            )
            db.execute(
                "UPDATE jobs SET result_json = ?, stage = 'finalizing', processed = total "
                "WHERE id = ?",
                (json.dumps(result, sort_keys=True), claim.job.id),
            )
            self._end(claim.job.id, "succeeded", None)
            # an earlier attempt's error stays in the log, not on a job that succeeded
            db.execute("UPDATE jobs SET last_error = NULL WHERE id = ?", (claim.job.id,))
            self._event(claim.job.id, claim.attempt, "info", "succeeded")
        return True

    def stop(self, claim: Claim, state: str, error: str | None, *, counted: bool = True) -> bool:
        """End the claimed attempt: ``cancelled``, ``failed`` (with ``error``), or ``queued``
        (released: another worker takes it, resuming from its checkpoint; ``counted=False``
        gives the attempt back - a worker stopped by its user). False (nothing written) when
        the lease is no longer ours."""
        db = self.db
        key = (claim.job.id, claim.owner, claim.attempt)
        with db.transaction():
            if not db.execute(f"SELECT id FROM jobs WHERE {self._lease_sql()}", key):
                return False
            if state == "queued":
                db.execute(
                    "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = "
                    "NULL, last_error = ?, attempt = attempt - ? WHERE id = ?",
                    (error, 0 if counted else 1, claim.job.id),
                )
            else:
                self._end(claim.job.id, state, error)
            level = "error" if state == "failed" else "info"
            self._event(
                claim.job.id, claim.attempt, level, f"{state}" + (f": {error}" if error else "")
            )
        return True

    def _end(self, job_id: int, state: str, error: str | None) -> None:
        db = self.db
        db.execute(
            f"UPDATE jobs SET state = ?, finished_at = {db.now_sql}, lease_owner = NULL, "
            "lease_expires_at = NULL, last_error = COALESCE(?, last_error) WHERE id = ?",
            (state, error, job_id),
        )

    def log(self, claim: Claim, message: str, level: str = "info") -> None:
        """A line of the job's log (``jobs logs``)."""
        self._event(claim.job.id, claim.attempt, level, message)

    def _event(self, job_id: int, attempt: int, level: str, message: str) -> None:
        db = self.db
        db.execute(
            f"INSERT INTO job_events (job_id, at, attempt, level, message) VALUES "
            f"(?, {db.now_sql}, ?, ?, ?)",
            (job_id, attempt, level, message),
        )

    # -- the user's side -------------------------------------------------------------------

    def cancel(self, job_id: int) -> Job:
        """Cancel a job, idempotently: queued -> ``cancelled`` at once; running -> asked (its
        worker stops at the next batch boundary and ends it ``cancelled``); a finished job is
        left as it is. Returns the job after the change.

        Raises:
            ItaVcError: no such job.
        """
        db = self.db
        with db.transaction():
            job = self.get(job_id)
            if job.state == "queued" or (job.state not in FINAL_STATES and job.damaged):
                self._end(job_id, "cancelled", None)
                self._event(job_id, job.attempt, "info", "cancelled while queued")
            elif job.state == "running" and not job.cancel_requested:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._event(
                    job_id, job.attempt, "info", "cancel requested: stopping at the next batch"
                )
        return self.get(job_id)

    def checkpoint(self, job_id: int) -> dict[str, Any] | None:
        """The job's last grid checkpoint document, or None (none, or unreadable)."""
        rows = self.db.execute("SELECT data FROM job_checkpoints WHERE job_id = ?", (job_id,))
        if not rows:
            return None
        try:
            saved = json.loads(rows[0][0])
        except (ValueError, TypeError, RecursionError):
            return None
        return saved if isinstance(saved, dict) else None

    def topk(self, job_id: int) -> tuple[list[dict[str, Any]], bool, int] | None:
        """``(rows, final, attempt)`` of the job's top-K as last written, or None.

        Raises:
            JobStoreError: the stored rows are damaged.
        """
        rows = self.db.execute(
            "SELECT rows_json, final, attempt FROM job_topk WHERE job_id = ?", (job_id,)
        )
        if not rows:
            return None
        try:
            data = json.loads(rows[0][0])
        except (ValueError, TypeError, RecursionError) as exc:
            raise JobStoreError(
                f"{self.where}: job {job_id}: its top-K is damaged ({exc})"
            ) from exc
        if not isinstance(data, list):
            raise JobStoreError(f"{self.where}: job {job_id}: its top-K is damaged (not a list)")
        return data, bool(rows[0][1]), int(rows[0][2])

    def files(self, job_id: int) -> dict[str, bytes]:
        """The result's output files (relative names -> bytes), each checked against its
        sha256.

        Raises:
            JobStoreError: a file does not match its recorded hash.
        """
        found = {}
        for name, sha, data in self.db.execute(
            "SELECT name, sha256, data FROM job_files WHERE job_id = ? ORDER BY name", (job_id,)
        ):
            blob = bytes(data)
            if hash_bytes(blob) != sha:
                raise JobStoreError(
                    f"{self.where}: job {job_id}: the stored output {name} does not match its "
                    "sha256 (damaged)"
                )
            found[str(name)] = blob
        return found

    def events(self, job_id: int) -> list[tuple[int, int, str, str]]:
        """The job's log: ``(at, attempt, level, message)`` in order."""
        return [
            (int(at), int(attempt), str(level), str(message))
            for at, attempt, level, message in self.db.execute(
                "SELECT at, attempt, level, message FROM job_events WHERE job_id = ? ORDER BY id",
                (job_id,),
            )
        ]


def open_job_store(url: str | None, default_path: Path, *, timeout: float = 10.0) -> JobStore:
    """The job store: SQLite at ``default_path`` (no ``url``) or the PostgreSQL server of
    ``url`` (``postgresql://`` or ``postgres://``).

    Raises:
        JobStoreError: unreachable, login refused, or migrated by a newer ita-vc.
        ConfigError: an unsupported URL scheme.
    """
    from ita_vc.errors import ConfigError

    if url is None:
        return JobStore(_Sqlite(default_path), str(default_path))
    if url.startswith(("postgresql://", "postgres://")):
        return JobStore(_Postgres(url, timeout), redact_url(url))
    raise ConfigError(
        f"jobs.url: {redact_url(url)!r}: use postgresql://user@host:port/database (or leave it "
        "out for .ita/jobs.sqlite)"
    )
