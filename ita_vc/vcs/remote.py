"""DVC remotes at the object level: what ``ita-vc push/pull/clone``, ``gc --cloud`` and
``snapshot verify --remote`` need, through DVC's own remote object databases (``dvc-s3`` for
S3-compatible stores, any other DVC remote alike).

Every remote is opened through :func:`open_remote`, which

* resolves the name (``core.remote`` when none is given) with DVC's config, credentials
  included (``.dvc/config.local``, the user's DVC config or the environment: ita-vc never
  writes them anywhere);
* bounds every S3 request (``connect_timeout``/``read_timeout``, unless the remote sets its
  own) and probes the remote with a deadline before any transfer: an endpoint that accepts
  connections but never answers ends in :class:`~ita_vc.errors.RemoteError`, not a hang;
* turns DVC's, s3fs's and botocore's errors into :class:`~ita_vc.errors.RemoteError` with the
  remote's name and URL, every credential value redacted from the message.

The remote trash of ``gc --cloud`` (:meth:`Remote.trash`) lives beside the objects: for an
object store, ``<bucket>/.ita-trash/<remote path>/``; for a folder remote, the sibling folder
``<remote folder>.ita-trash``. S3 has no move: an object is copied there, then the original
deleted, so it is always in place, in the trash, or (between the two) in both. The copy's
modification time is the moment it was trashed (the safety window counts from it).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ConfigError, RemoteError, UsageError, VcsError
from ita_vc.vcs.dvc import check_pipeline_files, describe_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "DEFAULT_TIMEOUT",
    "Remote",
    "RemoteObject",
    "default_remote",
    "open_remote",
    "redact",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds a remote may stay silent (the probe, each request) before ita-vc gives up."""

_SECRET_KEYS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "password",
    "key",
    "secret",
    "token",
    "account_key",
    "sas_token",
    "connection_string",
    "client_secret",
    "sse_customer_key",
)
_SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
)
_OBJECT_STORES = ("s3", "gs", "gcs", "azure", "oss")
_DENIED = (
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "Forbidden",
    "403",
    "Unable to locate credentials",
    "NoCredentialsError",
)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (4 characters or more) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """An object of a remote (or of its trash): its id, size and modification time."""

    oid: str
    size: int
    mtime: float  # epoch seconds (for a trashed object: when it was trashed)


def default_remote(root: str | Path) -> str | None:
    """The DVC remote ``core.remote`` names, or None.

    Raises:
        VcsError: DVC cannot read its config.
    """
    from dvc.config import Config  # lazy: see ita_vc.vcs.dvc
    from dvc.exceptions import DvcException

    try:
        config = Config(dvc_dir=str(Path(root) / ".dvc"))
        name = config.get("core", {}).get("remote")
    except DvcException as exc:
        raise VcsError(f"cannot read {root}/.dvc/config: {describe_error(exc)}") from exc
    return str(name) if name else None


def _mtime(info: dict[str, Any]) -> float:
    value = info.get("LastModified", info.get("mtime", info.get("last_modified", 0)))
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


class _Progress:
    """An fsspec callback that forwards ``(done, total)`` and records activity."""

    def __init__(self, report: Callable[[int, int], None] | None) -> None:
        from fsspec.callbacks import Callback  # lazy: see ita_vc.vcs.dvc (dvc_data takes these)

        outer = self

        class _Callback(Callback):  # type: ignore[misc]
            def call(self, *args: Any, **kwargs: Any) -> None:
                outer.last = time.monotonic()
                if report is not None:
                    report(int(self.value or 0), int(self.size or 0))

        self.last = time.monotonic()
        self.callback = _Callback()


class Remote:
    """An opened DVC remote (see the module docstring). Use :func:`open_remote`."""

    def __init__(self, repo: Any, name: str, url: str, timeout: float) -> None:
        self._repo = repo
        self.name = name
        self.url = url
        self.timeout = timeout
        self._odb = repo.cloud.get_remote_odb(name, "ita-vc")
        self._fs = self._odb.fs
        self.secrets = _secrets(repo.config.get("remote", {}).get(name, {}))

    # -- errors ----------------------------------------------------------------------------
    def _error(self, exc: BaseException, doing: str) -> RemoteError:
        text = redact(describe_error(exc), self.secrets)
        where = f"DVC remote {self.name!r} ({self.url})"
        if isinstance(exc, PermissionError) or any(m in text for m in _DENIED):
            return RemoteError(
                f"{where} refused the credentials while {doing}: {text}. Set them with "
                f"`dvc remote modify --local {self.name} access_key_id ...` and "
                "`... secret_access_key ...`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(never in the committed .dvc/config)"
            )
        if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
            return RemoteError(f"{where}: the bucket does not exist ({doing}): {text}")
        return RemoteError(f"{where}: {doing} failed: {text}")

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except RemoteError:
            raise
        except Exception as exc:  # noqa: BLE001 - DVC, s3fs and botocore raise many types
            raise self._error(exc, doing) from None

    def _deadline(self, func: Callable[[], Any], doing: str) -> Any:
        """``func()`` in a daemon thread; RemoteError when it does not finish in time (the
        thread is abandoned: a daemon never keeps the process alive)."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = func()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"ita-vc {doing}", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            raise RemoteError(
                f"DVC remote {self.name!r} ({self.url}) did not answer within "
                f"{self.timeout:g} s while {doing}: check the endpoint URL and the network "
                "(--timeout SECONDS waits longer)"
            )
        if "error" in box:
            raise self._error(box["error"], doing)
        return box.get("value")

    def probe(self) -> None:
        """Ask the remote one cheap question (is its object folder there?) with the deadline.

        Raises:
            RemoteError: refused credentials, a missing bucket, no answer in time.
        """
        self._deadline(lambda: self._fs.exists(self._odb.path), "connecting")

    # -- objects ---------------------------------------------------------------------------
    def has(self, oids: Iterable[str]) -> set[str]:
        """The objects among ``oids`` the remote holds (DVC's own existence query).

        Raises:
            RemoteError: the remote failed.
        """
        wanted = sorted(set(oids))
        if not wanted:
            return set()
        with self._errors("checking which objects it holds"):
            return set(self._odb.oids_exist(wanted))

    def inventory(self) -> dict[str, RemoteObject]:
        """Every object of the remote (DVC 3 layout, ``files/md5``), with size and time.

        Raises:
            RemoteError: the remote failed.
        """
        with self._errors("listing its objects"):
            return self._listing(self._odb.path, self._odb.path_to_oid)

    def _listing(self, base: str, to_oid: Callable[[str], str]) -> dict[str, RemoteObject]:
        found: dict[str, RemoteObject] = {}
        if not self._fs.exists(base):
            return found
        raw = self._fs.fs.find(self._fs.fs._strip_protocol(base), detail=True)
        for path, info in raw.items():
            try:
                oid = to_oid(path)
            except ValueError:
                continue  # not an object (a stray file)
            found[oid] = RemoteObject(oid, int(info.get("size") or 0), _mtime(info))
        return found

    def read_object(self, oid: str) -> bytes:
        """The bytes of one (small) object, e.g. a directory listing ``<md5>.dir``.

        Raises:
            RemoteError: missing or the remote failed.
        """
        with self._errors(f"reading object {oid}"):
            data: bytes = self._fs.cat_file(self._odb.oid_to_path(oid))
            return data

    def push(
        self, oids: Iterable[str], *, jobs: int | None = None, progress: Any = None
    ) -> set[str]:
        """Copy objects from the local cache (directory listings after their files);
        returns the objects that failed.

        Raises:
            RemoteError: the remote failed as a whole.
        """
        from dvc_data.hashfile.hash_info import HashInfo  # lazy: see ita_vc.vcs.dvc
        from dvc_data.hashfile.transfer import transfer

        infos = {HashInfo("md5", oid) for oid in oids}
        if not infos:
            return set()
        cache = self._repo.cache.local
        watch = _Progress(progress)
        with self._errors("pushing objects"):
            result = transfer(
                cache, self._odb, infos, jobs=jobs, cache_odb=cache, callback=watch.callback
            )
        return {str(h.value) for h in result.failed}

    def fetch(
        self, oids: Iterable[str], *, jobs: int | None = None, progress: Any = None
    ) -> set[str]:
        """Copy objects from the remote into the local cache (verified as DVC verifies a
        pull); returns the objects that failed (missing on the remote among them).

        Raises:
            RemoteError: the remote failed as a whole.
        """
        from dvc_data.hashfile.hash_info import HashInfo  # lazy: see ita_vc.vcs.dvc
        from dvc_data.hashfile.transfer import transfer

        infos = {HashInfo("md5", oid) for oid in oids}
        if not infos:
            return set()
        cache = self._repo.cache.local
        watch = _Progress(progress)
        with self._errors("fetching objects"):
            result = transfer(
                self._odb,
                cache,
                infos,
                jobs=jobs,
                cache_odb=cache,
                verify=self._odb.verify,
                callback=watch.callback,
            )
        return {str(h.value) for h in result.failed}

    def copy_to(self, other: Remote, oids: Iterable[str], *, jobs: int | None = None) -> set[str]:
        """Copy objects from this remote to ``other`` (the archive remote); returns the
        objects ``other`` does not hold afterwards.

        Raises:
            RemoteError: either remote failed.
        """
        from dvc_data.hashfile.hash_info import HashInfo  # lazy: see ita_vc.vcs.dvc
        from dvc_data.hashfile.transfer import transfer

        wanted = sorted(set(oids))
        with self._errors(f"copying objects to remote {other.name!r}"):
            transfer(self._odb, other._odb, {HashInfo("md5", o) for o in wanted}, jobs=jobs)
        return set(wanted) - other.has(wanted)

    # -- the trash -------------------------------------------------------------------------
    def _trash_base(self) -> str:
        """``<bucket>/.ita-trash/<remote path>/files/md5`` on an object store,
        ``<remote folder>.ita-trash/files/md5`` elsewhere."""
        fs = self._fs
        path = str(fs.fs._strip_protocol(self._odb.path)).rstrip("/")
        if fs.protocol in _OBJECT_STORES or any(p in _OBJECT_STORES for p in _protocols(fs)):
            bucket, _, rest = path.partition("/")
            return f"{bucket}/.ita-trash/{rest}"
        remote_root = path.rsplit("/", 2)[0]  # <remote>/files/md5 -> <remote>
        return f"{remote_root}.ita-trash/{path[len(remote_root) + 1 :]}"

    @property
    def trash_location(self) -> str:
        """Where the remote trash lives (a URL-like path, for messages and docs)."""
        return f"{self._fs.protocol}://{self._trash_base()}"

    def _trash_path(self, oid: str) -> str:
        return f"{self._trash_base()}/{oid[:2]}/{oid[2:]}"

    def _object_path(self, oid: str) -> str:
        return str(self._fs.fs._strip_protocol(self._odb.oid_to_path(oid)))

    def trash_inventory(self) -> dict[str, RemoteObject]:
        """Every object in the remote trash, its time the moment it was trashed.

        Raises:
            RemoteError: the remote failed.
        """
        base = self._trash_base()

        def to_oid(path: str) -> str:
            parts = path[len(base) :].strip("/").split("/")
            if len(parts) != 2 or len(parts[0]) != 2:
                raise ValueError(path)
            return parts[0] + parts[1]

        with self._errors("listing its trash"):
            if not self._fs.fs.exists(base):
                return {}
            return self._listing(base, to_oid)

    def _present(self, path: str) -> bool:
        return bool(self._fs.fs.exists(path))

    def trash(self, oid: str) -> None:
        """Copy an object into the trash, then delete the original (idempotent: an object
        already trashed stays trashed).

        Raises:
            RemoteError: the remote failed (the object is then in place, or in both).
        """
        src, dst = self._object_path(oid), self._trash_path(oid)
        with self._errors(f"moving object {oid} to the trash"):
            if self._present(src):
                self._fs.fs.copy(src, dst)
                self._fs.fs.rm_file(src)

    def restore(self, oid: str) -> bool:
        """Copy an object back from the trash, then delete the trash copy; False if it is
        not in the trash.

        Raises:
            RemoteError: the remote failed (the object is then in the trash, or in both).
        """
        src, dst = self._trash_path(oid), self._object_path(oid)
        with self._errors(f"restoring object {oid} from the trash"):
            if not self._present(src):
                return False
            if not self._present(dst):
                self._fs.fs.copy(src, dst)
            self._fs.fs.rm_file(src)
        return True

    def settle(self, oid: str) -> str:
        """Undo a trash step a killed process left open: the object back in place and no
        trash copy. Returns what was done (``"restored"``, ``"dropped trash copy"``,
        ``"nothing"``).

        Raises:
            RemoteError: the remote failed.
        """
        src, dst = self._trash_path(oid), self._object_path(oid)
        with self._errors(f"settling object {oid}"):
            in_trash, in_place = self._present(src), self._present(dst)
            if in_trash and not in_place:
                self._fs.fs.copy(src, dst)
                self._fs.fs.rm_file(src)
                return "restored"
            if in_trash:
                self._fs.fs.rm_file(src)
                return "dropped trash copy"
        return "nothing"

    def purge(self, oid: str) -> None:
        """Delete an object's trash copy for good.

        Raises:
            RemoteError: the remote failed.
        """
        with self._errors(f"purging object {oid} from the trash"):
            path = self._trash_path(oid)
            if self._present(path):
                self._fs.fs.rm_file(path)

    def clear_index(self) -> None:
        """Forget DVC's local index of what this remote holds (as ``dvc gc --cloud`` does
        after deleting from a remote), so a later push checks again."""
        from dvc_data.hashfile.db import get_index  # lazy: see ita_vc.vcs.dvc

        index = get_index(self._odb)
        if index is not None:
            index.clear()


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = getattr(fs.fs, "protocol", ())
    return tuple(proto) if isinstance(proto, list | tuple) else (str(proto),)


def _secrets(config: dict[str, Any]) -> list[str]:
    values = [str(v) for k, v in config.items() if k in _SECRET_KEYS and v]
    values += [os.environ[k] for k in _SECRET_ENV if os.environ.get(k)]
    return values


def _remote_url(repo: Any, name: str) -> str:
    remotes = repo.config.get("remote", {})
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise ConfigError(
            f".dvc/config: no DVC remote {name!r} (remotes: {known}); add one with "
            f"`dvc remote add {name} s3://BUCKET/PATH`"
        )
    return str(remotes[name].get("url", ""))


@contextlib.contextmanager
def open_remote(
    root: str | Path,
    name: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    probe: bool = True,
) -> Iterator[Remote]:
    """The DVC remote ``name`` (``core.remote`` when None) of the repository at ``root``,
    probed unless ``probe`` is False (see the module docstring).

    Raises:
        UsageError: ``timeout`` is not a positive finite number.
        ConfigError: no such remote, or none configured.
        RemoteError: refused credentials, missing bucket, no answer within ``timeout``.
        VcsError: DVC cannot open the repository.
    """
    from dvc.exceptions import DvcException  # lazy: see ita_vc.vcs.dvc
    from dvc.repo import Repo

    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise UsageError(f"--timeout must be a number of seconds > 0, got {timeout!r}")
    if not math.isfinite(timeout):
        raise UsageError(f"--timeout must be a finite number of seconds, got {timeout!r}")
    check_pipeline_files(root)
    chosen = name or default_remote(root)
    if not chosen:
        raise ConfigError(
            ".dvc/config: no DVC remote given and no default (core.remote); add one with "
            "`dvc remote add -d NAME s3://BUCKET/PATH` or pass --dvc-remote NAME"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            url = _remote_url(repo, chosen)
            if url.startswith("s3://"):
                config = repo.config["remote"][chosen]
                bounds = {
                    key: config.get(key) or int(max(timeout, 1))
                    for key in ("connect_timeout", "read_timeout")
                }
                repo.config["remote"][chosen] = {**config, **bounds}
            try:
                remote = Remote(repo, chosen, url, timeout)
            except DvcException as exc:
                raise RemoteError(
                    f"DVC remote {chosen!r} ({url}): "
                    f"{redact(describe_error(exc), _secrets(repo.config['remote'][chosen]))}"
                ) from None
            if probe:
                remote.probe()
            yield remote
    except DvcException as exc:
        raise VcsError(f"DVC cannot open {root}: {describe_error(exc)}") from exc
