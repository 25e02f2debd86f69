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
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ita_vc.errors import VcsError
from ita_vc.vcs import gitcli

__all__ = ["HOOK_MARKER", "HookReport", "hooks_dir", "install_hooks", "uninstall_hooks"]

HOOK_MARKER = "# ita-vc pre-commit hook"
_DVC_MARKER = "dvc git-hook"
_DVC_HOOKS = ("post-checkout", "pre-push")


@dataclass(slots=True)
class HookReport:
    """What an install or uninstall did."""

    hooks_dir: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)


def hooks_dir(root: Path) -> Path:
    """The folder git runs hooks from (``git rev-parse --git-path hooks``)."""
    rel = gitcli.git(["rev-parse", "--git-path", "hooks"], root).decode().strip()
    path = Path(rel)
    return path if path.is_absolute() else (root / path).resolve()


def _executable(path: Path, text: str) -> None:
    from ita_vc.store.atomic import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))
    os.chmod(path, 0o755)  # noqa: S103 - git hooks must be executable


def _dvc_executable() -> str:
    candidate = Path(sys.executable).parent / "dvc"
    return str(candidate) if candidate.exists() else "dvc"


def _pre_commit_script(python: str, dvc: str | None) -> str:
    lines = [
        "#!/bin/sh",
        f"{HOOK_MARKER} (installed by `ita-vc hooks install`; remove with "
        "`ita-vc hooks uninstall`)",
        'HOOKS="$(cd "$(dirname "$0")" && pwd)"',
        'if [ -x "$HOOKS/pre-commit.legacy" ]; then',
        '    "$HOOKS/pre-commit.legacy" "$@" || exit $?',
        "fi",
        f"{shlex.quote(python)} -m ita_vc._hook || exit $?",
    ]
    if dvc:
        lines.append(f'{shlex.quote(dvc)} git-hook pre-commit "$@" || exit $?')
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def install_hooks(root: Path, *, with_dvc: bool | None = None,
                  python: str | None = None) -> HookReport:
    """Install the pre-commit hook (and DVC's hooks in a DVC repository unless told not to).

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
    if hook.exists() and HOOK_MARKER not in hook.read_text("utf-8", errors="replace"):
        if legacy.exists():
            raise VcsError(
                f"{hook} is not ita-vc's and {legacy} exists too; merge them by hand, then run "
                "`ita-vc hooks install` again"
            )
        os.replace(hook, legacy)
        report.moved.append("pre-commit -> pre-commit.legacy")
    legacy_is_dvc = legacy.exists() and _DVC_MARKER in legacy.read_text("utf-8", errors="replace")
    dvc = _dvc_executable() if with_dvc and not legacy_is_dvc else None
    _executable(hook, _pre_commit_script(python or sys.executable, dvc))
    report.written.append("pre-commit")
    if with_dvc:
        for name in _DVC_HOOKS:
            target = folder / name
            if target.exists():
                report.kept.append(name)
                continue
            _executable(target, f'#!/bin/sh\nexec {shlex.quote(_dvc_executable())} git-hook '
                                f'{name} "$@"\n')
            report.written.append(name)
    return report


def uninstall_hooks(root: Path) -> HookReport:
    """Remove ita-vc's pre-commit hook and put a ``pre-commit.legacy`` back in its place."""
    folder = hooks_dir(root)
    report = HookReport(folder)
    hook = folder / "pre-commit"
    if hook.exists() and HOOK_MARKER in hook.read_text("utf-8", errors="replace"):
        hook.unlink()
        report.written.append("removed pre-commit")
        legacy = folder / "pre-commit.legacy"
        if legacy.exists():
            os.replace(legacy, hook)
            report.moved.append("pre-commit.legacy -> pre-commit")
    return report
