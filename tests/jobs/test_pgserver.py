"""The PostgreSQL test server is real: fresh databases, row locks, SKIP LOCKED."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from tests import pgserver


def test_fresh_database_accepts_connections(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    assert parts.password == pgserver.PASSWORD
    assert parts.path.startswith("/jobs_")
    with psycopg.connect(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None and name[0] == parts.path[1:]
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_skip_locked_across_two_connections(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE queue (id int PRIMARY KEY, state text NOT NULL)")
        setup.execute("INSERT INTO queue VALUES (1, 'queued'), (2, 'queued')")
    claim = "SELECT id FROM queue WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with psycopg.connect(pg_url) as first, psycopg.connect(pg_url) as second:
        assert first.execute(claim).fetchone() == (1,)  # row 1 locked, transaction open
        assert second.execute(claim).fetchone() == (2,)  # row 1 is skipped, not waited for
        assert (
            second.execute("SELECT id FROM queue WHERE id = 1 FOR UPDATE SKIP LOCKED").fetchone()
            is None
        )
        first.rollback()
        second.rollback()
        assert second.execute(claim).fetchone() == (1,)  # released with the transaction


def test_each_test_database_is_distinct_and_dropped(pg_server: str) -> None:
    with pgserver.fresh_database(pg_server) as one, pgserver.fresh_database(pg_server) as two:
        names = [urlsplit(url).path[1:] for url in (one, two)]
        assert names[0] != names[1]
        with psycopg.connect(one) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
        with psycopg.connect(two) as conn:
            assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
        leftover = psycopg.connect(two)  # an open connection does not block the drop
    with psycopg.connect(pg_server) as admin:
        found = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchone()
    assert found == (0,)
    leftover.close()
