"""The S3 test server itself: DVC's own S3 remote pushes to and pulls from it with the
configured keys, refuses a wrong secret, and the hanging listener never answers."""

from __future__ import annotations

import hashlib
import socket

import botocore.exceptions
import pytest

from tests.helpers import TmpRepo, run
from tests.s3server import S3Server, configure_s3_remote, hanging_listener, set_s3_credentials

PAYLOAD = bytes(range(256)) * 64 + b"tail"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.mark.slow
def test_dvc_push_lands_objects_and_pull_in_a_clone_is_bit_exact(
    tmp_repo: TmpRepo, s3_server: S3Server, s3_bucket: str, tmp_path
) -> None:
    tmp_repo.dvc_gen({"data/blob.bin": PAYLOAD})
    configure_s3_remote(tmp_repo, "team", f"s3://{s3_bucket}/store", s3_server)
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "data + team remote")
    committed = (tmp_repo / ".dvc/config").read_text()
    assert s3_server.endpoint in committed
    assert s3_server.secret_access_key not in committed
    assert s3_server.access_key_id not in committed
    assert s3_server.secret_access_key in (tmp_repo / ".dvc/config.local").read_text()
    assert ".dvc/config.local" not in tmp_repo.git("ls-files").stdout

    tmp_repo.dvc("push", "-q", "data/blob.bin.dvc")

    digest = _md5(PAYLOAD)
    assert f"store/files/md5/{digest[:2]}/{digest[2:]}" in s3_server.list_keys(s3_bucket)

    clone = TmpRepo(tmp_path / "clone")
    run(["git", "clone", "-q", str(tmp_repo), str(clone)], cwd=tmp_path)
    assert not (clone / "data/blob.bin").exists()
    set_s3_credentials(clone, "team", s3_server)
    # the target only: the template's pipeline outputs were never produced, so never pushed
    clone.dvc("pull", "-q", "data/blob.bin.dvc")
    assert (clone / "data/blob.bin").read_bytes() == PAYLOAD


def test_a_wrong_secret_is_refused_and_pushes_nothing(
    tmp_repo: TmpRepo, s3_server: S3Server, s3_bucket: str
) -> None:
    tmp_repo.dvc_gen({"data/blob.bin": PAYLOAD})
    configure_s3_remote(tmp_repo, "team", f"s3://{s3_bucket}/store", s3_server)
    set_s3_credentials(tmp_repo, "team", s3_server, secret_access_key="not-the-secret")

    proc = tmp_repo.dvc("push", "data/blob.bin.dvc", check=False)

    assert proc.returncode != 0
    # dvc's first request is a HEAD (no body, so no error code): it says 403 Forbidden
    assert "403" in proc.stderr
    assert "Forbidden" in proc.stderr
    assert "not-the-secret" not in proc.stdout + proc.stderr
    assert s3_server.list_keys(s3_bucket) == []
    # a request with a body names the cause
    with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
        s3_server.client(secret_access_key="not-the-secret").list_objects_v2(Bucket=s3_bucket)


def test_the_hanging_listener_accepts_and_never_answers() -> None:
    with (
        hanging_listener() as port,
        socket.create_connection(("127.0.0.1", port), timeout=2) as conn,
    ):
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)
