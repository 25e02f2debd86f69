"""After a candle dataset changed: ``dvc add`` the data root, and (when asked) commit exactly the
files that records: ``data.dvc`` and the ``.gitignore`` DVC edited.

The commit is path-limited (``git commit -- PATHS``), so nothing else the user staged is swept
into it; callers hold the workspace lock, so no other ita-vc command changes these files in
between.
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ita_vc.errors import VcsError
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import track_path

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = ["commit_data_root", "data_root_files", "track_data_root"]

_INDEX_LOCK_RETRIES = 100  # x 0.1 s: a `git status` elsewhere may hold .git/index.lock briefly


def data_root_files(workspace: Workspace) -> tuple[str, str]:
    """``(the data root's .dvc file, the .gitignore beside the data root)``, repo-relative."""
    data_root = PurePosixPath(workspace.config.paths.data_root)
    dvc_file = data_root.with_name(data_root.name + ".dvc").as_posix()
    return dvc_file, (data_root.parent / ".gitignore").as_posix()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def track_data_root(workspace: Workspace) -> list[str]:
    """``dvc add`` the data root; returns the files that record it and changed (``data.dvc``
    always, the ``.gitignore`` when DVC edited it).

    Raises:
        VcsError: DVC refused.
    """
    dvc_file, ignore = data_root_files(workspace)
    before = _read(workspace.path(ignore))
    track_path(workspace.root, workspace.config.paths.data_root)
    return [dvc_file] + ([ignore] if _read(workspace.path(ignore)) != before else [])


def _git(args: list[str], root: Path) -> bytes:
    for attempt in range(_INDEX_LOCK_RETRIES + 1):
        try:
            return gitcli.git(args, root)
        except VcsError as exc:
            if "index.lock" not in str(exc) or attempt == _INDEX_LOCK_RETRIES:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")  # pragma: no cover


def commit_data_root(workspace: Workspace, paths: list[str], message: str) -> str | None:
    """``git add`` + a path-limited ``git commit`` of ``paths``; the new commit id, or None when
    they already match HEAD.

    Raises:
        VcsError: git failed (the data is written and tracked; the paths may stay staged).
    """
    root = workspace.root
    _git(["add", "--", *paths], root)
    if not gitcli.git(["status", "--porcelain", "--", *paths], root).strip():
        return None
    try:
        _git(["commit", "-q", "-m", message, "--", *paths], root)
    except VcsError as exc:
        raise VcsError(
            f"the candles are written and tracked, but committing "
            f"{', '.join(paths)} failed (they stay staged): {exc}"
        ) from exc
    return gitcli.head(root)
