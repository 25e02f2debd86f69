"""A real PostgreSQL server for the tests: ``scripts/postgres.sh`` (Debian's package, started
as the postgres user on a throw-away data directory), one fresh database per test.

A test that needs the server and cannot reach it - even after trying to start it once - fails;
it never skips (issue #18). ``make pg-start`` starts it by hand; ``.ci/run`` does it on CI.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import REPO_ROOT

PASSWORD = os.environ.get("PGPASSWORD", "ita_vc")
BASE_URL = os.environ.get(
    "ITA_VC_TEST_PG_URL",
    f"postgresql://ita_vc@127.0.0.1:{os.environ.get('ITA_VC_PG_PORT', '54329')}/postgres",
)


def _with_password(url: str, database: str | None = None) -> str:
    """``url`` with the test password (and another database)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    parts.setdefault("password", PASSWORD)
    if database is not None:
        parts["dbname"] = database
    user, host = parts.get("user", "ita_vc"), parts.get("host", "127.0.0.1")
    port, name = parts.get("port", "5432"), parts.get("dbname", "postgres")
    return f"postgresql://{user}:{parts['password']}@{host}:{port}/{name}"


def _reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def server_url() -> str:
    """The server's URL (with the password), starting it once if it does not answer.

    Fails the test (never skips) when it cannot be reached.
    """
    url = _with_password(BASE_URL)
    why = _reachable(url)
    if why is None:
        return url
    script = REPO_ROOT / "scripts" / "postgres.sh"
    started = subprocess.run([str(script), "start"], capture_output=True, text=True, check=False)
    why = _reachable(url)
    if why is not None:
        pytest.fail(
            f"no PostgreSQL server at {BASE_URL} ({why}); `make pg-start` starts one "
            f"(scripts/postgres.sh said: {started.stdout.strip()} {started.stderr.strip()})",
            pytrace=False,
        )
    return url


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new empty database on the server of ``url``; dropped afterwards."""
    import psycopg

    name = f"jobs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_password(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
