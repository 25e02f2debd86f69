"""The workspace: repository root discovery, the configured layout, and the workspace lock.

A workspace is a folder holding ``configs/config.yaml`` (written by ``ita-vc init``); it is found
from any subfolder by walking up, the way git finds ``.git``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ita_vc.config import CONFIG_RELPATH, Config, load_config
from ita_vc.errors import (
    ConfigError,
    NotInitializedError,
    PersistentStoreError,
    UsageError,
    WorkspaceLockedError,
)

__all__ = ["LOG_FILENAME", "Workspace", "WorkspaceLock", "check_configured_roots", "find_root"]

LOG_FILENAME = "ita-vc.log"
_LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_log = logging.getLogger(__name__)


def find_root(start: str | Path | None = None) -> Path:
    """Return the nearest folder at or above ``start`` that holds ``configs/config.yaml``.

    Raises:
        NotInitializedError: no such folder up to the filesystem root.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_RELPATH).is_file():
            return folder
    raise NotInitializedError(
        f"not an ita-vc workspace (no {CONFIG_RELPATH} in {here} or any parent folder); "
        "run `ita-vc init` to create one"
    )


@dataclass(frozen=True, slots=True)
class Workspace:
    """An ita-vc workspace: its root folder and validated configuration."""

    root: Path
    config: Config

    @classmethod
    def discover(cls, start: str | Path | None = None) -> Workspace:
        """Find the workspace containing ``start`` (default: the current directory).

        Raises:
            NotInitializedError: not inside a workspace.
            ConfigError: the workspace's config is invalid.
        """
        root = find_root(start)
        workspace = cls(root=root, config=load_config(root))
        workspace.check_roots()
        return workspace

    @classmethod
    def at(cls, root: str | Path) -> Workspace:
        """Open the workspace whose root is exactly ``root``.

        Raises:
            NotInitializedError: ``root`` has no ``configs/config.yaml``.
            ConfigError: the config is invalid.
        """
        root = Path(root).resolve()
        if not (root / CONFIG_RELPATH).is_file():
            raise NotInitializedError(
                f"not an ita-vc workspace: {root / CONFIG_RELPATH} is missing; run `ita-vc init`"
            )
        workspace = cls(root=root, config=load_config(root))
        workspace.check_roots()
        return workspace

    def path(self, relpath: str | PurePosixPath) -> Path:
        """Absolute path of a repo-relative POSIX path."""
        return self.root.joinpath(*PurePosixPath(relpath).parts)

    def relpath(self, path: str | Path) -> str:
        """Repo-relative POSIX form of a path inside the workspace (relative paths are taken
        from the current folder). Folders are resolved, the file itself is not: with DVC's
        ``cache.type symlink`` a workspace file is a link into the cache, and its path is the
        workspace path, not the cache object's.

        Raises:
            PersistentStoreError: ``path`` is outside the workspace.
        """
        candidate = Path(path)
        candidate = candidate if candidate.is_absolute() else Path.cwd() / candidate
        if candidate.name in ("", ".", ".."):
            absolute = candidate.resolve()
        else:
            absolute = Path(os.path.realpath(candidate.parent)) / candidate.name
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError as exc:
            raise PersistentStoreError("outside the workspace", path=str(path)) from exc

    @property
    def index_path(self) -> Path:
        """The SQLite metadata index file."""
        return self.path(self.config.paths.index_path)

    @property
    def logs_dir(self) -> Path:
        """The folder of ``ita-vc.log``."""
        return self.path(self.config.paths.logs_root)

    @property
    def trash_dir(self) -> Path:
        """The retention trash folder."""
        return self.path(self.config.paths.trash_root)

    def trashed_object_path(self, oid: str) -> Path:
        """Where the retention trash keeps DVC object ``oid`` (``md5`` or ``md5.dir``): the
        DVC cache layout below ``<trash>/objects`` (:class:`~ita_vc.retention.trash.Trash`
        moves objects there; ``snapshot verify`` looks there without importing retention)."""
        return self.trash_dir / "objects" / oid[:2] / oid[2:]

    @property
    def state_dir(self) -> Path:
        """The git-ignored folder of locks (beside the index)."""
        return self.index_path.parent

    def setup_logging(self) -> Path:
        """Attach a file handler for the ``ita_vc`` logger writing to ``logs/ita-vc.log``.

        Idempotent per log file. Returns the log file path. Logging problems never fail a command:
        if the folder cannot be created, nothing is attached.
        """
        log_file = self.logs_dir / LOG_FILENAME
        try:
            self.contained(log_file, follow=True)
        except PersistentStoreError:
            return log_file  # logging never fails a command; it just does not follow the link
        logger = logging.getLogger("ita_vc")
        for handler in list(logger.handlers):
            if getattr(handler, "_ita_vc_workspace_log", False):
                if Path(handler.baseFilename) == log_file:  # type: ignore[attr-defined]
                    return log_file
                logger.removeHandler(handler)  # one workspace log per process at a time
                handler.close()
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return log_file
        new = logging.FileHandler(log_file, encoding="utf-8", delay=True)
        new._ita_vc_workspace_log = True  # type: ignore[attr-defined]
        new.setFormatter(logging.Formatter(_LOG_FORMAT))
        new.setLevel(logging.INFO)
        logger.addHandler(new)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        return log_file

    # -- containment -------------------------------------------------------------------------
    def contained(self, path: str | Path, *, follow: bool = False) -> Path:
        """The absolute path of a file ita-vc is about to write, checked to stay inside the
        workspace: the nearest existing folder on the way to it must resolve inside the root, so
        no write follows a symlinked folder out. ``follow`` (for writers that append to or open
        the file itself, such as logs and journals): the file, when it exists, must resolve
        inside too. A symlink *as the file* is fine for atomic writes, which replace the link
        (a DVC checkout with ``cache.type symlink`` leaves such links), never its target.

        Raises:
            PersistentStoreError: the path leads outside the workspace (exit 9).
        """
        candidate = Path(path)
        absolute = candidate if candidate.is_absolute() else self.root / candidate
        probe = absolute if follow else absolute.parent
        existing = probe
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        resolved = existing.resolve()
        if not resolved.is_relative_to(self.root):
            shown = _display(absolute, self.root)
            raise PersistentStoreError(
                f"refusing to write {shown}: {_display(existing, self.root)} leads outside the "
                f"workspace (to {resolved}); ita-vc writes only inside {self.root}. Replace the "
                "symbolic link with a folder (for big data, move the DVC cache instead: "
                "`dvc cache dir PATH`)",
                path=shown,
            )
        return absolute

    def check_roots(self) -> None:
        """Refuse configured folders that are symlinks leading outside the workspace.

        Raises:
            ConfigError: a configured path resolves outside the root (exit 8).
        """
        check_configured_roots(self.root, self.config)

    # -- locks ---------------------------------------------------------------------------------
    def lock(
        self, *, timeout: float = 0, name: str = "workspace", purpose: str | None = None
    ) -> WorkspaceLock:
        """The named lock of this workspace (``.ita/<name>.lock``), to use as a context manager.

        ``workspace`` serialises every command that writes the DVC cache, ``data/``, dvc.lock,
        tags or commits; long computations that write only their own outputs take their own
        name (``grid``). ``timeout`` seconds to wait (0: refuse at once).

        Raises:
            UsageError: ``timeout`` is negative or not a number (on entering the block).
            WorkspaceLockedError: still held elsewhere after ``timeout`` seconds.
        """
        return WorkspaceLock(self, name, timeout, purpose)


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check_configured_roots(root: Path, config: Config) -> None:
    """Every configured folder that exists must resolve inside ``root`` (see
    :meth:`Workspace.check_roots`).

    Raises:
        ConfigError: with the key, the path and where it leads.
    """
    keys = [(f"paths.{k}", v) for k, v in vars_of(config.paths).items()]
    keys += [(f"store.kinds.{k}", v) for k, v in config.store.kinds.items()]
    resolved_root = root.resolve()
    for key, rel in keys:
        target = root.joinpath(*PurePosixPath(rel).parts)
        if key == "paths.index_path":
            target = target.parent
        probe = target
        while not os.path.lexists(probe) and probe != root:
            probe = probe.parent
        if probe == root:
            continue
        resolved = probe.resolve()
        if not resolved.is_relative_to(resolved_root):
            raise ConfigError(
                f"{CONFIG_RELPATH}: {key}: {_display(probe, root)} is a symbolic link to "
                f"{resolved}, outside the workspace; ita-vc reads and writes only inside "
                f"{resolved_root}. Make it a real folder (for big data, move the DVC cache "
                "instead: `dvc cache dir PATH`)"
            )


def vars_of(obj: object) -> dict[str, str]:
    """The fields of a slotted dataclass as a dict."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


class WorkspaceLock:
    """An exclusive ``flock`` on ``.ita/<name>.lock``, held for a ``with`` block.

    The kernel releases it when the holder dies, so a killed command never leaves a stale
    lock. :attr:`fd` can be handed to a child process (``pass_fds``): the lock then stays held
    until the child exits too, even if this process is killed first. The holder writes its
    pid and command to ``<name>.lock.info`` so a refusal can say who holds it.
    """

    def __init__(
        self, workspace: Workspace, name: str, timeout: float, purpose: str | None
    ) -> None:
        self.workspace = workspace
        self.name = name
        self.timeout = timeout
        self.purpose = purpose
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.workspace.state_dir / f"{self.name}.lock"

    @property
    def info_path(self) -> Path:
        """Who holds the lock (pid and command), for the refusal message."""
        return self.path.with_name(self.path.name + ".info")

    def _holder(self) -> str:
        try:
            info = self.info_path.read_text("utf-8").strip()
        except OSError:
            return ""
        return f" (held by {info})" if info else ""

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds.

        Raises:
            UsageError: a bad timeout. WorkspaceLockedError: still held elsewhere.
        """
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not math.isfinite(self.timeout)
            or self.timeout < 0
        ):
            raise UsageError(f"--wait must be a number of seconds >= 0, got {self.timeout!r}")
        self.workspace.contained(self.path, follow=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    what = (
                        "another ita-vc command"
                        if self.name == "workspace"
                        else f"another ita-vc {self.name} command"
                    )
                    waited = f" after waiting {self.timeout:g} s" if self.timeout else ""
                    raise WorkspaceLockedError(
                        f"{what} is running in {self.workspace.root}{self._holder()}{waited}; "
                        f"wait for it to finish, or pass --wait SECONDS (lock {self.path})"
                    ) from None
                time.sleep(0.05)
        self.fd = fd
        info = f"pid {os.getpid()}: {self.purpose or ' '.join(sys.argv[:4])}"
        with contextlib.suppress(OSError):
            self.info_path.write_text(info + "\n", "utf-8")

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.info_path.write_text("", "utf-8")
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
