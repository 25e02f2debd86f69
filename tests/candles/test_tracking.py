"""dvc add of the data root, and the path-limited commit of what it changed."""

from __future__ import annotations

import pytest

from ita_vc.candles import tracking
from ita_vc.errors import VcsError
from tests.candles.conftest import binance_lines, candles
from tests.helpers import invoke


def _import(tmp_path, cstore, **kwargs):
    path = tmp_path / "a.csv"
    path.write_text(binance_lines(candles(10)))
    return cstore.import_files([path], market="generic", symbol="X", **kwargs)


def test_data_root_files_follow_the_configured_data_root(workspace):
    assert tracking.data_root_files(workspace) == ("data.dvc", ".gitignore")


def test_nothing_to_commit_makes_no_commit(cstore, workspace, tmp_repo, tmp_path):
    report = _import(tmp_path, cstore, commit=True)
    assert report.committed == tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    assert tracking.commit_data_root(workspace, ["data.dvc"], "again") is None
    assert tmp_repo.git("rev-parse", "HEAD").stdout.strip() == report.committed


def test_a_refused_commit_says_what_was_done(tmp_repo, tmp_path):
    hook = tmp_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'no commits today' >&2\nexit 1\n")
    hook.chmod(0o755)
    path = tmp_path / "a.csv"
    path.write_text(binance_lines(candles(10)))
    head = tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    result = invoke("data", "import", str(path), "--market", "generic", "--symbol", "X", "--commit")
    assert result.exit_code == 1
    assert (
        "the candles are written and tracked, but committing data.dvc, .gitignore failed "
        "(they stay staged)"
    ) in result.stderr
    assert "no commits today" in result.stderr
    assert tmp_repo.git("rev-parse", "HEAD").stdout.strip() == head
    staged = tmp_repo.git("diff", "--cached", "--name-only").stdout.split()
    assert sorted(staged) == [".gitignore", "data.dvc"]
    assert (tmp_repo / "data/candles/generic/X/1m.parquet").is_file()


def test_a_busy_git_index_is_waited_for(cstore, tmp_repo, tmp_path, monkeypatch):
    from ita_vc.vcs import gitcli

    real_git, failures, naps = gitcli.git, [2], []

    def busy_git(args, cwd, **kwargs):
        if args[0] == "add" and failures[0]:
            failures[0] -= 1
            raise VcsError(
                "git add failed: fatal: Unable to create '.git/index.lock': File exists."
            )
        return real_git(args, cwd, **kwargs)

    monkeypatch.setattr(gitcli, "git", busy_git)
    monkeypatch.setattr(tracking.time, "sleep", naps.append)
    report = _import(tmp_path, cstore, commit=True)
    assert report.committed and naps == [0.1, 0.1]
    monkeypatch.setattr(tracking, "_INDEX_LOCK_RETRIES", 0)
    failures[0] = 1
    with pytest.raises(VcsError, match="index.lock"):
        tracking.commit_data_root(cstore.workspace, ["data.dvc"], "m")
