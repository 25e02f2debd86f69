"""Jobs end to end on both stores (issue #18): submit, worker, progress, top, cancel, adopt.

Every test runs against the SQLite store (``.ita/jobs.sqlite``) and a real PostgreSQL server
(``pg_url``: a fresh database per test; tests/jobs/conftest.py starts the server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TmpRepo, invoke, make_pipeline_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch):
    """The job store of the test: ITA_VC_JOBS_URL unset (SQLite) or a fresh PG database."""
    if request.param == "sqlite":
        monkeypatch.delenv("ITA_VC_JOBS_URL", raising=False)
        return None
    url = request.getfixturevalue("pg_url")
    monkeypatch.setenv("ITA_VC_JOBS_URL", url)
    return url


@pytest.fixture(scope="module")
def grid_repo(_template_repo, tmp_path_factory):
    """A workspace with candles, the example rule, a small grid; and the grid stage's
    outputs from `dvc repro grid` (the foreground reference)."""
    root = tmp_path_factory.mktemp("jobs") / "repo"
    import shutil

    shutil.copytree(_template_repo, root, symlinks=True)
    repo = make_pipeline_repo(TmpRepo(root))
    params = (root / "params.yaml").read_text()
    params = params.replace("overfitting: {partitions: 4, max_variants: 20000}", "overfitting: null")
    (root / "params.yaml").write_text(params)
    repo.git("commit", "-qam", "no overfitting stats in the grid")
    from ita_vc.snapshot.runner import pipeline_env

    run([sys.executable, "-m", "dvc", "repro", "-q", "grid"], cwd=root, env=pipeline_env())
    reference = {p.name: p.read_bytes() for p in sorted((root / "results" / "grid").iterdir())}
    repo.git("checkout", "--", ".")
    repo.git("clean", "-fdxq", "results")
    repo.reference = reference  # type: ignore[attr-defined]
    return repo


@pytest.fixture
def ws(grid_repo, tmp_path, monkeypatch, backend):
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(grid_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    repo = TmpRepo(root)
    repo.reference = grid_repo.reference  # type: ignore[attr-defined]
    return repo


def _submit(*args: str) -> int:
    result = invoke("jobs", "submit", "--json", *args)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def _status(job_id: int) -> dict:
    result = invoke("jobs", "status", str(job_id), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _job_files(job_id: int) -> dict[str, bytes]:
    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    store = open_store(Workspace.discover())
    try:
        return store.files(job_id)
    finally:
        store.close()


def test_a_grid_job_equals_the_grid_stage_byte_for_byte(ws):
    job_id = _submit("--grid", "--note", "first")
    assert _status(job_id)["state"] == "queued"
    result = invoke("worker", "--once")
    assert result.exit_code == 0, result.output
    status = _status(job_id)
    assert status["state"] == "succeeded", status
    assert status["attempt"] == 1
    files = _job_files(job_id)
    assert {Path(k).name: v for k, v in files.items()} == ws.reference
    top = json.loads(invoke("jobs", "top", str(job_id), "--json", "--limit", "3").stdout)
    assert top["final"] and len(top["rows"]) == 3 and top["rows"][0]["rank"] == 1
    assert "report_table_md" in top["rows"][0]
    logs = invoke("jobs", "logs", str(job_id))
    assert "claimed by" in logs.stdout and "succeeded" in logs.stdout
