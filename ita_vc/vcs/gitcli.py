"""Git through the ``git`` executable: the one way ita-vc runs git.

Plain ``git`` subprocesses (``diff --cached``, ``ls-files``, ``cat-file --batch``...) rather
than gitpython, which costs ~100 ms to import: the pre-commit hook must answer in well under
0.3 s. ``GIT_INDEX_FILE`` and friends are deliberately kept: inside a hook they name the index
being committed (``git commit -a`` and partial commits use a temporary index).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ita_vc.errors import VcsError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "EMPTY_TREE",
    "Change",
    "branch",
    "cat_files",
    "config_value",
    "deleted_in_history",
    "diff_names",
    "find_toplevel",
    "git",
    "has_commit",
    "head",
    "init",
    "ls_files",
    "ls_tree",
    "rev_list",
    "run",
    "status_paths",
    "toplevel",
]

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
Change = tuple[str, str]  # (status letter A/M/D/T, repo-relative path)


def run(
    args: list[str],
    cwd: str | Path | None,
    *,
    stdin: bytes | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` (None: the current folder), whatever its exit code;
    ``env``: variables added to the environment.

    Raises:
        VcsError: git cannot be started, or ran longer than ``timeout`` seconds.
    """
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
    except OSError as exc:
        raise VcsError(f"cannot run git: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise VcsError(f"git {' '.join(args)} did not finish in {timeout} s") from exc


def git(
    args: list[str],
    cwd: str | Path | None,
    *,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> bytes:
    """Run ``git ARGS`` in ``cwd``; returns stdout.

    Raises:
        VcsError: git is missing or exited non-zero (with its stderr).
    """
    proc = run(args, cwd, stdin=stdin, timeout=timeout)
    if check and proc.returncode != 0:
        raise VcsError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def toplevel(cwd: str | Path) -> Path:
    """The work tree root containing ``cwd``.

    Raises:
        VcsError: not inside a git work tree.
    """
    return Path(git(["rev-parse", "--show-toplevel"], cwd).decode().strip())


def find_toplevel(path: str | Path) -> Path | None:
    """The (resolved) top folder of the git work tree containing ``path``, or None outside git
    (or when ``path`` is not a folder)."""
    if not Path(path).is_dir():
        return None
    proc = run(["rev-parse", "--show-toplevel"], path)
    top = proc.stdout.decode("utf-8", errors="surrogateescape").strip()
    return Path(top).resolve() if proc.returncode == 0 and top else None


def init(path: str | Path) -> None:
    """``git init`` at ``path`` (an existing folder) with ``main`` as the initial branch.

    Raises:
        VcsError: git failed.
    """
    try:
        proc = run(["init", "-q", "--initial-branch=main"], path)
    except VcsError as exc:  # no git, or no such folder
        raise VcsError(f"git init failed in {path}: {exc}") from exc
    if proc.returncode != 0:
        raise VcsError(f"git init failed in {path}: {proc.stderr.decode(errors='replace')}")


@contextlib.contextmanager
def temporary_worktree(
    root: str | Path, commit: str, prefix: str, *, keep: bool = False
) -> Iterator[Path]:
    """A detached worktree at ``commit`` in a new temp folder (``prefix``), with no git hook
    run (DVC's post-checkout hook would run ``dvc checkout`` before the worktree shares the
    cache); removed whatever happens - the folder first, then git prunes its registration -
    unless ``keep``.

    Raises:
        VcsError: git could not add the worktree.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    tree = base / "worktree"
    try:
        hooks = f"core.hooksPath={base / 'no-hooks'}"
        git(["-c", hooks, "worktree", "add", "--detach", "-q", str(tree), commit], root)
        yield tree
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
            git(["worktree", "prune"], root, check=False)


def has_commit(root: str | Path, rev: str = "HEAD") -> bool:
    """True if ``rev`` names a commit (False on a fresh repository)."""
    return bool(git(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], root, check=False))


def _split_z(raw: bytes) -> list[str]:
    return [p for p in raw.decode("utf-8", errors="surrogateescape").split("\0") if p]


def diff_names(root: str | Path, *args: str, prefix: str) -> list[Change]:
    """``git diff --name-status --no-renames -z ARGS -- prefix`` as ``(status, path)`` pairs."""
    raw = _split_z(git(["diff", "--name-status", "--no-renames", "-z", *args, "--", prefix], root))
    return [(raw[i][0], raw[i + 1]) for i in range(0, len(raw) - 1, 2)]


def ls_files(root: str | Path, prefix: str) -> list[str]:
    """Paths in git's index (the staged state) below ``prefix``."""
    return _split_z(git(["ls-files", "-z", "--", prefix], root))


def ls_tree(root: str | Path, rev: str, prefix: str) -> list[str]:
    """Paths in the tree of ``rev`` below ``prefix``."""
    return _split_z(git(["ls-tree", "-r", "--name-only", "-z", rev, "--", prefix], root))


def cat_files(root: str | Path, specs: list[str]) -> dict[str, bytes | None]:
    """Read many blobs in one ``git cat-file --batch``: ``{spec: bytes or None if missing}``.

    A spec is ``:path`` (the index), ``REV:path`` or an object id.
    """
    if not specs:
        return {}
    for spec in specs:
        if "\n" in spec:
            raise VcsError(f"path with a newline cannot be read from git: {spec!r}")
    out = git(["cat-file", "--batch"], root, stdin="".join(f"{s}\n" for s in specs).encode())
    blobs: dict[str, bytes | None] = {}
    pos = 0
    for spec in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[2].isdigit():  # "<oid> <type> <size>", then content
            size = int(header[2])
            blobs[spec] = out[pos : pos + size] if header[1] == b"blob" else None
            pos += size + 1
        else:
            blobs[spec] = None  # "<spec> missing" / "ambiguous"
    return blobs


def rev_list(root: str | Path, *args: str) -> list[str]:
    """``git rev-list ARGS``."""
    return git(["rev-list", *args], root).decode().split()


def deleted_in_history(root: str | Path, paths: list[str], rev: str = "HEAD") -> set[str]:
    """Those of ``paths`` that some commit reachable from ``rev`` deleted (one git call)."""
    if not paths:
        return set()
    raw = git(
        [
            "log",
            "--format=",
            "--name-only",
            "--no-renames",
            "--diff-filter=D",
            "-z",
            rev,
            "--",
            *paths,
        ],
        root,
    )
    return set(_split_z(raw)) & set(paths)


def status_paths(root: str | Path) -> list[str]:
    """Paths ``git status --porcelain`` reports (modified, staged, untracked, not ignored)."""
    raw = _split_z(git(["status", "--porcelain", "-z", "--untracked-files=all"], root))
    paths = []
    skip = False
    for entry in raw:
        if skip:  # the source path of a rename/copy entry
            skip = False
            continue
        code, path = entry[:2], entry[3:]
        paths.append(path)
        skip = "R" in code or "C" in code
    return paths


def head(root: str | Path) -> str | None:
    """The commit id of HEAD, or None on a repository without commits."""
    out = git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], root, check=False).strip()
    return out.decode() or None


def branch(root: str | Path) -> str | None:
    """The current branch name, or None when HEAD is detached."""
    out = git(["symbolic-ref", "-q", "--short", "HEAD"], root, check=False).strip()
    return out.decode() or None


def config_value(root: str | Path | None, key: str, *, timeout: float | None = None) -> str | None:
    """``git config KEY`` or None (``root`` None: the current folder).

    Raises:
        VcsError: git cannot be run.
    """
    out = git(["config", key], root, check=False, timeout=timeout).strip()
    return out.decode() or None
