"""DVC adapter: the only module of ita-vc that imports ``dvc``.

``dvc.repo.Repo`` is not a released API (treeverse/dvc#5050), so every use is wrapped here in a
typed function, dvc's major version is pinned (``dvc>=3,<4``) and the functions are covered by
functional tests on real repositories.
"""

from __future__ import annotations

from pathlib import Path

from ita_vc.errors import VcsError

__all__ = ["disable_analytics", "init_dvc", "is_dvc_repo", "track_path"]


def is_dvc_repo(root: str | Path) -> bool:
    """True if ``root`` holds a ``.dvc`` folder."""
    return (Path(root) / ".dvc").is_dir()


def init_dvc(root: str | Path) -> None:
    """``dvc init`` at ``root`` (which must be a git work tree top).

    Raises:
        VcsError: DVC refused.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        Repo.init(root_dir=str(root)).close()
    except DvcException as exc:
        raise VcsError(f"dvc init failed in {root}: {exc}") from exc


def disable_analytics(root: str | Path) -> bool:
    """Set ``core.analytics = false`` in the repo's ``.dvc/config``; True if it changed.

    Raises:
        VcsError: the DVC config cannot be edited.
    """
    from dvc.config import Config
    from dvc.exceptions import DvcException

    try:
        config = Config(dvc_dir=str(Path(root) / ".dvc"))
        current = config.load_one("repo").get("core", {}).get("analytics")
        if str(current).lower() in ("false", "0", "no", "off"):
            return False
        with config.edit("repo") as conf:
            conf["core"]["analytics"] = False
    except DvcException as exc:
        raise VcsError(f"cannot edit {root}/.dvc/config: {exc}") from exc
    return True


def track_path(root: str | Path, relpath: str) -> None:
    """``dvc add <relpath>`` (e.g. the data root, writing ``data.dvc``).

    Raises:
        VcsError: DVC refused (e.g. the path overlaps a pipeline output).
    """
    import contextlib
    import io

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        # DVC prints git hints; the caller reports what happened itself
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            repo.scm_context.quiet = True
            repo.add([str(Path(root) / relpath)])
    except DvcException as exc:
        raise VcsError(f"dvc add {relpath} failed: {exc}") from exc
