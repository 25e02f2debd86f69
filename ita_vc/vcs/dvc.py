"""DVC adapter: the only module of ita-vc that imports ``dvc``.

``dvc.repo.Repo`` is not a released API (treeverse/dvc#5050), so every use is wrapped here in a
typed function, dvc's major version is pinned (``dvc>=3,<4``) and the functions are covered by
functional tests on real repositories.
"""

from __future__ import annotations

from pathlib import Path

from ita_vc.errors import VcsError

__all__ = [
    "cache_dir",
    "cache_paths",
    "checkout",
    "disable_analytics",
    "init_dvc",
    "is_dvc_repo",
    "pipeline_status",
    "remote_has",
    "track_path",
    "tracked_paths",
]


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


def cache_dir(root: str | Path) -> Path:
    """The local cache folder DVC uses for this repository (``dvc cache dir``: ``cache.dir``
    honoured; objects live below it in ``files/md5/``)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return Path(repo.cache.local_cache_dir)


def tracked_paths(root: str | Path) -> list[str]:
    """Repo-relative paths DVC manages: every stage out and every ``.dvc`` file's outs."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return sorted({Path(out.fs_path).relative_to(Path(root).resolve()).as_posix()
                       for out in repo.index.outs})


def cache_paths(root: str | Path, oids: list[str]) -> dict[str, Path]:
    """Where each object (md5 or ``md5.dir``) lives in the local cache (existing or not)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        odb = repo.cache.local
        return {oid: Path(odb.oid_to_path(oid)) for oid in oids}


def remote_has(root: str | Path, remote: str, oids: list[str]) -> dict[str, bool]:
    """Which objects the DVC remote ``remote`` holds.

    Raises:
        VcsError: unknown remote or unreachable.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            odb = repo.cloud.get_remote_odb(remote)
            return {oid: bool(odb.exists(oid)) for oid in oids}
    except DvcException as exc:
        raise VcsError(f"dvc remote {remote!r}: {exc}") from exc


def pipeline_status(root: str | Path) -> dict[str, object]:
    """``dvc status`` of the whole workspace as data (empty when up to date).

    Raises:
        VcsError: DVC failed.
    """
    import contextlib
    import io

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            status: dict[str, object] = repo.status()
            return status
    except DvcException as exc:
        raise VcsError(f"dvc status failed: {exc}") from exc


def checkout(root: str | Path, targets: list[str]) -> None:
    """``dvc checkout TARGETS`` from the local cache.

    Raises:
        VcsError: objects missing from the cache, or DVC failed.
    """
    import contextlib
    import io

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            repo.checkout(targets=[str(Path(root) / t) for t in targets], force=True)
    except DvcException as exc:
        raise VcsError(f"dvc checkout {' '.join(targets)} failed: {exc}") from exc
