"""A real S3-compatible server on localhost for the team-remote tests and benchmarks.

:class:`S3Server` starts moto's standalone server (the venv's ``moto_server``, from the dev
dependency ``moto[server]``) on a free port of 127.0.0.1 with its IAM authentication enabled:
the first few requests (creating a user, its allow-all policy and its access key through moto's
IAM API) are the only unauthenticated ones, so every later request must be signed with those
keys, and a wrong secret is refused (``SignatureDoesNotMatch``) as by a real object store.

No pytest import here: the benchmarks use this module too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
USER = "ita-vc-test"
# the unauthenticated requests the setup makes: create_user, put_user_policy, create_access_key
SETUP_CALLS = 3
_ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """moto's S3 server on ``127.0.0.1:<free port>`` with IAM auth on (a context manager).

    After ``__enter__``: :attr:`endpoint` (``http://127.0.0.1:PORT``), :attr:`access_key_id`
    and :attr:`secret_access_key` (the only keys it accepts). Its output goes to
    ``<tmp>/moto.log``; a server that does not answer within ``startup_timeout`` seconds raises
    ``RuntimeError`` with the tail of that log.
    """

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.endpoint = ""
        self.access_key_id = ""
        self.secret_access_key = ""
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout + stderr)."""
        assert self._tmp is not None, "the server is not started"
        return self._tmp / "moto.log"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server, wait until it answers, create the IAM user and its keys."""
        self._tmp = Path(tempfile.mkdtemp(prefix="ita-vc-s3server-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS),
            "AWS_DEFAULT_REGION": REGION,
            "MOTO_PORT": str(self.port),
        }
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(key, None)
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        try:
            self._wait_ready()
            self._create_keys()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited {self._proc.returncode} on start\n{self.log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"moto_server did not answer on {self.endpoint} within "
                    f"{self.startup_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _answers(self) -> bool:
        # a GET of moto's dashboard API is not an action: it does not use up a no-auth call
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/moto-api/data.json")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def _create_keys(self) -> None:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName=USER)
        iam.put_user_policy(UserName=USER, PolicyName="allow-all", PolicyDocument=_ALLOW_ALL)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop) and remove its temp dir."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def client(self, *, secret_access_key: str | None = None) -> Any:
        """A boto3 S3 client signed with the server's keys (or another secret, to test refusal)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            config=Config(retries={"max_attempts": 2}),
        )

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (3-63 lowercase characters) with the real keys; returns it."""
        if len(name) < 3:
            raise ValueError(f"bucket name {name!r}: S3 needs at least 3 characters")
        self.client().create_bucket(Bucket=name)
        return name

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key of ``bucket`` under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)


@contextlib.contextmanager
def hanging_listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers; yields its port.

    A daemon thread accepts and holds the sockets (so clients see a connected peer that stays
    silent); everything is closed on exit.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, name="hanging-listener", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
        for conn in held:
            conn.close()


def configure_s3_remote(
    repo_root: Path | str,
    name: str,
    url: str,
    server: S3Server,
    *,
    default: bool = True,
) -> None:
    """Add DVC remote ``name`` -> ``url`` (``s3://bucket/prefix``) on ``server`` in a repo.

    The endpoint goes to the committed ``.dvc/config``; the keys only to ``.dvc/config.local``
    (``dvc remote modify --local``, a file DVC keeps out of git).
    """
    _dvc(repo_root, "remote", "add", *(["-d"] if default else []), name, url)
    _dvc(repo_root, "remote", "modify", name, "endpointurl", server.endpoint)
    set_s3_credentials(repo_root, name, server)


def set_s3_credentials(
    repo_root: Path | str,
    name: str,
    server: S3Server,
    *,
    secret_access_key: str | None = None,
) -> None:
    """Write the keys of ``server`` (or another secret) for DVC remote ``name`` into the repo's
    ``.dvc/config.local`` only: what a fresh clone of a repo with a configured remote needs."""
    secret = secret_access_key or server.secret_access_key
    _dvc(repo_root, "remote", "modify", "--local", name, "access_key_id", server.access_key_id)
    _dvc(repo_root, "remote", "modify", "--local", name, "secret_access_key", secret)


def _dvc(repo_root: Path | str, *args: str) -> None:
    cmd = [str(VENV_BIN / "dvc"), *args]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shown = [*cmd[:-1], "***"] if "secret_access_key" in args else cmd  # never a secret
        raise RuntimeError(f"{shown} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
