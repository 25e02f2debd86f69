"""`hooks install` then `hooks uninstall` leaves the hooks folder as it was (issue 13 item 1):
every hook ita-vc writes is marked, only marked hooks are removed, a pre-commit.legacy is put
back. Re-running install is idempotent and updates a stale ita-vc hook in place (issue 13 item
14: the hooks name the venv's python and dvc by absolute path)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from ita_vc.rules.hook_install import install_hooks, uninstall_hooks
from tests.helpers import invoke

pytestmark = pytest.mark.slow

MARK = "# ita-vc hook: installed by `ita-vc hooks install`"  # on every hook ita-vc writes


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry of the hooks folder: content and permission bits."""
    return {
        p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(folder.iterdir())
    }


def _hook(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)
    os.chmod(folder / name, 0o755)


@pytest.fixture
def hooks(tmp_repo) -> Path:
    folder = tmp_repo / ".git/hooks"
    folder.mkdir(exist_ok=True)
    return folder


def test_install_uninstall_leaves_the_folder_as_it_was(tmp_repo, hooks):
    before = _state(hooks)
    report = install_hooks(tmp_repo)  # a DVC repository: its hooks too
    assert sorted(report.written) == ["post-checkout", "pre-commit", "pre-push"]
    assert all(MARK in (hooks / n).read_text() for n in report.written)
    removed = uninstall_hooks(tmp_repo)
    assert sorted(removed.removed) == ["post-checkout", "pre-commit", "pre-push"]
    assert _state(hooks) == before


def test_with_a_foreign_hook_before(tmp_repo, hooks):
    _hook(hooks, "pre-commit", "#!/bin/sh\necho mine\n")
    _hook(hooks, "post-checkout", "#!/bin/sh\necho my post-checkout\n")
    before = _state(hooks)
    report = install_hooks(tmp_repo)
    assert report.moved == ["pre-commit -> pre-commit.legacy"]
    assert report.kept == ["post-checkout"] and "pre-push" in report.written
    uninstall_hooks(tmp_repo)
    assert _state(hooks) == before


def test_with_dvc_install_before(tmp_repo, hooks):
    tmp_repo.dvc("install")
    before = _state(hooks)
    report = install_hooks(tmp_repo)
    assert sorted(report.kept) == ["post-checkout", "pre-push"]  # DVC's, not ours
    result = invoke("hooks", "uninstall")
    assert result.exit_code == 0
    assert "removed pre-commit" in result.stdout
    assert "moved     pre-commit.legacy -> pre-commit" in result.stdout
    assert _state(hooks) == before


def test_with_core_hooks_path_and_no_dvc(tmp_repo):
    tmp_repo.git("config", "core.hooksPath", "myhooks")
    folder = tmp_repo / "myhooks"
    folder.mkdir()
    _hook(folder, "pre-push", "#!/bin/sh\nexit 0\n")
    before = _state(folder)
    install_hooks(tmp_repo, with_dvc=False)
    assert sorted(p.name for p in folder.iterdir()) == ["pre-commit", "pre-push"]
    uninstall_hooks(tmp_repo)
    assert _state(folder) == before


def test_reinstalling_is_idempotent(tmp_repo, hooks):
    install_hooks(tmp_repo)
    once = _state(hooks)
    report = install_hooks(tmp_repo)
    assert report.written == [] and report.moved == []
    assert sorted(report.unchanged) == ["post-checkout", "pre-commit", "pre-push"]
    assert _state(hooks) == once
    result = invoke("hooks", "install")
    assert result.exit_code == 0 and "(already up to date)" in result.stdout


def test_a_stale_hook_is_updated_in_place_after_a_venv_move(tmp_repo, hooks, registry):
    """The hooks name the venv's python and dvc; a moved venv leaves them pointing nowhere:
    the hook says so, and `hooks install` fixes them in place (nothing moved to .legacy)."""
    gone = "/nonexistent/old-venv/bin/python"
    install_hooks(tmp_repo, python=gone)
    (hooks / "post-checkout").write_text(
        (hooks / "post-checkout")
        .read_text()
        .replace(str(Path(sys.executable).parent / "dvc"), "/nonexistent/old-venv/bin/dvc")
    )
    registry.new("Frank", author="t")
    tmp_repo.git("add", "-A")
    proc = tmp_repo.git("commit", "-q", "-m", "Frank", check=False)
    assert proc.returncode == 1
    assert (
        f"ita-vc hook: {gone} is missing (was the virtualenv moved or recreated?); run "
        "`ita-vc hooks install` again from the new one"
    ) in proc.stderr
    report = install_hooks(tmp_repo)
    assert sorted(report.written) == ["post-checkout", "pre-commit"]
    assert report.unchanged == ["pre-push"] and report.moved == []
    assert not (hooks / "pre-commit.legacy").exists()
    text = (hooks / "pre-commit").read_text()
    assert sys.executable in text and gone not in text
    assert "/nonexistent" not in (hooks / "post-checkout").read_text()
    tmp_repo.git("commit", "-q", "-m", "Frank")  # the hook works again


def test_hooks_written_by_an_earlier_ita_vc_are_recognised(tmp_repo, hooks):
    """ita-vc 0.1 wrote DVC hooks without a mark: exactly this text, with this venv's dvc."""
    dvc = str(Path(sys.executable).parent / "dvc")
    old = {
        name: f'#!/bin/sh\nexec {dvc} git-hook {name} "$@"\n'
        for name in ("post-checkout", "pre-push")
    }
    _hook(
        hooks,
        "pre-commit",
        "#!/bin/sh\n# ita-vc pre-commit hook (installed by `ita-vc hooks "
        f"install`)\n{sys.executable} -m ita_vc._hook || exit $?\n",
    )
    for name, text in old.items():
        _hook(hooks, name, text)
    report = uninstall_hooks(tmp_repo)
    assert sorted(report.removed) == ["post-checkout", "pre-commit", "pre-push"]
    assert not any((hooks / n).exists() for n in ("pre-commit", *old))
    _hook(hooks, "pre-push", old["pre-push"].replace(dvc, "/elsewhere/dvc"))  # not provably ours
    assert uninstall_hooks(tmp_repo).kept == ["pre-push"]
    assert (hooks / "pre-push").exists()


def test_uninstall_without_install_changes_nothing(tmp_repo, hooks):
    _hook(hooks, "pre-commit", "#!/bin/sh\necho mine\n")
    _hook(hooks, "pre-commit.legacy", "#!/bin/sh\necho older\n")
    before = _state(hooks)
    result = invoke("hooks", "uninstall")
    assert result.exit_code == 0 and "nothing changed" in result.stdout
    assert _state(hooks) == before
