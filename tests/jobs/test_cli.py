"""The jobs commands' refusals and messages, in a workspace made by `ita-vc init` (fast: no job
runs here; tests/jobs/test_jobs.py runs them)."""

from __future__ import annotations

import pytest

from tests.helpers import invoke


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("ITA_VC_JOBS_URL", raising=False)


def test_an_empty_queue_lists_nothing(tmp_repo):
    result = invoke("jobs", "list")
    assert result.exit_code == 0 and "no jobs" in result.stdout, result.output
    assert invoke("jobs", "list", "--json").stdout.strip() == "[]"
    assert (tmp_repo / ".ita" / "jobs.sqlite").is_file()
    assert "jobs.sqlite" not in tmp_repo.git("status", "--porcelain").stdout


def test_a_symlinked_or_folder_store_is_refused(tmp_repo, tmp_path):
    target = tmp_path / "elsewhere.sqlite"
    (tmp_repo / ".ita").mkdir(exist_ok=True)
    (tmp_repo / ".ita" / "jobs.sqlite").symlink_to(target)
    result = invoke("jobs", "list")
    assert result.exit_code == 14 and "regular file" in result.stderr, result.output
    assert not target.exists()
    (tmp_repo / ".ita" / "jobs.sqlite").unlink()
    (tmp_repo / ".ita" / "jobs.sqlite").mkdir()
    assert invoke("jobs", "list").exit_code == 14


def test_an_unreachable_server_fails_fast_without_the_password(tmp_repo, monkeypatch):
    monkeypatch.setenv("ITA_VC_JOBS_URL", "postgresql://ita:hunter2@127.0.0.1:1/jobs")
    result = invoke("jobs", "list")
    assert result.exit_code == 14, result.output
    assert "hunter2" not in result.output and "***" in result.stderr


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("url: 12\n", "must hold only url"),
        ("- a\n", "must hold only url"),
        ("url: postgresql://a:b@h/db\nfoo: 1\n", "must hold only url"),
        ("url: mysql://x/y\n", "use postgresql://"),
        ("a: &a [1]\nb: [*a, *a]\n", "alias"),
    ],
)
def test_a_bad_local_store_file_is_a_config_error(tmp_repo, text, match):
    (tmp_repo / ".ita").mkdir(exist_ok=True)
    (tmp_repo / ".ita" / "jobs.local.yaml").write_text(text)
    result = invoke("jobs", "list")
    assert result.exit_code == 8 and match in result.stderr, result.output


def test_submit_refuses_when_jobs_are_disabled_or_nothing_is_set_up(tmp_repo):
    result = invoke("jobs", "submit")
    assert result.exit_code in (4, 11) and "Traceback" not in result.output, result.output
    config = tmp_repo / "configs" / "config.yaml"
    config.write_text(
        config.read_text().replace("  enabled: true\n  url", "  enabled: false\n  url")
    )
    tmp_repo.git("commit", "-qam", "jobs off")
    result = invoke("jobs", "submit")
    assert result.exit_code == 8 and "jobs.enabled is false" in result.stderr, result.output


def test_option_refusals(tmp_repo):
    assert invoke("jobs", "submit", "--grid", "--backtest").exit_code == 2
    assert invoke("jobs", "submit", "--priority", "99999999").exit_code == 2
    assert invoke("jobs", "submit", "--note", "x" * 3000).exit_code == 2
    assert invoke("jobs", "list", "--limit", "0").exit_code == 2
    assert invoke("jobs", "top", "job-0").exit_code == 2
    assert invoke("worker", "--concurrency", "0").exit_code == 2


def test_a_worker_reconnects_after_the_store_fails(tmp_repo, monkeypatch):
    import dataclasses

    from ita_vc.errors import JobStoreError
    from ita_vc.jobs import Worker
    from ita_vc.jobs.store import JobStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(tmp_repo)
    worker = Worker(
        workspace, settings=dataclasses.replace(workspace.config.jobs, claim_poll_seconds=0.05)
    )
    calls: list[JobStore] = []

    def flaky_claim(self, owner, **_kw):
        calls.append(self)
        if len(calls) == 1:
            raise JobStoreError("job store x: the connection is lost")
        worker.stop_event.set()  # the second claim, on a new connection: done

    monkeypatch.setattr(JobStore, "claim", flaky_claim)
    said: list[str] = []
    assert worker.run(on_event=said.append) == []
    assert said == ["job store error: job store x: the connection is lost; reconnecting"]
    assert len(calls) == 2 and calls[0] is not calls[1]  # a new connection the second time
    with pytest.raises(JobStoreError):  # --once: the error is the command's
        calls.clear()
        worker.stop_event.clear()
        worker.run(once=True)


def test_a_note_of_raw_bytes_and_escapes_neither_blocks_nor_reaches_the_terminal(tmp_repo):
    import sqlite3

    from ita_vc.jobs import open_store
    from ita_vc.workspace import Workspace

    store = open_store(Workspace.at(tmp_repo))
    job_id = store.submit("grid", {"git_commit": "c"}, "sha256:x", note="fine")
    store.close()
    conn = sqlite3.connect(tmp_repo / ".ita" / "jobs.sqlite")
    conn.execute(
        "UPDATE jobs SET note = CAST(x'ff1b5d303b50574e0d1b5b324b07' AS TEXT) WHERE id = ?",
        (job_id,),
    )
    conn.commit()
    conn.close()
    for args in (("jobs", "list"), ("jobs", "status", str(job_id)), ("jobs", "list", "--json")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
