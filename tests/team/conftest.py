"""Fixtures of the team tests: one real S3 server (moto, IAM auth on) per session, a fresh
bucket per test, and no AWS credentials or profiles of the machine leaking in."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from tests.s3server import S3Server

_AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
_BUCKETS = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_machine_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the keys a test configures reach DVC/boto: no env keys, profiles or EC2 metadata."""
    for key in _AWS_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_server(_session_env: None) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with IAM auth (started on first use, once per session).

    ``.endpoint``, ``.access_key_id``, ``.secret_access_key``, ``.bucket(name)``,
    ``.client()``, ``.list_keys(bucket, prefix="")``. A server that cannot start fails the test.
    """
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, uniquely named, empty bucket on ``s3_server`` (its name)."""
    return s3_server.bucket(f"ita-vc-t{next(_BUCKETS)}-{uuid.uuid4().hex[:8]}")
