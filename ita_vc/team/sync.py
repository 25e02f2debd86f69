"""``ita-vc push``, ``ita-vc pull`` and ``ita-vc clone``: the team workflow, one command each way.

push
    Under the workspace lock: the runs being pushed are those recorded in commits the git
    remote does not have yet (``git rev-list HEAD --not --remotes=<remote>``) and every pinned
    run (``ita/keep/*``); the objects they and the workspace need (each run's outs and its
    DVC-tracked deps, directory outs file by file) are compared with what the DVC remote holds.
    An object neither in the local cache nor on the remote is refused before anything is pushed
    (exit 6, naming the run and the path). Then the missing objects are pushed (DVC's transfer,
    a progress bar), and only then git: the branch and the pin tags. Objects first, so a
    teammate who fetches the commits always finds their objects.
pull
    ``git fetch`` of the branches and the pin tags, a fast-forward of the current branch, the
    objects the workspace needs fetched into the cache and checked out (data you changed is
    left alone and listed), then a light verification of the runs that arrived and of every
    pinned run: its snapshot hash, and every object it needs in the cache or on the remote;
    what the remote lacks is named.
clone
    ``git clone``, ita-vc's hooks installed (as ``ita-vc init --hooks``), then a pull.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import (
    IntegrityError,
    NotInitializedError,
    RemoteError,
    UsageError,
    VcsError,
)
from ita_vc.snapshot.capture import snapshot_hash
from ita_vc.snapshot.history import recorded_runs
from ita_vc.snapshot.runs import KEEP_TAG_PREFIX, pinned_runs
from ita_vc.snapshot.verify import dvc_objects
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import checkout_workspace, local_objects, tracked_paths, workspace_objects
from ita_vc.vcs.remote import DEFAULT_TIMEOUT, Remote, open_remote

if TYPE_CHECKING:
    from ita_vc.snapshot.history import RecordedRun
    from ita_vc.workspace import Workspace

__all__ = [
    "PullReport",
    "PushReport",
    "RunCheck",
    "clone_workspace",
    "fetch_run_inputs",
    "pull_workspace",
    "push_workspace",
]

Progress = Callable[[int, int], None]
_PINS = f"refs/tags/{KEEP_TAG_PREFIX}*"
_URL_AUTH = re.compile(r"(://)[^/@\s]+@")


@dataclass
class PushReport:
    """What ``ita-vc push`` did."""

    branch: str
    git_remote: str
    dvc_remote: str
    dvc_url: str
    commits: int = 0  # commits the git remote did not have
    runs: list[str] = field(default_factory=list)  # runs whose objects were checked
    pins: int = 0
    objects_needed: int = 0
    already_on_remote: int = 0
    pushed: int = 0
    missing: list[str] = field(default_factory=list)  # allowed with allow_missing
    git_output: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunCheck:
    """The light verification of one run after a pull."""

    run_id: str
    snapshot_ok: bool
    missing: tuple[str, ...]  # "path (md5)" neither in the cache nor on the remote

    @property
    def ok(self) -> bool:
        """True when the snapshot is intact and every object is reachable."""
        return self.snapshot_ok and not self.missing


@dataclass
class PullReport:
    """What ``ita-vc pull`` (or ``clone``) did."""

    root: str
    git_remote: str
    dvc_remote: str
    dvc_url: str
    branch: str | None = None
    before: str | None = None
    after: str | None = None
    commits: int = 0
    objects_needed: int = 0
    fetched: int = 0
    missing_remotely: list[str] = field(default_factory=list)  # workspace objects
    kept_local_changes: list[str] = field(default_factory=list)
    runs: list[RunCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything the workspace and the pulled runs need is reachable."""
        return not self.missing_remotely and all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        data = {k: v for k, v in self.__dict__.items() if k != "runs"}
        data["runs"] = [
            {"run_id": r.run_id, "ok": r.ok, "snapshot_ok": r.snapshot_ok, "missing": r.missing}
            for r in self.runs
        ]
        data["ok"] = self.ok
        return data


# -- git -----------------------------------------------------------------------------------
def _safe(text: str) -> str:
    """A git message with any ``user:password@`` of a URL removed."""
    return _URL_AUTH.sub(r"\1***@", text)


def _git_remote(root: Path, args: list[str], timeout: float | None = None) -> str:
    """git talking to a remote: never waits for a password prompt (GIT_TERMINAL_PROMPT=0).

    Raises:
        VcsError: git failed (its message, credentials in URLs masked).
    """
    proc = gitcli.run(args, root, timeout=timeout, env={"GIT_TERMINAL_PROMPT": "0"})
    text = _safe((proc.stderr + proc.stdout).decode("utf-8", "replace")).strip()
    if proc.returncode != 0:
        raise VcsError(f"git {args[0]} failed: {text}")
    return text


def _check_git_remote(root: Path, name: str) -> None:
    """Raises UsageError when the git remote does not exist."""
    names = gitcli.git(["remote"], root).decode().split()
    if name not in names:
        known = ", ".join(names) or "none"
        raise UsageError(
            f"no git remote {name!r} (remotes: {known}); add one with "
            f"`git remote add {name} URL`, or pass --git-remote NAME"
        )


def _pre_push_is_dvc(root: Path) -> bool:
    """True when the only pre-push hook is DVC's (``dvc git-hook pre-push`` pushes the whole
    workspace to the default remote): ``ita-vc push`` has just done its job, precisely."""
    from ita_vc.rules.hook_install import is_dvc_pre_push  # lazy: only push needs it

    return is_dvc_pre_push(root)


# -- objects -------------------------------------------------------------------------------
def _dir_listing(root: Path, remote: Remote, oid: str) -> list[str] | None:
    """The object ids inside a ``.dir`` object (from the cache, else the remote), or None."""
    local = local_objects(root, [oid])
    try:
        raw = local[oid].read_bytes() if oid in local else remote.read_object(oid)
        entries = json.loads(raw)
        return [str(e["md5"]) for e in entries if isinstance(e, dict) and e.get("md5")]
    except (RemoteError, OSError, ValueError, TypeError):
        return None


def _expand(
    root: Path, remote: Remote, wanted: dict[str, set[str]], labels: dict[str, str]
) -> None:
    """Add the files of every directory object (owned by the same owners)."""
    for oid in [o for o in wanted if o.endswith(".dir")]:
        inner = _dir_listing(root, remote, oid) or []
        for entry in inner:
            wanted.setdefault(entry, set()).update(wanted[oid])
            labels.setdefault(entry, f"{labels.get(oid, oid)}/{entry[:8]}")


def _fetch_all(
    root: Path,
    remote: Remote,
    wanted: dict[str, set[str]],
    labels: dict[str, str],
    jobs: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, set[str]]:
    """Fetch what the cache lacks of ``wanted``: the directory listings first (so their files
    join ``wanted``), then the files. Returns (objects fetched, objects that failed)."""
    dirs = [o for o in wanted if o.endswith(".dir")]
    dirs = sorted(set(dirs) - set(local_objects(root, dirs)))
    failed = remote.fetch(dirs, jobs=jobs)
    _expand(root, remote, wanted, labels)
    absent = sorted(set(wanted) - set(local_objects(root, sorted(wanted))))
    failed |= remote.fetch(absent, jobs=jobs, progress=progress)
    return len(dirs) + len(absent) - len(failed), failed


def _run_needs(
    runs: dict[str, RecordedRun], chosen: list[str], managed: list[str]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    wanted: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    for run_id in chosen:
        for _role, path, md5 in dvc_objects(runs[run_id].snapshot, managed):
            wanted.setdefault(md5, set()).add(run_id)
            labels.setdefault(md5, path)
    return wanted, labels


def _needs(
    workspace: Workspace, remote: Remote, runs: dict[str, RecordedRun], chosen: list[str]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Object id -> who needs it ("workspace" or run ids), and a path label per object."""
    root = workspace.root
    wanted, labels = _run_needs(runs, chosen, tracked_paths(root))
    for path, oid in workspace_objects(root):
        wanted.setdefault(oid, set()).add("workspace")
        labels.setdefault(oid, path)
    _expand(root, remote, wanted, labels)
    return wanted, labels


def _describe(oids: list[str], wanted: dict[str, set[str]], labels: dict[str, str]) -> list[str]:
    return [
        f"{labels.get(oid, '?')} ({oid}) - needed by {', '.join(sorted(wanted.get(oid, ())))}"
        for oid in oids
    ]


# -- push ----------------------------------------------------------------------------------
def push_workspace(
    workspace: Workspace,
    *,
    git_remote: str = "origin",
    dvc_remote: str | None = None,
    allow_missing: bool = False,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    wait: float = 0,
) -> PushReport:
    """``ita-vc push`` (see the module docstring).

    Raises:
        UsageError: detached HEAD, unknown git remote.
        ConfigError: no such DVC remote (or no default).
        IntegrityError: objects the pushed runs or the workspace need are neither in the
            local cache nor on the remote (nothing was pushed).
        RemoteError: refused credentials, no answer in time, objects that failed to upload.
        VcsError: git push refused (e.g. the remote branch moved on: pull first).
        WorkspaceLockedError: another command holds the workspace.
    """
    root = workspace.root
    with workspace.lock(timeout=wait, purpose="ita-vc push"):
        branch = gitcli.branch(root)
        if branch is None:
            raise UsageError("HEAD is detached: check out the branch to push (`git switch NAME`)")
        _check_git_remote(root, git_remote)
        new = set(gitcli.rev_list(root, "HEAD", "--not", f"--remotes={git_remote}"))
        runs = recorded_runs(workspace)
        pins = pinned_runs(workspace)
        chosen = sorted(
            r for r, rec in runs.items() if (set(rec.commits) & new) or (r in pins and rec.commits)
        )
        with open_remote(root, dvc_remote, timeout=timeout) as remote:
            report = PushReport(branch, git_remote, remote.name, remote.url, len(new), chosen)
            report.pins = len(pins)
            wanted, labels = _needs(workspace, remote, runs, chosen)
            report.objects_needed = len(wanted)
            on_remote = remote.has(wanted)
            report.already_on_remote = len(on_remote)
            to_push = sorted(set(wanted) - on_remote)
            local = local_objects(root, to_push)
            missing = sorted(set(to_push) - set(local))
            if missing:
                report.missing = _describe(missing, wanted, labels)
                if not allow_missing:
                    raise IntegrityError(
                        f"{len(missing)} object(s) are neither in the local cache nor on DVC "
                        f"remote {remote.name!r}; nothing was pushed:\n  "
                        + "\n  ".join(report.missing[:20])
                        + ("\n  ..." if len(missing) > 20 else "")
                        + "\nrestore them (`ita-vc trash restore RUN_ID`, `dvc fetch` from "
                        "another remote, or re-run), or push without them: --allow-missing"
                    )
            failed = remote.push(sorted(local), jobs=jobs, progress=progress)
            if failed:
                raise RemoteError(
                    f"{len(failed)} object(s) failed to upload to DVC remote "
                    f"{remote.name!r}; git was not pushed (run `ita-vc push` again): "
                    + ", ".join(sorted(failed)[:10])
                )
            report.pushed = len(local)
        args = ["push", "--porcelain", "--set-upstream"]
        if _pre_push_is_dvc(root):
            args.append("--no-verify")
        args += [git_remote, f"refs/heads/{branch}:refs/heads/{branch}"]
        if pins:
            args.append(f"{_PINS}:{_PINS}")
        try:
            report.git_output = _git_remote(root, args)
        except VcsError as exc:
            raise VcsError(
                f"{exc}\nthe objects are on DVC remote {report.dvc_remote!r}; if the branch "
                f"moved on at {git_remote!r}, run `ita-vc pull`, then `ita-vc push` again"
            ) from None
    return report


# -- pull ----------------------------------------------------------------------------------
def _fetch_git(root: Path, git_remote: str, branch: str | None) -> None:
    """Fetch the branches and the pins; fast-forward the current branch to its upstream.

    Raises:
        VcsError: fetch failed, or the branch diverged (merge or rebase first).
    """
    _git_remote(root, ["fetch", "--quiet", git_remote, f"+{_PINS}:{_PINS}"])
    _git_remote(root, ["fetch", "--quiet", git_remote])
    if branch is None:
        return
    upstream = f"refs/remotes/{git_remote}/{branch}"
    if not gitcli.has_commit(root, upstream):
        return  # the remote has no such branch yet
    proc = gitcli.run(["merge", "--ff-only", "--quiet", upstream], root)
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).decode("utf-8", "replace").strip()
        raise VcsError(
            f"cannot fast-forward {branch} to {git_remote}/{branch}: {text}\n"
            f"merge or rebase it (`git merge {git_remote}/{branch}`), then `ita-vc pull` again"
        )


def _check_runs(
    workspace: Workspace,
    remote: Remote,
    runs: dict[str, RecordedRun],
    chosen: list[str],
) -> list[RunCheck]:
    """Light verification: each snapshot's hash, each object in the cache or on the remote."""
    root = workspace.root
    wanted, labels = _run_needs(runs, chosen, tracked_paths(root))
    _expand(root, remote, wanted, labels)
    local = local_objects(root, sorted(wanted))
    on_remote = remote.has(set(wanted) - set(local))
    absent = set(wanted) - set(local) - on_remote
    checks = []
    for run_id in chosen:
        snapshot = runs[run_id].snapshot
        missing = sorted(f"{labels.get(o, '?')} ({o})" for o in absent if run_id in wanted[o])
        intact = snapshot.get("snapshot_sha256") == snapshot_hash(snapshot)
        checks.append(RunCheck(run_id, intact, tuple(missing)))
    return checks


def pull_workspace(
    workspace: Workspace,
    *,
    git_remote: str = "origin",
    dvc_remote: str | None = None,
    fetch_git: bool = True,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    wait: float = 0,
) -> PullReport:
    """``ita-vc pull`` (see the module docstring); ``fetch_git`` False skips git (after a
    clone).

    Raises:
        UsageError: unknown git remote.
        ConfigError: no such DVC remote (or no default).
        RemoteError: refused credentials, no answer in time.
        VcsError: git fetch failed or the branch diverged (nothing was checked out).
        WorkspaceLockedError: another command holds the workspace.
    """
    root = workspace.root
    with workspace.lock(timeout=wait, purpose="ita-vc pull"):
        branch = gitcli.branch(root)
        before = gitcli.head(root)
        if fetch_git:
            _check_git_remote(root, git_remote)
            _fetch_git(root, git_remote, branch)
        after = gitcli.head(root)
        if after is None:
            raise UsageError(f"{root}: no commit to pull objects for")
        new = set(
            gitcli.rev_list(root, after, "--not", before)
            if before and fetch_git
            else gitcli.rev_list(root, after)
        )
        runs = recorded_runs(workspace)
        pins = pinned_runs(workspace)
        chosen = sorted(
            r for r, rec in runs.items() if (set(rec.commits) & new) or (r in pins and rec.commits)
        )
        with open_remote(root, dvc_remote, timeout=timeout) as remote:
            report = PullReport(str(root), git_remote, remote.name, remote.url, branch)
            report.before, report.after, report.commits = before, after, len(new)
            wanted: dict[str, set[str]] = {}
            labels: dict[str, str] = {}
            for path, oid in workspace_objects(root):
                wanted.setdefault(oid, set()).add("workspace")
                labels.setdefault(oid, path)
            report.objects_needed = len(wanted)
            fetched, failed = _fetch_all(root, remote, wanted, labels, jobs, progress)
            report.objects_needed = len(wanted)
            report.fetched = fetched
            report.missing_remotely = _describe(sorted(failed), wanted, labels)
            report.kept_local_changes = checkout_workspace(root)
            report.runs = _check_runs(workspace, remote, runs, chosen)
    return report


# -- reproduce -----------------------------------------------------------------------------
def fetch_run_inputs(
    workspace: Workspace,
    snapshot: dict[str, Any],
    *,
    dvc_remote: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Bring into the local cache the DVC-tracked inputs a run needs to be reproduced (its
    recorded deps under DVC-tracked paths, directory deps file by file) that the cache lacks,
    from ``dvc_remote`` (default: core.remote). Returns how many objects were fetched; 0
    without opening any remote when nothing is missing.

    Raises:
        VcsError: objects missing locally with no DVC remote configured, or missing on the
            remote too (named). RemoteError: the remote refused or did not answer.
    """
    from ita_vc.vcs.remote import default_remote  # lazy: keeps dvc out of the import

    root = workspace.root
    deps = [
        (path, md5)
        for role, path, md5 in dvc_objects(snapshot, tracked_paths(root))
        if role == "dep"
    ]
    wanted = {md5: {"the run"} for _path, md5 in deps}
    labels = {md5: path for path, md5 in deps}
    dirs = [o for o in wanted if o.endswith(".dir")]
    local = local_objects(root, sorted(wanted))
    if set(dirs) <= set(local):
        for oid in dirs:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                for entry in json.loads(local[oid].read_bytes()):
                    wanted.setdefault(str(entry["md5"]), {"the run"})
        if not set(wanted) - set(local_objects(root, sorted(wanted))):
            return 0
    if not (dvc_remote or default_remote(root)):
        raise VcsError(
            "the run's inputs are not in the local cache and no DVC remote is configured: "
            "`dvc remote add -d NAME URL`, or fetch them into the cache by hand"
        )
    with open_remote(root, dvc_remote, timeout=timeout) as remote:
        fetched, failed = _fetch_all(root, remote, wanted, labels)
        if failed:
            raise VcsError(
                f"{len(failed)} input object(s) of the run are neither in the local cache nor "
                f"on DVC remote {remote.name!r}:\n  "
                + "\n  ".join(_describe(sorted(failed), wanted, labels)[:20])
            )
    return fetched


# -- clone ---------------------------------------------------------------------------------
def clone_workspace(
    url: str,
    directory: str | Path,
    *,
    dvc_remote: str | None = None,
    hooks: bool = True,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
) -> PullReport:
    """``ita-vc clone URL DIR``: git clone, ita-vc's hooks, then :func:`pull_workspace`.

    Raises:
        UsageError: DIR exists and is not empty.
        VcsError: git clone failed.
        NotInitializedError: the clone is not an ita-vc workspace (it stays in DIR).
        RemoteError, ConfigError: the objects could not be pulled (the clone stays; set the
            credentials and run ``ita-vc pull`` there).
    """
    from ita_vc.rules.hook_install import install_hooks  # lazy: only clone installs hooks
    from ita_vc.workspace import Workspace

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target}: exists and is not an empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    _git_remote(target.parent, ["clone", "--quiet", url, str(target.resolve())])
    root = target.resolve()
    try:
        workspace = Workspace.discover(root)
    except NotInitializedError as exc:
        raise NotInitializedError(
            f"cloned into {target}, but it is not an ita-vc workspace ({exc})"
        ) from None
    if hooks:
        install_hooks(root)
    try:
        return pull_workspace(
            workspace,
            dvc_remote=dvc_remote,
            fetch_git=False,
            jobs=jobs,
            timeout=timeout,
            progress=progress,
        )
    except RemoteError as exc:
        raise RemoteError(
            f"{exc}\ncloned into {target}; the objects were not pulled: set the credentials "
            f"there (`dvc remote modify --local ...` or the environment) and run `ita-vc pull`"
        ) from None
