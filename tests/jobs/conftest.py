"""Fixtures of the jobs tests: a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import pytest

from tests.pgserver import fresh_database, server_url


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server's URL with its password (started if needed; fails if absent)."""
    return server_url()


@pytest.fixture
def pg_url(pg_server: str):
    """A fresh, empty database on the server (dropped after the test), as a URL."""
    with fresh_database(pg_server) as url:
        yield url
