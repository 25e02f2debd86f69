"""ita_vc.vcs.gitcli: the one way ita-vc runs git (gitpython is not used)."""

from __future__ import annotations

import sys

import pytest

from ita_vc.errors import VcsError
from ita_vc.rules.registry import default_author
from ita_vc.vcs import gitcli
from tests.helpers import run


def test_find_toplevel_outside_git_and_missing_folders_is_none(tmp_path):
    assert gitcli.find_toplevel(tmp_path) is None
    assert gitcli.find_toplevel(tmp_path / "nope") is None


def test_init_then_find_toplevel_from_the_root_and_a_subfolder(tmp_path):
    gitcli.init(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert gitcli.find_toplevel(tmp_path) == tmp_path.resolve()
    assert gitcli.find_toplevel(tmp_path / "a" / "b") == tmp_path.resolve()
    assert gitcli.branch(tmp_path) == "main"


def test_init_failure_is_a_vcs_error(tmp_path):
    with pytest.raises(VcsError, match="git init failed in"):
        gitcli.init(tmp_path / "missing")


def test_run_returns_the_exit_code_and_git_raises_with_stderr(tmp_path):
    proc = gitcli.run(["rev-parse", "--show-toplevel"], tmp_path)
    assert proc.returncode != 0 and proc.stderr
    with pytest.raises(VcsError, match="git rev-parse --show-toplevel failed: .*not a git"):
        gitcli.git(["rev-parse", "--show-toplevel"], tmp_path)


def test_a_git_that_hangs_is_a_vcs_error(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    with pytest.raises(VcsError, match="did not finish in 0.5 s"):
        gitcli.git(["config", "user.name"], tmp_path, timeout=0.5)


def test_default_author_is_the_git_user_else_the_login_name(tmp_path, monkeypatch):
    gitcli.init(tmp_path)
    run(["git", "config", "user.name", "Ada Lovelace"], cwd=tmp_path)
    assert default_author(tmp_path) == "Ada Lovelace"
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    monkeypatch.setenv("USER", "ada")
    assert default_author(tmp_path) == "ada"


def test_nothing_imports_gitpython():
    code = "import ita_vc.vcs.gitcli, ita_vc.rules.registry, sys\nprint('git' in sys.modules)"
    proc = run([sys.executable, "-c", code], cwd=".")
    assert proc.stdout.strip() == "False"
