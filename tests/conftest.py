"""Fixtures: isolation from the user's HOME/git config, and temporary git + DVC workspaces."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TmpRepo, make_pipeline_repo, run

os.environ["COLUMNS"] = "200"  # rich consoles are created once per process

_ISOLATED_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "DVC_NO_ANALYTICS": "1",
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
def _isolate(monkeypatch: pytest.MonkeyPatch, _fake_home: Path, tmp_path: Path) -> None:
    """Pin HOME, XDG dirs, git identity and DVC dirs for each test; cwd is its tmp_path."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key, raising=False)
    for key, value in _session_values(_fake_home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)


def _session_values(home: Path) -> dict[str, str]:
    return {
        **_ISOLATED_ENV,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "DVC_GLOBAL_CONFIG_DIR": str(home / ".config" / "dvc"),
        "DVC_SYSTEM_CONFIG_DIR": str(home / ".config" / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(home / ".cache" / "dvc-site"),
    }


@pytest.fixture(scope="session", autouse=True)
def _session_env(_fake_home: Path) -> Iterator[None]:
    """The isolated environment for session- and module-scoped fixtures too."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        del os.environ[key]
    os.environ.update(_session_values(_fake_home))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory: pytest.TempPathFactory, _session_env: None) -> Path:
    """One ``ita-vc init`` + initial commit per test session; tests get copies of it."""
    from ita_vc.initialize import init_workspace

    root = tmp_path_factory.mktemp("template") / "repo"
    init_workspace(root)
    run(["git", "add", "-A"], cwd=root)
    run(["git", "commit", "-q", "-m", "ita-vc init"], cwd=root)
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
            return {
                p.name: p.stat().st_mtime
                for p in _REAL_HOME.iterdir()
                if p.name not in (".cache", ".local", ".bash_history", ".python_history")
            }
        except OSError:
            return {}

    before = snapshot()
    yield
    after = snapshot()
    added = sorted(set(after) - set(before))
    assert not added, f"tests wrote into the real home directory: {added}"


@pytest.fixture(scope="module")
def ran_repo(_template_repo, tmp_path_factory):
    """A workspace where `ita-vc run` recorded one run (shared read-only by a module)."""
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.workspace import Workspace

    root = tmp_path_factory.mktemp("ran") / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root))
    head_before = repo.git("rev-parse", "HEAD").stdout.strip()
    report = run_pipeline(Workspace.at(repo), note="first run")
    repo.head_before = head_before  # type: ignore[attr-defined]
    repo.report = report  # type: ignore[attr-defined]
    return repo


@pytest.fixture
def run_copy(ran_repo, tmp_path, monkeypatch):
    """A private copy of ``ran_repo`` (for tests that damage it); cwd is its root."""
    root = tmp_path / "copy"
    shutil.copytree(ran_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    copy = TmpRepo(root)
    copy.report = ran_repo.report  # type: ignore[attr-defined]
    copy.head_before = ran_repo.head_before  # type: ignore[attr-defined]
    return copy
