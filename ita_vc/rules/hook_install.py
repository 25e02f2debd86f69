"""Install the rule checks as git hooks, beside any hook already there (DVC's included).

``ita-vc hooks install`` writes ``.git/hooks/pre-commit`` (where git looks: it honours
``core.hooksPath``). An existing foreign hook is moved to ``pre-commit.legacy`` and called
first, so nothing the user had stops running. DVC: ``dvc install`` refuses to run when a hook
exists and its hooks end in ``exec``. So:

* ``dvc install`` ran before: its pre-commit becomes ``pre-commit.legacy`` (run as a child
  process, so its ``exec`` ends only that child) and its post-checkout/pre-push stay;
* ``dvc install`` after: it would refuse, so ``ita-vc hooks install`` does its job too in a DVC
  repository: it adds DVC's post-checkout and pre-push hooks where there are none, and calls
  ``dvc git-hook pre-commit`` from its own pre-commit (``--no-dvc`` to skip).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ita_vc.errors import VcsError
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.vcs import gitcli

__all__ = [
    "HOOK_MARKER",
    "HookReport",
    "hooks_dir",
    "install_hooks",
    "is_dvc_pre_push",
    "uninstall_hooks",
]

HOOK_MARKER = "# ita-vc pre-commit hook"
#: The line every hook ita-vc writes carries; uninstall removes exactly the hooks that have it.
MARK = "# ita-vc hook: installed by `ita-vc hooks install`, removed by `ita-vc hooks uninstall`"
_DVC_MARKER = "dvc git-hook"
_DVC_HOOKS = ("post-checkout", "pre-push")


@dataclass(slots=True)
class HookReport:
    """What an install or uninstall did (hook names, relative to :attr:`hooks_dir`)."""

    hooks_dir: Path
    written: list[str] = field(default_factory=list)  # new, or a stale ita-vc hook rewritten
    kept: list[str] = field(default_factory=list)  # someone else's hook, left alone
    moved: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # ita-vc's hook, already up to date
    removed: list[str] = field(default_factory=list)


def hooks_dir(root: Path) -> Path:
    """The folder git runs hooks from (``git rev-parse --git-path hooks``)."""
    rel = gitcli.git(["rev-parse", "--git-path", "hooks"], root).decode().strip()
    path = Path(rel)
    return path if path.is_absolute() else (root / path).resolve()


def _read(path: Path) -> str | None:
    try:
        return path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise VcsError(f"{path} is a folder, not a hook; remove it by hand") from exc


def _ours(text: str | None, name: str) -> bool:
    """True for a hook ita-vc wrote: it carries the mark (or, written by an earlier ita-vc,
    its pre-commit marker or the exact DVC hook it wrote then)."""
    if text is None:
        return False
    if MARK in text or (name == "pre-commit" and HOOK_MARKER in text):
        return True
    return name in _DVC_HOOKS and text == _legacy_dvc_hook(name)


def _legacy_dvc_hook(name: str) -> str:
    """The DVC hook ita-vc <= 0.1 wrote (no mark), recognised only with this venv's dvc."""
    return f'#!/bin/sh\nexec {shlex.quote(_dvc_executable())} git-hook {name} "$@"\n'


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
    os.chmod(path, 0o755)  # noqa: S103 - git hooks must be executable


def _dvc_executable() -> str:
    candidate = Path(sys.executable).parent / "dvc"
    return str(candidate) if candidate.exists() else "dvc"


def _missing(program: str) -> list[str]:
    """Shell lines that stop with a clear message when an absolute program path is gone."""
    if not program.startswith("/"):
        return []
    message = (
        f"ita-vc hook: {program} is missing (was the virtualenv moved or recreated?); "
        "run `ita-vc hooks install` again from the new one"
    )
    return [
        f"if [ ! -x {shlex.quote(program)} ]; then",
        f"    echo {shlex.quote(message)} >&2",
        "    exit 1",
        "fi",
    ]


def _pre_commit_script(python: str, dvc: str | None) -> str:
    lines = [
        "#!/bin/sh",
        f"{HOOK_MARKER} (runs `ita-vc rule check` on what is staged)",
        MARK,
        'HOOKS="$(cd "$(dirname "$0")" && pwd)"',
        'if [ -x "$HOOKS/pre-commit.legacy" ]; then',
        '    "$HOOKS/pre-commit.legacy" "$@" || exit $?',
        "fi",
        *_missing(python),
        f"{shlex.quote(python)} -m ita_vc.rules.hook_entry || exit $?",
    ]
    if dvc:
        lines += [*_missing(dvc), f'{shlex.quote(dvc)} git-hook pre-commit "$@" || exit $?']
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def _dvc_script(name: str, dvc: str) -> str:
    if name == "post-checkout":
        # DVC's own post-checkout (`dvc git-hook post-checkout`: branch checkouts only, never
        # mid-rebase), with --allow-missing: a stage that never ran (the grid, until you run
        # it) has no output to restore, which plain `dvc checkout` reports as an error on
        # every `git checkout`
        return (
            "\n".join(
                [
                    "#!/bin/sh",
                    MARK,
                    "# DVC's post-checkout: restore the outputs of the checked-out revision",
                    *_missing(dvc),
                    '[ "${PRE_COMMIT_CHECKOUT_TYPE:-$3}" = "1" ] || exit 0',
                    '[ -d "$(git rev-parse --git-path rebase-merge)" ] && exit 0',
                    f"exec {shlex.quote(dvc)} checkout --allow-missing --quiet",
                ]
            )
            + "\n"
        )
    return (
        "\n".join(
            ["#!/bin/sh", MARK, *_missing(dvc), f'exec {shlex.quote(dvc)} git-hook {name} "$@"']
        )
        + "\n"
    )


def is_dvc_pre_push(root: Path) -> bool:
    """True when the repository's pre-push hook is only DVC's (``dvc git-hook pre-push``, as
    ita-vc or ``dvc install`` wrote it): it pushes the workspace's objects to the default
    remote, which ``ita-vc push`` has just done for the remote it was given."""
    text = _read(hooks_dir(root) / "pre-push")
    if text is None or _ours(text, "pre-push"):
        return text is not None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return bool(lines) and all(
        re.fullmatch(r"exec \S*dvc git-hook pre-push( \"\$@\"| \$@)?", ln) for ln in lines
    )


def _put(path: Path, text: str, report: HookReport) -> None:
    """Write an ita-vc hook unless it is already exactly ``text`` (re-running is a no-op)."""
    if _read(path) == text:
        report.unchanged.append(path.name)
        return
    _write(path, text)
    report.written.append(path.name)


def install_hooks(
    root: Path, *, with_dvc: bool | None = None, python: str | None = None
) -> HookReport:
    """Install the pre-commit hook (and DVC's hooks in a DVC repository unless told not to).

    The hooks name the absolute paths of this environment's python (and dvc): after moving or
    recreating the virtualenv, run this again; it rewrites its own hooks in place and leaves
    everything else alone. Running it twice changes nothing.

    Raises:
        VcsError: not a git repository, or both a foreign hook and a ``.legacy`` exist.
    """
    folder = hooks_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    report = HookReport(folder)
    if with_dvc is None:
        with_dvc = (root / ".dvc").is_dir()
    hook = folder / "pre-commit"
    legacy = folder / "pre-commit.legacy"
    current = _read(hook)
    if current is not None and not _ours(current, "pre-commit"):
        if os.path.lexists(legacy):
            raise VcsError(
                f"{hook} is not ita-vc's and {legacy} exists too; merge them by hand, then run "
                "`ita-vc hooks install` again"
            )
        os.replace(hook, legacy)
        report.moved.append("pre-commit -> pre-commit.legacy")
    legacy_is_dvc = _DVC_MARKER in (_read(legacy) or "")
    dvc = _dvc_executable() if with_dvc and not legacy_is_dvc else None
    _put(hook, _pre_commit_script(python or sys.executable, dvc), report)
    if with_dvc:
        for name in _DVC_HOOKS:
            target = folder / name
            if os.path.lexists(target) and not _ours(_read(target), name):
                report.kept.append(name)
                continue
            _put(target, _dvc_script(name, _dvc_executable()), report)
    return report


def uninstall_hooks(root: Path) -> HookReport:
    """Remove every hook ita-vc wrote (and only those), putting a ``pre-commit.legacy`` back
    as ``pre-commit``: the hooks folder is left as it was before ``hooks install``."""
    folder = hooks_dir(root)
    report = HookReport(folder)
    for name in ("pre-commit", *_DVC_HOOKS):
        path = folder / name
        if not path.is_symlink() and _ours(_read(path), name):
            path.unlink()
            report.removed.append(name)
        elif os.path.lexists(path):
            report.kept.append(name)
    hook, legacy = folder / "pre-commit", folder / "pre-commit.legacy"
    if os.path.lexists(legacy) and not os.path.lexists(hook):
        os.replace(legacy, hook)
        report.moved.append("pre-commit.legacy -> pre-commit")
    return report
