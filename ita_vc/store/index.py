"""The SQLite metadata index: one row per stored artifact, a derived cache of the workspace.

Git and DVC files are the source of truth; this index only makes listing and lookup fast, and
``ita-vc index rebuild`` recreates it from the files. Concurrency: WAL journal, a 60 s busy
timeout, ``BEGIN IMMEDIATE`` write transactions, and a file lock around writers, so several
processes saving at once neither lose rows nor see ``database is locked``.
A new database is built in a temp file and moved into place, so a reader never sees a
half-created schema; applied migrations are recorded in ``schema_migrations``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from ita_vc.errors import IndexCorruptError, PersistentStoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "MIGRATIONS",
    "RUN_COLUMNS",
    "TABLE_COLUMNS",
    "IndexRow",
    "MetadataIndex",
    "utc_now_iso",
]

_BUSY_TIMEOUT_S = 60.0

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "artifacts",
        """
        CREATE TABLE artifacts (
            file_id TEXT PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            format TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            symbol TEXT,
            timeframe TEXT,
            run_id TEXT,
            rule_version TEXT,
            created_at TEXT NOT NULL,
            meta_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX artifacts_sha256 ON artifacts (sha256);
        CREATE INDEX artifacts_kind ON artifacts (kind);
        CREATE INDEX artifacts_run_id ON artifacts (run_id);
        CREATE INDEX artifacts_symbol ON artifacts (symbol, timeframe);
        """,
    ),
    (
        2,
        "runs",
        """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            setup_id TEXT,
            rule_version TEXT,
            config_hash TEXT,
            git_commit TEXT,
            run_mode TEXT,
            snapshot_path TEXT NOT NULL,
            snapshot_sha256 TEXT NOT NULL,
            metrics_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX runs_setup ON runs (setup_id, rule_version);
        """,
    ),
    (
        3,
        "cache_objects",
        """
        CREATE TABLE cache_objects (
            oid TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            class TEXT,
            size INTEGER NOT NULL,
            status TEXT NOT NULL,
            changed_at TEXT NOT NULL
        );
        """,
    ),
    (
        4,
        "run_links",
        """
        CREATE TABLE run_artifacts (
            run_id TEXT NOT NULL,
            path TEXT NOT NULL,
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (run_id, path)
        );
        CREATE INDEX run_artifacts_sha256 ON run_artifacts (sha256);
        CREATE INDEX run_artifacts_path ON run_artifacts (path);
        CREATE TABLE run_inputs (
            run_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            PRIMARY KEY (run_id, kind, ref)
        );
        CREATE INDEX run_inputs_ref ON run_inputs (kind, ref);
        """,
    ),
    (
        5,
        "rules",
        """
        CREATE TABLE rules (
            id TEXT PRIMARY KEY,
            setup_id TEXT NOT NULL,
            version TEXT NOT NULL,
            file_path TEXT NOT NULL,
            author TEXT,
            active INTEGER NOT NULL,
            created_at TEXT,
            params_hash TEXT NOT NULL
        );
        CREATE INDEX rules_setup ON rules (setup_id, version);
        """,
    ),
    (
        6,
        "presets",
        """
        CREATE TABLE presets (
            name TEXT PRIMARY KEY,
            file_path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            created_at TEXT,
            source TEXT,
            values_json TEXT NOT NULL
        );
        """,
    ),
    (
        7,
        "feature_cache",
        """
        CREATE TABLE feature_cache (
            feature_hash TEXT PRIMARY KEY,
            candle_hash TEXT NOT NULL,
            indicator TEXT NOT NULL,
            params_json TEXT NOT NULL,
            code_version TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            last_used_at TEXT NOT NULL
        );
        CREATE INDEX feature_cache_used ON feature_cache (last_used_at);
        """,
    ),
)

#: the columns of the tables added for run records, rules, presets and the feature cache
#: (written and read through :meth:`MetadataIndex.replace_rows` / ``upsert_rows`` / ``rows``)
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "run_artifacts": ("run_id", "path", "name", "sha256", "size", "mime", "source"),
    "run_inputs": ("run_id", "kind", "ref"),
    "rules": (
        "id",
        "setup_id",
        "version",
        "file_path",
        "author",
        "active",
        "created_at",
        "params_hash",
    ),
    "presets": ("name", "file_path", "sha256", "created_at", "source", "values_json"),
    "feature_cache": (
        "feature_hash",
        "candle_hash",
        "indicator",
        "params_json",
        "code_version",
        "path",
        "sha256",
        "size",
        "created_at",
        "last_used_at",
    ),
}

RUN_COLUMNS = (
    "run_id",
    "status",
    "created_at",
    "setup_id",
    "rule_version",
    "config_hash",
    "git_commit",
    "run_mode",
    "snapshot_path",
    "snapshot_sha256",
    "metrics_json",
)
_INSERT_RUN = (
    f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
)

_COLUMNS = (
    "file_id",
    "path",
    "kind",
    "format",
    "sha256",
    "size",
    "symbol",
    "timeframe",
    "run_id",
    "rule_version",
    "created_at",
    "meta_json",
)

# column names are constants, values are bound parameters
_INSERT = (
    f"INSERT OR REPLACE INTO artifacts ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)


def utc_now_iso() -> str:
    """Current UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One artifact row of the index."""

    file_id: str
    path: str
    kind: str
    format: str
    sha256: str
    size: int
    symbol: str | None
    timeframe: str | None
    run_id: str | None
    rule_version: str | None
    created_at: str
    meta_json: str

    def to_dict(self) -> dict[str, str | int | None]:
        """The row as a plain mapping."""
        return {name: getattr(self, name) for name in _COLUMNS}

    def values(self) -> tuple[str | int | None, ...]:
        """Column values in table order."""
        return tuple(getattr(self, name) for name in _COLUMNS)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(os.fspath(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, name, sql in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, utc_now_iso())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class MetadataIndex:
    """The SQLite artifact index at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    # -- connection management -------------------------------------------------------------
    def _write_lock(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(os.fspath(self._lock_path), timeout=_BUSY_TIMEOUT_S)

    def _create(self) -> None:
        """Build a fresh, migrated database in a temp file and move it into place."""
        fd, name = tempfile.mkstemp(prefix=".index.", suffix=".sqlite", dir=self.path.parent)
        os.close(fd)
        try:
            with contextlib.closing(_connect(Path(name))) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                _migrate(conn)
            os.replace(name, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _ensure(self) -> None:
        if self.path.exists():
            return
        with self._write_lock():
            if not self.path.exists():
                self._create()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            self._ensure()
            with contextlib.closing(_connect(self.path)) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                if versions != {m[0] for m in MIGRATIONS}:
                    with self._write_lock():
                        _migrate(conn)
                yield conn
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"the metadata index cannot be read ({exc}); it is a cache: "
                "run `ita-vc index rebuild` to recreate it from the workspace",
                path=str(self.path),
            ) from exc
        except OSError as exc:
            raise PersistentStoreError(
                f"cannot open the metadata index: {exc.strerror or exc}", path=str(self.path)
            ) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn, self._write_lock():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, row: IndexRow) -> None:
        """Insert or replace the row for ``row.path``."""
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM artifacts WHERE path = ? AND file_id != ?", (row.path, row.file_id)
            )
            conn.execute(
                _INSERT,
                row.values(),
            )

    def delete(self, path: str) -> bool:
        """Remove the row of ``path``; True if there was one."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM artifacts WHERE path = ?", (path,)).rowcount > 0

    def upsert_run(self, run: Mapping[str, object]) -> None:
        """Insert or replace a row of the runs table (keys: :data:`RUN_COLUMNS`)."""
        with self._transaction() as conn:
            conn.execute(_INSERT_RUN, tuple(run.get(c) for c in RUN_COLUMNS))

    def delete_run(self, run_id: str) -> bool:
        """Remove a row of the runs table; True if there was one."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0

    @staticmethod
    def _table(table: str) -> tuple[str, ...]:
        if table not in TABLE_COLUMNS:
            raise ValueError(f"unknown index table {table!r}")
        return TABLE_COLUMNS[table]

    def upsert_rows(self, table: str, rows: Iterable[Mapping[str, object]]) -> int:
        """Insert or replace ``rows`` (mappings of :data:`TABLE_COLUMNS` ``[table]``) in one
        transaction; the number written."""
        columns = self._table(table)
        sql = (
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        values = [tuple(row.get(c) for c in columns) for row in rows]
        with self._transaction() as conn:
            conn.executemany(sql, values)
        return len(values)

    def replace_rows(
        self,
        table: str,
        rows: Iterable[Mapping[str, object]],
        where: Mapping[str, str | int] | None = None,
    ) -> int:
        """Delete the rows of ``table`` matching ``where`` (all of them when None) and insert
        ``rows``, in one transaction (a reader sees the old rows or the new ones)."""
        columns = self._table(table)
        clauses = []
        for column in where or {}:
            if column not in columns:
                raise ValueError(f"unknown {table} column {column!r}")
            clauses.append(f"{column} = ?")
        delete = f"DELETE FROM {table}" + (  # noqa: S608
            f" WHERE {' AND '.join(clauses)}" if clauses else ""
        )
        insert = (
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        values = [tuple(row.get(c) for c in columns) for row in rows]
        with self._transaction() as conn:
            conn.execute(delete, tuple((where or {}).values()))
            conn.executemany(insert, values)
        return len(values)

    def delete_rows(self, table: str, **where: str | int) -> int:
        """Delete the rows of ``table`` matching every ``column=value``; how many."""
        columns = self._table(table)
        if not where or any(c not in columns for c in where):
            raise ValueError(f"delete_rows needs known {table} columns: {sorted(where)}")
        sql = f"DELETE FROM {table} WHERE " + " AND ".join(  # noqa: S608
            f"{c} = ?" for c in where
        )
        with self._transaction() as conn:
            return conn.execute(sql, tuple(where.values())).rowcount

    def rows(
        self, table: str, order: str | None = None, **filters: str | int | None
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` matching every non-None ``column=value`` filter, ordered by
        ``order`` (a column name; the first column by default)."""
        columns = self._table(table)
        order = order or columns[0]
        if order not in columns:
            raise ValueError(f"unknown {table} column {order!r}")
        return [
            dict(zip(columns, row, strict=True))
            for row in self._select(table, columns, order, filters)
        ]

    def check(self) -> None:
        """Open the index (creating it when missing) and read its schema: a command that will
        write it calls this before any other side effect.

        Raises:
            IndexCorruptError: not a readable SQLite index (``ita-vc index rebuild`` cures it).
            PersistentStoreError: it cannot be opened.
        """
        with self._connection() as conn:
            conn.execute("SELECT COUNT(*) FROM runs").fetchone()

    def runs(self, **filters: str | int | None) -> list[dict[str, Any]]:
        """Rows of the runs table matching the filters, oldest first."""
        rows = self._select("runs", RUN_COLUMNS, "created_at, run_id", filters)
        return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in rows]

    def mark_object(self, oid: str, *, path: str, cls: str | None, size: int, status: str) -> None:
        """Record a DVC cache object's retention status (trashed, purged, restored, archived)."""
        self.mark_objects([(oid, path, cls, size)], status)

    def mark_objects(self, objects: list[tuple[str, str, str | None, int]], status: str) -> None:
        """:meth:`mark_object` for many ``(oid, path, class, size)`` in one transaction."""
        now = utc_now_iso()
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO cache_objects VALUES (?, ?, ?, ?, ?, ?)",
                [(o, p, c, s, status, now) for o, p, c, s in objects],
            )

    def objects(self, status: str | None = None) -> list[dict[str, Any]]:
        """Cache objects the retention machinery touched (optionally with one status)."""
        sql = "SELECT oid, path, class, size, status, changed_at FROM cache_objects"
        params: list[str] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        with self._connection() as conn:
            cols = ("oid", "path", "class", "size", "status", "changed_at")
            return [
                dict(zip(cols, row, strict=True))
                for row in conn.execute(sql + " ORDER BY oid", params)
            ]

    def replace_all(
        self, rows: Iterable[IndexRow], runs: Iterable[Mapping[str, object]] = ()
    ) -> int:
        """Recreate the whole index from ``rows`` and ``runs`` (built aside, then moved into
        place)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".index.", suffix=".sqlite", dir=self.path.parent)
        os.close(fd)
        count = 0
        try:
            with contextlib.closing(_connect(Path(name))) as conn:
                _migrate(conn)
                conn.execute("BEGIN IMMEDIATE")
                for row in rows:
                    conn.execute(
                        _INSERT,
                        row.values(),
                    )
                    count += 1
                for run in runs:
                    conn.execute(_INSERT_RUN, tuple(run.get(c) for c in RUN_COLUMNS))
                conn.execute("COMMIT")
                conn.execute("PRAGMA journal_mode = WAL")
            with self._write_lock():
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"{self.path}{suffix}")
                os.replace(name, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return count

    # -- reads -----------------------------------------------------------------------------
    def get(self, path: str) -> IndexRow | None:
        """The row of ``path``, if indexed."""
        rows = self.query(path=path)
        return rows[0] if rows else None

    def _select(
        self,
        table: str,
        columns: tuple[str, ...],
        order: str,
        filters: Mapping[str, str | int | None],
    ) -> list[tuple[Any, ...]]:
        """Rows of ``table`` matching every non-None column filter."""
        clauses, params = [], []
        for column, value in filters.items():
            if column not in columns:
                raise ValueError(f"unknown {table} column {column!r}")
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {order}"  # noqa: S608
        with self._connection() as conn:
            return list(conn.execute(sql, params))

    def query(self, **filters: str | int | None) -> list[IndexRow]:
        """Rows matching every given column filter (``None`` filters are ignored), by path."""
        return [IndexRow(*row) for row in self._select("artifacts", _COLUMNS, "path", filters)]

    def duplicates(self) -> dict[str, list[str]]:
        """Content stored at more than one path: ``{sha256: [paths]}``."""
        sql = (
            "SELECT sha256, path FROM artifacts WHERE sha256 IN "
            "(SELECT sha256 FROM artifacts GROUP BY sha256 HAVING COUNT(*) > 1) "
            "ORDER BY sha256, path"
        )
        found: dict[str, list[str]] = {}
        with self._connection() as conn:
            for sha, path in conn.execute(sql):
                found.setdefault(sha, []).append(path)
        return found

    def migrations(self) -> list[Mapping[str, str | int]]:
        """The applied migrations (version, name, applied_at)."""
        with self._connection() as conn:
            rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations")
            return [{"version": v, "name": n, "applied_at": a} for v, n, a in rows]
