from __future__ import annotations

import shutil

import pytest

from tests.helpers import TmpRepo, make_pipeline_repo


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
    return copy
