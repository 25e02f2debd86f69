"""Working as a team on a real S3 API (moto's server, IAM auth on) through DVC's S3 remote:
``ita-vc push``, ``clone``, ``pull``, ``reproduce`` in a fresh clone, ``snapshot verify
--remote``, refusals, credentials and timeouts. ``gc --cloud`` is in test_cloud_gc.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TmpRepo, invoke, run
from tests.s3server import configure_s3_remote, hanging_listener, set_s3_credentials

SECRETLESS = (".dvc/config.local",)  # the one file allowed to hold the key (DVC's, gitignored)


def _team(repo: TmpRepo, server, bucket: str, tmp_path: Path, *, hooks: bool = True) -> Path:
    """A bare git origin and an S3 DVC remote ``team`` (endpoint committed, keys local)."""
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], cwd=tmp_path)
    repo.git("remote", "add", "origin", str(origin))
    configure_s3_remote(repo, "team", f"s3://{bucket}/store", server)
    if hooks:
        from ita_vc.rules.hook_install import install_hooks

        install_hooks(Path(repo))
    repo.git("add", ".dvc/config")
    repo.git("commit", "-q", "-m", "team remote")
    return origin


def _cache_files(root: Path) -> dict[str, bytes]:
    cache = root / ".dvc" / "cache" / "files" / "md5"
    return {
        p.relative_to(cache).as_posix(): p.read_bytes()
        for p in sorted(cache.rglob("*"))
        if p.is_file()
    }


def _stored(server, bucket: str) -> set[str]:
    return {
        k.split("/files/md5/", 1)[1].replace("/", "")
        for k in server.list_keys(bucket, "store/")
        if "/files/md5/" in k
    }


def _files_holding(root: Path, secret: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        readable = path.is_file() and not path.is_symlink() and rel not in SECRETLESS
        if readable and secret in path.read_bytes():
            found.append(rel)
    return found


def _stray_object(repo: TmpRepo) -> str:
    """An object in the cache that nothing committed references; its md5."""
    stray = repo / "stray.bin"
    stray.write_bytes(b"not part of any run" * 100)
    repo.dvc("add", "-q", "stray.bin")
    (repo / "stray.bin.dvc").unlink()
    md5 = hashlib.md5(stray.read_bytes(), usedforsecurity=False).hexdigest()
    stray.unlink()
    repo.git("checkout", "-q", "--", ".gitignore")
    return md5


def _new_candles(repo: TmpRepo, day: int = 12) -> None:
    """More candles committed (from ``day``): HEAD's data differs from the recorded run's."""
    from ita_vc.candles import CandleStore
    from ita_vc.candles.sample import SampleSpec, generate_candles
    from ita_vc.workspace import Workspace

    spec = SampleSpec(
        "binance-spot",
        "BTCUSDT",
        1_735_689_600_000 + 12 * 86_400_000,
        3,
        95_000.0,
        0.5,
        0.01,
        12.0,
        9,
    )
    export = Path(repo).parent / f"more-{day}.parquet"
    generate_candles(spec).drop(columns="gap_flag").to_parquet(export)
    CandleStore(Workspace.at(repo)).import_files([export], market="binance-spot", symbol="BTCUSDT")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "more candles")


@pytest.mark.slow
def test_push_clone_pull_reproduce_bit_exactly_and_no_secret_anywhere(
    run_copy, s3_server, s3_bucket, tmp_path, monkeypatch
):
    run_id = run_copy.report.run_id
    _team(run_copy, s3_server, s3_bucket, tmp_path)
    assert invoke("runs", "keep", run_id, "--reason", "baseline").exit_code == 0
    _new_candles(run_copy)  # the run's candles are no longer the workspace's
    stray_md5 = _stray_object(run_copy)

    pushed = invoke("push", "--json")
    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert report["runs"] == [run_id] and report["pins"] == 1 and report["missing"] == []
    on_remote = _stored(s3_server, s3_bucket)
    assert report["pushed"] == len(on_remote) == report["objects_needed"]
    assert stray_md5 not in on_remote  # only what runs and the workspace need
    tags = run(["git", "ls-remote", "--tags", "origin"], cwd=run_copy).stdout
    assert f"refs/tags/ita/keep/{run_id}" in tags

    again = invoke("push", "--json")  # nothing new: nothing pushed
    assert again.exit_code == 0 and json.loads(again.stdout)["pushed"] == 0

    # a teammate: credentials only in the environment, a fresh clone
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    clone = tmp_path / "teammate"
    origin = run(["git", "remote", "get-url", "origin"], cwd=run_copy).stdout.strip()
    cloned = invoke("clone", origin, str(clone), "--json", cwd=tmp_path)
    assert cloned.exit_code == 0, cloned.output
    pulled = json.loads(cloned.stdout)
    assert pulled["ok"] and pulled["missing_remotely"] == []
    assert [r["run_id"] for r in pulled["runs"]] == [run_id]
    for rel in ("data", "results/backtest", "results/metrics.json"):
        for file in (run_copy / rel).rglob("*") if (run_copy / rel).is_dir() else [run_copy / rel]:
            if file.is_file():
                twin = clone / file.relative_to(run_copy)
                assert twin.read_bytes() == file.read_bytes(), file
    assert f"ita/keep/{run_id}" in run(["git", "tag"], cwd=clone).stdout
    assert (clone / ".git" / "hooks" / "pre-commit").exists()  # ita-vc's hooks, as init --hooks

    # the run's own candles are not the workspace's: reproduce fetches them, then bit-exact
    reproduced = invoke("reproduce", run_id, cwd=clone)
    assert reproduced.exit_code == 0, reproduced.output
    assert "fetched" in reproduced.output and "reproduced bit-exactly" in reproduced.output

    verified = invoke("snapshot", "verify", run_id, "--deep", cwd=clone)
    assert verified.exit_code == 0, verified.output

    # Alice adds tracked data and pushes; Bob pulls: a fast-forward, the new data checked out
    run_copy.dvc_gen({"extra/notes.csv": "a,b\n1,2\n"}, commit="extra data")
    assert invoke("push").exit_code == 0
    bob = invoke("pull", "--json", cwd=clone)
    assert bob.exit_code == 0, bob.output
    pulled = json.loads(bob.stdout)
    assert pulled["commits"] == 1 and pulled["fetched"] == 1 and pulled["ok"]
    assert (clone / "extra" / "notes.csv").read_text() == "a,b\n1,2\n"

    secret = s3_server.secret_access_key.encode()
    assert _files_holding(clone, secret) == []
    assert _files_holding(Path(run_copy), secret) == []  # logs, snapshots, reports, .git


def test_push_refuses_before_pushing_anything_when_an_object_is_missing_everywhere(
    run_copy, s3_server, s3_bucket, tmp_path
):
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.vcs.dvc import cache_paths
    from ita_vc.workspace import Workspace

    run_id = run_copy.report.run_id
    _team(run_copy, s3_server, s3_bucket, tmp_path, hooks=False)
    snapshot = SnapshotStore(Workspace.at(run_copy)).load_snapshot(run_id)
    trades = next(
        o["md5"]
        for o in snapshot["dvc_lock"]["stages"]["backtest"]["outs"]
        if o["path"] == "results/backtest"
    )
    entries = json.loads(cache_paths(run_copy, [trades])[trades].read_bytes())
    victim = next(e for e in entries if e["relpath"] == "trades.parquet")["md5"]
    cache_paths(run_copy, [victim])[victim].unlink()

    result = invoke("push")
    assert result.exit_code == 6, result.output
    assert "results/backtest" in result.output and run_id in result.output
    assert victim in result.output
    assert "nothing was pushed" in result.output
    assert _stored(s3_server, s3_bucket) == set()
    assert run(["git", "ls-remote", "origin"], cwd=run_copy).stdout == ""  # git untouched

    allowed = invoke("push", "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert "missing everywhere" in allowed.output and victim in allowed.output


def test_wrong_credentials_exit_13_without_the_secret(run_copy, s3_server, s3_bucket, tmp_path):
    _team(run_copy, s3_server, s3_bucket, tmp_path, hooks=False)
    wrong = "WrongSecret/ThatMustNeverBePrinted123"
    set_s3_credentials(run_copy, "team", s3_server, secret_access_key=wrong)
    for args in (["push"], ["pull"], ["gc", "--cloud", "--dry-run"]):
        result = invoke(*args)
        assert result.exit_code == 13, (args, result.output)
        assert "refused the credentials" in result.output and "team" in result.output
        assert wrong not in result.output
    assert _stored(s3_server, s3_bucket) == set()
    assert _files_holding(Path(run_copy), wrong.encode()) == []


def test_an_endpoint_that_never_answers_times_out_with_a_message(run_copy, tmp_path, s3_server):
    _team(run_copy, s3_server, "no-such-bucket", tmp_path, hooks=False)
    with hanging_listener() as port:
        run_copy.dvc("remote", "modify", "team", "endpointurl", f"http://127.0.0.1:{port}")
        proc = subprocess.run(
            [sys.executable, "-m", "ita_vc", "push", "--timeout", "2"],
            cwd=run_copy,
            capture_output=True,
            text=True,
            timeout=120,  # a hang fails the test here
            check=False,
        )
    assert proc.returncode == 13, proc.stdout + proc.stderr
    assert "did not answer within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_refusals_name_what_to_do(run_copy, s3_server, s3_bucket, tmp_path):
    no_remote = invoke("push")
    assert no_remote.exit_code == 2 and "no git remote 'origin'" in no_remote.output
    origin = tmp_path / "o.git"
    run(["git", "init", "-q", "--bare", str(origin)], cwd=tmp_path)
    run_copy.git("remote", "add", "origin", str(origin))
    no_dvc = invoke("push")
    assert no_dvc.exit_code == 8 and "no DVC remote given" in no_dvc.output
    configure_s3_remote(run_copy, "team", f"s3://{s3_bucket}/store", s3_server)
    unknown = invoke("push", "--dvc-remote", "nope")
    assert unknown.exit_code == 8 and "no DVC remote 'nope'" in unknown.output
    for bad in ("0", "-1", "nan", "inf"):
        result = invoke("push", "--timeout", bad)
        assert result.exit_code == 2, (bad, result.output)
    run_copy.git("checkout", "-q", "--detach")
    detached = invoke("push")
    assert detached.exit_code == 2 and "detached" in detached.output


def test_verify_remote_is_read_only_and_names_what_the_remote_lacks(
    run_copy, s3_server, s3_bucket, tmp_path
):
    run_id = run_copy.report.run_id
    origin = _team(run_copy, s3_server, s3_bucket, tmp_path, hooks=False)
    assert invoke("push").exit_code == 0
    clone = tmp_path / "plain"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=tmp_path)
    set_s3_credentials(clone, "team", s3_server)
    before = _cache_files(clone)
    result = invoke("snapshot", "verify", run_id, "--remote", "team", cwd=clone)
    assert result.exit_code == 0, result.output
    assert _cache_files(clone) == before == {}  # nothing downloaded
    key = next(k for k in s3_server.list_keys(s3_bucket, "store/") if not k.endswith(".dir"))
    s3_server.client().delete_object(Bucket=s3_bucket, Key=key)
    gone = key.split("/files/md5/", 1)[1].replace("/", "")
    failed = invoke("snapshot", "verify", run_id, "--remote", "team", cwd=clone)
    assert failed.exit_code == 6 and gone in failed.output


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import s3fs.core as core
    name, after = os.environ["KILL_IN"], int(os.environ["KILL_AFTER"])
    original = getattr(core.S3FileSystem, name)
    calls = [0]
    async def wrapped(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-transfer: others are in flight
        return await original(self, *args, **kwargs)
    setattr(core.S3FileSystem, name, wrapped)
    from ita_vc.cli import main
    main(sys.argv[1:])
    """
)


def _killed(args: list[str], cwd: Path, method: str, after: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_IN": method, "KILL_AFTER": str(after), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _KILLER, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_push_and_a_pull_killed_mid_transfer_resume_without_corruption(
    run_copy, s3_server, s3_bucket, tmp_path, monkeypatch
):
    run_id = run_copy.report.run_id
    origin = _team(run_copy, s3_server, s3_bucket, tmp_path, hooks=False)
    killed = _killed(["push", "--jobs", "2"], run_copy, "_put_file", 4)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    partial = _stored(s3_server, s3_bucket)
    assert 0 < len(partial) < 19  # some objects arrived, not all; git not pushed
    assert run(["git", "ls-remote", "origin"], cwd=run_copy).stdout == ""
    resumed = invoke("push", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["pushed"] == json.loads(resumed.stdout)[
        "objects_needed"
    ] - len(partial)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(origin), str(clone)], cwd=tmp_path)
    killed = _killed(["pull", "--jobs", "2"], clone, "_get_file", 5)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert len(_cache_files(clone)) > 0
    pulled = invoke("pull", cwd=clone)
    assert pulled.exit_code == 0, pulled.output
    deep = invoke("snapshot", "verify", run_id, "--deep", cwd=clone)  # every object re-hashed
    assert deep.exit_code == 0, deep.output
    pulled_files, original = _cache_files(clone), _cache_files(Path(run_copy))
    assert pulled_files == {rel: original[rel] for rel in pulled_files}
    shutil.rmtree(clone / ".dvc" / "cache")  # and a second clean pull gives the same bytes
    assert invoke("pull", cwd=clone).exit_code == 0
