from __future__ import annotations

import hashlib

import pytest

from ita_vc.config import default_config_text
from ita_vc.errors import VcsError
from ita_vc.initialize import init_workspace
from tests.helpers import run


def _tree_digest(root):
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts[:1]:
            rel = path.relative_to(root).as_posix()
            digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def test_init_creates_a_complete_workspace(tmp_path):
    root = tmp_path / "ws"
    report = init_workspace(root)
    assert report.changed
    for rel in (
        "configs/config.yaml",
        "params.yaml",
        "dvc.yaml",
        "rules/.gitkeep",
        ".gitignore",
        ".dvc/config",
        ".dvcignore",
    ):
        assert (root / rel).is_file(), rel
    assert (root / ".git").is_dir()
    assert (root / "configs/config.yaml").read_text() == default_config_text()
    ignore = (root / ".gitignore").read_text().splitlines()
    assert "/.ita/" in ignore and "/logs/" in ignore
    assert "analytics = False" in (root / ".dvc/config").read_text()
    # DVC accepts the pipeline template and git sees a clean, committable tree
    run(["git", "add", "-A"], cwd=root)
    run(["git", "commit", "-q", "-m", "init"], cwd=root)
    assert run(["git", "status", "--porcelain"], cwd=root).stdout == ""


def test_init_twice_changes_nothing_and_says_so(tmp_path):
    root = tmp_path / "ws"
    init_workspace(root)
    before = _tree_digest(root)
    again = init_workspace(root)
    assert not again.changed
    assert "configs/config.yaml" in again.kept
    assert _tree_digest(root) == before


def test_init_never_overwrites_user_files(tmp_path):
    root = tmp_path / "ws"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text("paths:\n  logs_root: mylogs\n")
    (root / "params.yaml").write_text("mine: true\n")
    (root / ".gitignore").write_text("*.tmp")  # no final newline
    report = init_workspace(root)
    assert (root / "params.yaml").read_text() == "mine: true\n"
    assert "params.yaml" in report.kept
    ignore = (root / ".gitignore").read_text().splitlines()
    assert ignore[0] == "*.tmp" and "/mylogs/" in ignore


def test_init_inside_another_git_repo_is_refused(tmp_path):
    run(["git", "init", "-q", str(tmp_path)], cwd=tmp_path)
    with pytest.raises(VcsError, match="inside the git work tree"):
        init_workspace(tmp_path / "sub")


def test_init_on_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(Exception, match="not a folder"):
        init_workspace(tmp_path / "f")


def test_init_validates_an_existing_config(tmp_path):
    root = tmp_path / "ws"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text("bogus: 1\n")
    with pytest.raises(Exception, match="unknown key"):
        init_workspace(root)


def test_init_in_an_existing_git_repo_keeps_history(tmp_path):
    run(["git", "init", "-q", str(tmp_path)], cwd=tmp_path)
    (tmp_path / "README").write_text("hi")
    run(["git", "add", "README"], cwd=tmp_path)
    run(["git", "commit", "-q", "-m", "first"], cwd=tmp_path)
    report = init_workspace(tmp_path)
    assert "git repository" in report.kept
    assert run(["git", "log", "--oneline"], cwd=tmp_path).stdout.count("\n") == 1
