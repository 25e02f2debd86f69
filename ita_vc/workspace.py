"""The workspace: repository root discovery, the configured layout, and the workspace lock.

A workspace is a folder holding ``configs/config.yaml`` (written by ``ita-vc init``); it is found
from any subfolder by walking up, the way git finds ``.git``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ita_vc.config import CONFIG_RELPATH, Config, load_config
from ita_vc.errors import NotInitializedError, PersistentStoreError, WorkspaceLockedError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LOG_FILENAME", "Workspace", "find_root"]

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
        return cls(root=root, config=load_config(root))

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
        return cls(root=root, config=load_config(root))

    def path(self, relpath: str | PurePosixPath) -> Path:
        """Absolute path of a repo-relative POSIX path."""
        return self.root.joinpath(*PurePosixPath(relpath).parts)

    def relpath(self, path: str | Path) -> str:
        """Repo-relative POSIX form of an absolute path inside the workspace.

        Raises:
            PersistentStoreError: ``path`` is outside the workspace.
        """
        absolute = Path(path).resolve()
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

    @contextlib.contextmanager
    def lock(self, *, timeout: float = 0) -> Iterator[None]:
        """Hold the workspace lock (one mutating ita-vc command at a time).

        Raises:
            WorkspaceLockedError: another process holds it after ``timeout`` seconds.
        """
        from filelock import FileLock, Timeout

        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.state_dir / "workspace.lock"
        lock = FileLock(os.fspath(lock_path), timeout=timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise WorkspaceLockedError(
                f"another ita-vc command is running in {self.root} (lock {lock_path}); "
                "wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            lock.release()
