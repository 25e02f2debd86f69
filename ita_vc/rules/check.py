"""The commit checks behind ``ita-vc rule check`` and the pre-commit hook.

They read git's *index* (what is being committed), never the working tree, and compare it with
HEAD: every rule file parses and validates; its location matches its ``setup_id``/``version``;
its ``params_hash`` is right; a version file that exists in HEAD is byte-identical; deleting a
committed version is refused; lifecycle files validate and name only existing versions, with at
most one active version; a version number is never reused. Every problem is reported, not only
the first. ``--against REV`` runs the same checks on every commit since the merge base with
``REV`` and catches two branches that each created the same version.

Only ``yaml`` and ``git`` subprocesses are used on this path (no dvc, pandas or gitpython).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ita_vc.rules.model import Problem, RuleVersion
from ita_vc.rules.validate import (
    LIFECYCLE_FILENAME,
    MAX_RULE_BYTES,
    check_setup_id,
    parse_lifecycle,
    parse_rule,
)
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ita_vc.catalog import Catalog

__all__ = [
    "CheckReport",
    "check_against",
    "check_files",
    "check_staged",
    "check_worktree",
    "run_rule_check",
]

_IMMUTABLE = (
    "{tag} of {setup} is committed and immutable; "
    "create a new version with `ita-vc rule bump {setup}`"
)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a check looked at and what it found."""

    checked: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def describe(self) -> str:
        """Every problem, one per line, under a count."""
        lines = "\n".join(f"  {p}" for p in self.problems)
        bad = len({p.path for p in self.problems})
        return (
            f"rule check: {len(self.problems)} problem(s) in {bad} of "
            f"{len(self.checked)} file(s) checked:\n{lines}"
        )


_REGULAR_MODES = ("100644", "100755")


def _worktree_entry(file: Path) -> tuple[bytes | None, str | None]:
    """(content, git-style mode) of a working-tree path, never following a symlink."""
    try:
        info = os.lstat(file)
    except OSError:
        return None, None
    if stat.S_ISLNK(info.st_mode):
        return None, "120000"
    if not stat.S_ISREG(info.st_mode):
        return None, "040000" if stat.S_ISDIR(info.st_mode) else "non-file"
    try:
        with open(file, "rb") as stream:
            content = stream.read(MAX_RULE_BYTES + 1)  # parse_rule reports a larger file
    except OSError:
        return None, None
    return content, "100755" if info.st_mode & stat.S_IXUSR else "100644"


class _View:
    """Read access to one state of the repository (index, a commit, or the working tree)."""

    def __init__(self, root: Path, rev: str | None) -> None:
        self.root = root
        self.rev = rev  # None: git's index; "WORKTREE": the files on disk; else a commit
        self._cache: dict[str, bytes | None] = {}
        self._modes: dict[str, str | None] = {}

    def spec(self, path: str) -> str:
        return f":{path}" if self.rev is None else f"{self.rev}:{path}"

    def _git_modes(self, paths: list[str]) -> dict[str, str]:
        """Git's file modes of ``paths`` (``120000`` is a symlink) in the index or a commit."""
        if self.rev is None:
            raw = gitcli.git(
                ["--literal-pathspecs", "ls-files", "-s", "-z", "--", *paths], self.root
            )
        else:
            raw = gitcli.git(
                ["--literal-pathspecs", "ls-tree", "-r", "-z", self.rev, "--", *paths], self.root
            )
        modes = {}
        for entry in raw.decode("utf-8", errors="surrogateescape").split("\0"):
            head, tab, path = entry.partition("\t")
            if tab:
                modes[path] = head.split(" ", 1)[0]
        return modes

    def prefetch(self, paths: Iterable[str]) -> None:
        wanted = list(dict.fromkeys(p for p in paths if p not in self._cache))
        if not wanted:
            return
        if self.rev == "WORKTREE":
            for p in wanted:
                self._cache[p], self._modes[p] = _worktree_entry(self.root / p)
            return
        if self.rev == gitcli.EMPTY_TREE:
            self._cache.update(dict.fromkeys(wanted))
            self._modes.update(dict.fromkeys(wanted))
            return
        blobs = gitcli.cat_files(self.root, [self.spec(p) for p in wanted])
        modes = self._git_modes(wanted)
        for p in wanted:
            mode = modes.get(p)
            self._modes[p] = mode
            # a symlink's blob is its target's name: never parse it as the file
            self._cache[p] = blobs[self.spec(p)] if mode in _REGULAR_MODES else None

    def read(self, path: str) -> bytes | None:
        self.prefetch([path])
        return self._cache[path]

    def mode(self, path: str) -> str | None:
        """Git's mode of ``path`` (``100644``, ``120000`` for a symlink...), None if absent."""
        self.prefetch([path])
        return self._modes[path]

    def listdir(self, folder: str) -> list[str]:
        if self.rev == "WORKTREE":
            base = self.root / folder
            return (
                sorted(
                    PurePosixPath(folder, p.name).as_posix() for p in base.iterdir() if p.is_file()
                )
                if base.is_dir()
                else []
            )
        if self.rev == gitcli.EMPTY_TREE:
            return []
        if self.rev is None:
            return gitcli.ls_files(self.root, folder + "/")
        return gitcli.ls_tree(self.root, self.rev, folder + "/")


def _classify(path: str, rules_root: str) -> tuple[str, str, str] | None:
    """``(kind, setup_id, name)`` of a path under the rules root, or None outside it.

    kind: ``version`` (``v*.yaml``), ``lifecycle``, ``yaml`` (another YAML file in a setup
    folder: an error), ``top`` (an entry right under the rules root: refused when it is a
    symlink, which would be a setup folder leading elsewhere), ``other`` (ignored).
    """
    parts = PurePosixPath(path).parts
    root_parts = PurePosixPath(rules_root).parts
    if parts[: len(root_parts)] == root_parts and len(parts) == len(root_parts) + 1:
        return "top", parts[-1], parts[-1]  # a file (or a symlinked setup folder) under root
    if parts[: len(root_parts)] != root_parts or len(parts) != len(root_parts) + 2:
        return None
    setup_id, name = parts[-2], parts[-1]
    if name == LIFECYCLE_FILENAME:
        return "lifecycle", setup_id, name
    if name.endswith((".yaml", ".yml")):
        try:
            RuleVersion.parse(name.removesuffix(".yaml"))
        except ValueError:
            return "yaml", setup_id, name
        return "version", setup_id, name
    return "other", setup_id, name


def _not_regular(path: str, mode: str) -> Problem:
    what = "a symbolic link" if mode == "120000" else f"not a regular file (git mode {mode})"
    return Problem(
        path,
        f"is {what}; rule versions and lifecycle files must be regular files "
        "in git (a link's target can change, a committed version cannot): "
        "replace it with a copy of the file itself",
    )


@dataclass
class _ChangeSet:
    """The checks of one change set (``new`` against ``old``), each a named method; they add
    to ``problems`` and ``checked`` in the order of the changes."""

    new: _View
    old: _View
    rules_root: str
    catalog: Catalog
    all_committed: bool = False
    reused_paths: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    setups: set[str] = field(default_factory=set)

    def check_path(self, status: str, path: str, kind: str, setup_id: str, name: str) -> None:
        """One changed path under the rules root."""
        if kind == "top":
            self.check_top(status, path)
            return
        self.setups.add(setup_id)
        self.checked.append(path)
        if reason := check_setup_id(setup_id):
            self.problems.append(Problem(path, f"setup folder: {reason}"))
        elif kind == "yaml":
            self.problems.append(
                Problem(
                    path,
                    f"{name!r} is not a version file name "
                    "(rule versions are named v<major>.<minor>.yaml)",
                )
            )
        elif kind == "version":
            self.check_version(status, path, setup_id, name.removesuffix(".yaml"))

    def check_top(self, status: str, path: str) -> None:
        """An entry right under the rules root is never a symlink (a setup folder elsewhere)."""
        if status != "D" and self.new.mode(path) == "120000":
            self.checked.append(path)
            self.problems.append(
                Problem(
                    path,
                    "is a symbolic link; a setup folder under "
                    f"{self.rules_root}/ must be a real folder in git",
                )
            )

    def check_version(self, status: str, path: str, setup_id: str, tag: str) -> None:
        """A version file: not deleted once committed, a regular file, unchanged once
        committed, its number never reused, and valid."""
        before = self.old.read(path)
        if status == "D":
            self.check_deleted(path, setup_id, tag, before)
            return
        mode = self.new.mode(path)
        if mode is not None and mode not in _REGULAR_MODES:
            self.problems.append(_not_regular(path, mode))
            if before is not None or self.old.mode(path) is not None:
                self.problems.append(Problem(path, _IMMUTABLE.format(tag=tag, setup=setup_id)))
            return
        content = self.new.read(path)
        if content is None:
            return
        self.check_immutable(path, setup_id, tag, before, content)
        committed = self.all_committed or before is not None or self.old.mode(path) is not None
        _rule, found = parse_rule(
            content, path, catalog=self.catalog, rules_root=self.rules_root, committed=committed
        )
        self.problems.extend(found)

    def check_deleted(self, path: str, setup_id: str, tag: str, before: bytes | None) -> None:
        """Deleting a committed version is refused."""
        if before is not None:
            self.problems.append(
                Problem(
                    path,
                    f"{tag} of {setup_id} is committed; deleting a "
                    "committed version is refused (deprecate it with "
                    f"`ita-vc rule deprecate {setup_id} {tag}`)",
                )
            )

    def check_immutable(
        self, path: str, setup_id: str, tag: str, before: bytes | None, content: bytes
    ) -> None:
        """A committed version keeps its bytes; a new one does not reuse an old number."""
        if before is not None and before != content:
            self.problems.append(Problem(path, _IMMUTABLE.format(tag=tag, setup=setup_id)))
        elif before is None and path in self.reused_paths:
            self.problems.append(
                Problem(
                    path,
                    f"version number {tag} of {setup_id} was used before (it is in the "
                    f"history); version numbers are never reused: `ita-vc rule bump "
                    f"{setup_id}`",
                )
            )

    def check_lifecycles(self) -> None:
        """The lifecycle file of every setup touched: regular, valid, naming existing versions."""
        lifecycles = {
            s: PurePosixPath(self.rules_root, s, LIFECYCLE_FILENAME).as_posix()
            for s in sorted(self.setups)
            if not check_setup_id(s)
        }
        self.new.prefetch(lifecycles.values())
        for setup_id, lifecycle_path in lifecycles.items():
            self.check_lifecycle(setup_id, lifecycle_path)

    def check_lifecycle(self, setup_id: str, lifecycle_path: str) -> None:
        mode = self.new.mode(lifecycle_path)
        if mode is not None and mode not in _REGULAR_MODES:
            self.problems.append(_not_regular(lifecycle_path, mode))
            self.checked.append(lifecycle_path)
            return
        content = self.new.read(lifecycle_path)
        if content is None:
            return
        folder = PurePosixPath(self.rules_root, setup_id).as_posix()
        names = {PurePosixPath(p).name for p in self.new.listdir(folder)}
        _entries, found = parse_lifecycle(
            content, lifecycle_path, setup_id=setup_id, version_exists=lambda v: v.filename in names
        )
        if lifecycle_path not in self.checked:
            self.checked.append(lifecycle_path)
        self.problems.extend(found)


def _relevant(
    changes: list[gitcli.Change], rules_root: str
) -> list[tuple[str, str, tuple[str, str, str]]]:
    """``(status, path, (kind, setup_id, name))`` of the changes the checks look at."""
    return [
        (status, path, info)
        for status, path in changes
        if (info := _classify(path, rules_root)) is not None and info[0] != "other"
    ]


def _check(
    root: Path,
    new: _View,
    old: _View,
    changes: list[gitcli.Change],
    *,
    rules_root: str,
    catalog: Catalog,
    reused: Callable[[list[str]], set[str]] | None = None,
    all_committed: bool = False,
) -> tuple[list[str], list[Problem]]:
    """The checks of one change set. ``all_committed``: the new side is a commit (``--against``),
    so every version in it is committed; otherwise a version is committed when ``old`` has it."""
    del root  # the views read the repository
    relevant = _relevant(changes, rules_root)
    new.prefetch(p for s, p, _ in relevant if s != "D")
    old.prefetch(p for _, p, _ in relevant)
    added = [p for s, p, info in relevant if s == "A" and info[0] == "version"]
    run = _ChangeSet(
        new, old, rules_root, catalog, all_committed, reused(added) if reused is not None else set()
    )
    for status, path, (kind, setup_id, name) in relevant:
        run.check_path(status, path, kind, setup_id, name)
    run.check_lifecycles()
    return run.checked, run.problems


def _report(checked: list[str], problems: list[Problem]) -> CheckReport:
    unique = list(dict.fromkeys(problems))
    return CheckReport(tuple(dict.fromkeys(checked)), tuple(unique))


def check_staged(root: Path, *, rules_root: str, catalog: Catalog) -> CheckReport:
    """Check what is staged for the next commit (git's index) against HEAD."""
    head = "HEAD" if gitcli.has_commit(root) else gitcli.EMPTY_TREE
    changes = gitcli.diff_names(root, "--cached", head, prefix=rules_root)
    checked, problems = _check(
        root,
        _View(root, None),
        _View(root, head),
        changes,
        rules_root=rules_root,
        catalog=catalog,
        reused=(lambda paths: gitcli.deleted_in_history(root, paths)) if head == "HEAD" else None,
    )
    return _report(checked, problems)


def check_files(
    root: Path, files: Iterable[str], *, rules_root: str, catalog: Catalog
) -> CheckReport:
    """Check the given working-tree files (repo-relative) against HEAD."""
    head = "HEAD" if gitcli.has_commit(root) else gitcli.EMPTY_TREE
    changes = [("M" if os.path.lexists(root / f) else "D", f) for f in files]
    checked, problems = _check(
        root,
        _View(root, "WORKTREE"),
        _View(root, head),
        changes,
        rules_root=rules_root,
        catalog=catalog,
    )
    return _report(checked, problems)


def check_worktree(root: Path, *, rules_root: str, catalog: Catalog) -> CheckReport:
    """Check every rule and lifecycle file of the working tree (and deletions vs HEAD)."""
    base = root / rules_root
    files = (
        sorted(
            p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file() or p.is_symlink()
        )
        if base.is_dir()
        else []
    )
    if gitcli.has_commit(root):
        files += [p for p in gitcli.ls_tree(root, "HEAD", rules_root + "/") if p not in files]
    return check_files(root, files, rules_root=rules_root, catalog=catalog)


def check_against(root: Path, rev: str, *, rules_root: str, catalog: Catalog) -> CheckReport:
    """CI check of a branch: every commit since the merge base with ``rev``, plus versions the
    branch created that ``rev`` has with other content (two branches, one version number).

    Raises:
        VcsError: ``rev`` is not a commit.
    """
    if not gitcli.has_commit(root, rev):
        from ita_vc.errors import VcsError

        raise VcsError(f"--against {rev}: not a commit")
    base = gitcli.git(["merge-base", rev, "HEAD"], root).decode().strip()
    checked: list[str] = []
    problems: list[Problem] = []
    for commit in gitcli.rev_list(root, "--reverse", "--first-parent", f"{base}..HEAD"):
        parent = f"{commit}^" if gitcli.has_commit(root, f"{commit}^") else gitcli.EMPTY_TREE
        changes = gitcli.diff_names(root, parent, commit, prefix=rules_root)
        c, p = _check(
            root,
            _View(root, commit),
            _View(root, parent),
            changes,
            rules_root=rules_root,
            catalog=catalog,
            all_committed=True,
        )
        checked += c
        problems += [
            Problem(x.path, f"(commit {commit[:10]}) {x.message}", x.field, x.line) for x in p
        ]
    added = [p for s, p in gitcli.diff_names(root, base, "HEAD", prefix=rules_root) if s == "A"]
    theirs = _View(root, rev)
    ours = _View(root, "HEAD")
    theirs.prefetch(added)
    ours.prefetch(added)
    for path in added:
        info = _classify(path, rules_root)
        if info is None or info[0] != "version":
            continue
        other = theirs.read(path)
        if other is not None and other != ours.read(path):
            tag = info[2].removesuffix(".yaml")
            problems.append(
                Problem(
                    path,
                    f"{tag} of {info[1]} was also created on {rev} with "
                    "other content; one version number, two rules: "
                    f"renumber yours with `ita-vc rule bump {info[1]}`",
                )
            )
    return _report(checked, problems)


def run_rule_check(
    *,
    files: Iterable[str] = (),
    against: str | None = None,
    all_files: bool = False,
    start: Path | None = None,
) -> CheckReport:
    """The check ``ita-vc rule check`` runs, in the workspace containing ``start`` (or cwd):
    ``against`` a revision, ``all_files`` of the working tree, the given ``files``, or (the
    default, as the pre-commit hook) what is staged.

    Raises:
        NotInitializedError: not in a workspace. VcsError: not a git repository / bad REV.
    """
    from ita_vc.catalog import load_catalog
    from ita_vc.config import load_config
    from ita_vc.workspace import find_root

    root = find_root(start)
    gitcli.toplevel(root)  # a clear error outside git
    rules_root = load_config(root).paths.rules_root
    catalog = load_catalog(root)
    if against:
        return check_against(root, against, rules_root=rules_root, catalog=catalog)
    if all_files:
        return check_worktree(root, rules_root=rules_root, catalog=catalog)
    file_list = list(files)
    if file_list:
        rels = []
        for f in file_list:
            given = Path.cwd() / f
            path = given.parent.resolve() / given.name  # a symlink is checked, not its target
            try:
                rels.append(path.relative_to(root).as_posix())
            except ValueError as exc:
                from ita_vc.errors import RuleValidationError

                raise RuleValidationError(f"{f}: outside the workspace {root}") from exc
        return check_files(root, rels, rules_root=rules_root, catalog=catalog)
    return check_staged(root, rules_root=rules_root, catalog=catalog)
