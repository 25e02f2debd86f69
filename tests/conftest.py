"""Fixtures: isolation from the user's HOME/git config, and temporary git + DVC workspaces."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TmpRepo, run

os.environ["COLUMNS"] = "200"  # rich consoles are created once per process

_ISOLATED_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "DVC_NO_ANALYTICS": "1",
    "ITA_VC_TESTING": "1",
    "COLUMNS": "200",
}


@pytest.fixture(scope="session")
def _fake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Test User\n\temail = user@example.com\n"
        "[commit]\n\tgpgsign = false\n"
    )
    return home


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, _fake_home: Path, tmp_path: Path) -> Iterator[None]:
    """Pin HOME, XDG dirs, git identity and DVC dirs; fail if the real home is written."""
    monkeypatch.setenv("HOME", str(_fake_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(_fake_home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_fake_home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(_fake_home / ".local" / "share"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(_fake_home / ".gitconfig"))
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(_fake_home / ".config" / "dvc"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(_fake_home / ".config" / "dvc-system"))
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(_fake_home / ".cache" / "dvc-site"))
    for key in [k for k in os.environ if k.startswith("GIT_") and k not in _ISOLATED_ENV]:
        if key not in ("GIT_CONFIG_GLOBAL",):
            monkeypatch.delenv(key, raising=False)
    for key, value in _ISOLATED_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory: pytest.TempPathFactory, _fake_home: Path) -> Path:
    """One ``ita-vc init`` + initial commit per test session; tests get copies of it."""
    from ita_vc.initialize import init_workspace

    root = tmp_path_factory.mktemp("template") / "repo"
    env = {
        **os.environ, **_ISOLATED_ENV, "HOME": str(_fake_home),
        "GIT_CONFIG_GLOBAL": str(_fake_home / ".gitconfig"),
        "DVC_SITE_CACHE_DIR": str(_fake_home / ".cache" / "dvc-site"),
        "DVC_GLOBAL_CONFIG_DIR": str(_fake_home / ".config" / "dvc"),
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        init_workspace(root)
        run(["git", "add", "-A"], cwd=root)
        run(["git", "commit", "-q", "-m", "ita-vc init"], cwd=root)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root


@pytest.fixture
def tmp_repo(_template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TmpRepo:
    """A fresh git + DVC + ita-vc workspace (copied from the session template); cwd is its root."""
    root = tmp_path / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    return TmpRepo(root)


@pytest.fixture
def workspace(tmp_repo: TmpRepo):
    """The :class:`ita_vc.Workspace` of ``tmp_repo``."""
    from ita_vc.workspace import Workspace

    return Workspace.at(tmp_repo)


@pytest.fixture
def store(workspace):
    """A :class:`PersistentStore` on ``tmp_repo``."""
    from ita_vc.store import PersistentStore

    return PersistentStore(workspace)


_REAL_HOME = Path(os.path.expanduser("~"))


@pytest.fixture(scope="session", autouse=True)
def _real_home_untouched() -> Iterator[None]:
    """Fail the session if any test wrote into the real home directory (pre-commit's guard)."""
    def snapshot() -> dict[str, float]:
        try:
            return {p.name: p.stat().st_mtime for p in _REAL_HOME.iterdir()
                    if p.name not in (".cache", ".local", ".bash_history", ".python_history")}
        except OSError:
            return {}

    before = snapshot()
    yield
    after = snapshot()
    added = sorted(set(after) - set(before))
    assert not added, f"tests wrote into the real home directory: {added}"
