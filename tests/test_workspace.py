from __future__ import annotations

import logging

import pytest

from ita_vc.errors import NotInitializedError, PersistentStoreError, WorkspaceLockedError
from ita_vc.workspace import Workspace, find_root
from tests.helpers import lock_held_elsewhere


def test_root_is_found_from_any_subfolder(tmp_repo):
    deep = tmp_repo / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_repo
    assert Workspace.discover(deep).root == tmp_repo


def test_outside_a_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(NotInitializedError, match=r"not an ita-vc workspace.*run `ita-vc init`"):
        Workspace.discover(tmp_path)
    with pytest.raises(NotInitializedError, match=r"configs/config\.yaml is missing"):
        Workspace.at(tmp_path)


def test_paths_and_relpath(workspace, tmp_path):
    assert workspace.path("data/x.csv") == workspace.root / "data" / "x.csv"
    assert workspace.relpath(workspace.root / "data" / "x.csv") == "data/x.csv"
    assert workspace.index_path == workspace.root / ".ita" / "index.sqlite"
    with pytest.raises(PersistentStoreError, match="outside the workspace"):
        workspace.relpath(tmp_path.parent / "elsewhere")


def test_logging_goes_to_the_workspace_log_only(workspace, tmp_path):
    other_root = tmp_path / "other"
    (other_root / "configs").mkdir(parents=True)
    (other_root / "configs" / "config.yaml").write_text("")
    other = Workspace.at(other_root)
    first = workspace.setup_logging()
    assert workspace.setup_logging() == first  # idempotent
    second = other.setup_logging()
    logging.getLogger("ita_vc.test").info("hello from the second workspace")
    for handler in logging.getLogger("ita_vc").handlers:
        handler.flush()
    assert "hello from the second workspace" in second.read_text()
    assert not first.exists() or "hello" not in first.read_text()


def test_workspace_lock_refuses_a_second_holder(workspace):
    with (
        lock_held_elsewhere(workspace, timeout=5),
        pytest.raises(WorkspaceLockedError, match="another ita-vc command is running"),
        workspace.lock(timeout=0.05),
    ):
        pass
    with workspace.lock():
        pass
