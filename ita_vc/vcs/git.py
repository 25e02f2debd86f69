"""Git through gitpython: typed helpers, errors wrapped as :class:`~ita_vc.errors.VcsError`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ita_vc.errors import VcsError

if TYPE_CHECKING:
    import git

__all__ = ["git_toplevel", "init_repo", "open_repo"]


def git_toplevel(path: str | Path) -> Path | None:
    """The top folder of the git work tree containing ``path``, or None outside git."""
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        return Path(repo.working_tree_dir).resolve() if repo.working_tree_dir else None
    finally:
        repo.close()


def init_repo(path: str | Path) -> None:
    """``git init`` at ``path`` (with ``main`` as the initial branch).

    Raises:
        VcsError: git failed.
    """
    import git

    try:
        git.Repo.init(path, initial_branch="main").close()
    except (git.GitCommandError, OSError) as exc:
        raise VcsError(f"git init failed in {path}: {exc}") from exc


def open_repo(path: str | Path) -> git.Repo:
    """Open the git repository whose work tree is ``path``.

    Raises:
        VcsError: ``path`` is not a git work tree.
    """
    import git

    try:
        return git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise VcsError(f"{path} is not a git repository") from exc
