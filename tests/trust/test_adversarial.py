"""What an adversarial tester found after the first round of trust fixes, each pinned by a test
(real processes where the finding needs them)."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import pytest
import yaml

from ita_vc.backtest.run import ENGINE_VERSION
from ita_vc.retention.apply import collect_garbage
from ita_vc.snapshot.runner import run_pipeline
from ita_vc.snapshot.runs import keep_run
from ita_vc.snapshot.verify import verify_run
from ita_vc.workspace import Workspace
from tests.helpers import VENV_BIN, invoke, run

STRICT = """\
annotated_pngs:   {paths: ["results/**/*.png"], retain_days: 0, strategy: delete}
backtest_results: {paths: ["results/**"], retain_days: null, strategy: keep_forever}
keep_last_runs: 0
max_runs: null
exceptions: {tags: [], active_rules: false}
"""


def _strict(repo):
    (repo / "configs/retention.yaml").write_text(STRICT)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "strict retention")


@pytest.mark.slow
def test_set_rule_version_1_10_runs_v1_10_not_v1_1(run_copy):
    from ita_vc.rules import RuleRegistry

    registry = RuleRegistry(Workspace.at(run_copy))
    for fast in range(2, 12):  # v1.1 .. v1.10
        registry.bump("example_ma_cross", sets=[f"indicators.0.params.fast={fast}"])
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "ten versions")
    result = invoke("run", "-S", "rule.version=1.10")
    assert result.exit_code == 0, result.output
    assert "example_ma_cross v1.10 on" in result.stdout
    assert 'version: "1.10"' in (run_copy / "params.yaml").read_text()


@pytest.mark.slow
def test_a_dirty_run_is_never_the_answer_to_a_clean_one(run_copy):
    indicators = run_copy / "configs/indicators.yaml"
    indicators.write_text(indicators.read_text() + "\n# edited\n")
    dirty = run_pipeline(
        Workspace.at(run_copy), allow_dirty=True, overrides=[("backtest.fee_pct", 0.2)]
    )
    assert dirty.snapshot["git_dirty"]
    run_copy.git("commit", "-q", "-am", "the edit, committed")
    clean = run_pipeline(Workspace.at(run_copy))
    assert not clean.already and clean.run_id != dirty.run_id
    assert clean.snapshot["git_dirty"] is False


@pytest.mark.slow
def test_setting_values_back_to_a_recorded_run_records_no_duplicate(run_copy):
    first = run_copy.report
    run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.3)])
    fee = first.snapshot["params"]["backtest"]["fee_pct"]
    again = run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", fee)])
    assert again.already and again.run_id == first.run_id
    assert any("now hold the values of" in w for w in again.warnings)


@pytest.mark.slow
def test_import_commit_tracks_what_an_untracked_import_left(run_copy):
    import pandas as pd

    from ita_vc.candles import CandleStore

    path = run_copy / "data/candles/binance-spot/BTCUSDT/1m.parquet"
    extra = pd.read_parquet(path).tail(60).drop(columns="gap_flag")
    extra["ts_utc"] += 60 * 60_000
    csv = run_copy.parent / "extra.csv"
    extra.to_csv(csv, index=False)
    CandleStore(Workspace.at(run_copy)).import_files(
        [csv], market="binance-spot", symbol="BTCUSDT", track=False
    )
    assert invoke("run").exit_code == 12
    again = invoke(
        "data", "import", str(csv), "--market", "binance-spot", "--symbol", "BTCUSDT", "--commit"
    )
    assert again.exit_code == 0, again.output
    assert "tracked it now" in again.stdout and "committed the .dvc file" in again.stdout
    assert run_copy.git("status", "--porcelain").stdout == ""
    assert invoke("run").exit_code == 0


_COMPOUND = f"sleep 300 && python -m ita_vc.pipeline backtest --engine {ENGINE_VERSION}"


def test_killing_ita_vc_takes_down_a_compound_stage_command_too(run_copy):
    import psutil

    text = (run_copy / "dvc.yaml").read_text()
    stage_cmd = f"cmd: python -m ita_vc.pipeline backtest --engine {ENGINE_VERSION}"
    assert stage_cmd in text
    (run_copy / "dvc.yaml").write_text(text.replace(stage_cmd, f"cmd: {_COMPOUND}"))
    run_copy.git("commit", "-q", "-am", "a slow compound stage")
    proc = subprocess.Popen(
        [str(VENV_BIN / "ita-vc"), "run"],
        cwd=run_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            sleepers = [
                p for p in psutil.Process(proc.pid).children(recursive=True) if p.name() == "sleep"
            ]
            if sleepers:
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        group = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        _gone, alive = psutil.wait_procs(group, timeout=120)
        assert alive == [], f"left running after ita-vc was killed: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_nan_confirmation_threshold_is_refused():
    from ita_vc.errors import ConfigError
    from ita_vc.retention.policy import parse_policy

    for bad in (float("nan"), float("inf"), -1):
        with pytest.raises(ConfigError, match="confirm_above_gb: must be a finite number"):
            parse_policy({"confirm_above_gb": bad})


@pytest.mark.slow
def test_cache_type_symlink_keeps_runs_imports_and_status_working(run_copy):
    run_copy.dvc("config", "cache.type", "symlink")
    run_copy.dvc("checkout", "-q", "--relink", "--allow-missing")
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "symlinked cache")
    assert (run_copy / "data/candles/binance-spot/BTCUSDT/1m.parquet").is_symlink()
    assert invoke("data", "status").exit_code == 0
    result = invoke("run", "-S", "backtest.fee_pct=0.3")
    assert result.exit_code == 0, result.output
    csv = run_copy.parent / "c.csv"
    csv.write_text(
        "ts,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,1\n2024-01-02,1,2,0.5,1.5,1\n"
    )
    imported = invoke(
        "data", "import", str(csv), "--market", "generic", "--symbol", "C", "--commit"
    )
    assert imported.exit_code == 0, imported.output
    assert (
        invoke(
            "data", "rm", "--market", "generic", "--symbol", "C", "--timeframe", "1d", "--commit"
        ).exit_code
        == 0
    )


def test_a_large_plain_dvc_lock_is_not_an_alias_bomb(tmp_path):
    from ita_vc.vcs.dvc import check_pipeline_files

    stages = {
        f"bt@{i}": {
            "cmd": f"python run.py {i}",
            "deps": [{"path": f"in/{i}.csv", "md5": "0" * 32, "size": i}],
            "params": {"params.yaml": {"a": i, "b": [i, i + 1]}},
            "outs": [{"path": f"out/{i}", "md5": "1" * 32 + ".dir", "size": i, "nfiles": 2}],
        }
        for i in range(800)
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    check_pipeline_files(tmp_path)  # > 10,000 nodes, no aliases: a lock file may be that big


_KILL_IN_PURGE = textwrap.dedent("""
    import os, signal, sys
    from ita_vc.retention.trash import Trash
    real = Trash._log
    def log(self, *records):
        real(self, *records)
        if any(r.get("op") == "purge" and r.get("step") == "begin" for r in records):
            os.kill(os.getpid(), signal.SIGKILL)
    Trash._log = log
    from ita_vc.cli import main
    sys.argv = ["ita-vc", "trash", "purge", "--older-than", "0"]
    main()
""")


@pytest.mark.slow
def test_a_killed_purge_is_rolled_back_not_finished(run_copy):
    _strict(run_copy)
    workspace = Workspace.at(run_copy)
    first = run_copy.report
    run_pipeline(workspace, overrides=[("backtest.fee_pct", 0.3)])
    _plan, _facts, report = collect_garbage(workspace)
    assert len(report.trashed) == 3  # the first run's charts: price, equity, drawdown
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _KILL_IN_PURGE],
        cwd=run_copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    keep_run(workspace, first.run_id, "after all")
    restored = invoke("trash", "restore", first.run_id)
    assert restored.exit_code == 0 and "restored 3 object(s)" in restored.stdout
    check = verify_run(workspace, first.run_id)
    assert check.ok, check.failures()


def test_gc_with_an_unreadable_index_moves_nothing(run_copy):
    _strict(run_copy)
    run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.3)])
    (run_copy / ".ita/index.sqlite").write_bytes(b"not a database" * 100)
    result = invoke("gc", "--yes")
    assert result.exit_code == 9 and "index rebuild" in result.stderr
    trash = run_copy / ".ita/trash/objects"
    assert not trash.exists() or not any(p.is_file() for p in trash.rglob("*"))


@pytest.mark.slow
def test_stray_files_in_the_trash_and_odd_journal_lines_are_skipped(run_copy):
    _strict(run_copy)
    run_pipeline(Workspace.at(run_copy), overrides=[("backtest.fee_pct", 0.3)])
    assert invoke("gc", "--yes").exit_code == 0
    objects = run_copy / ".ita/trash/objects"
    (objects / ".DS_Store").write_text("mac")
    (objects / "notes.txt").write_text("x")
    with open(run_copy / ".ita/trash/journal.jsonl", "a") as stream:
        stream.write('{"op": "trash", "step": "begin"}\n1\n[]\n{"oid": "zz"}\n')
    for args in (("trash", "list", "--json"), ("gc", "--dry-run"), ("gc", "--yes")):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
    assert len(json.loads(invoke("trash", "list", "--json").stdout)) == 3  # the three charts


def test_non_utf8_in_hand_edited_files_is_named(run_copy):
    params = run_copy / "params.yaml"
    params.write_bytes(params.read_bytes() + b"# caf\xe9\n")
    result = invoke("run")
    assert result.exit_code == 11 and "params.yaml" in result.stderr and "UTF-8" in result.stderr
    params.write_bytes(params.read_bytes()[:-7])
    ignore = run_copy / ".gitignore"
    ignore.write_bytes(ignore.read_bytes().replace(b"/dvc_plots/\n", b"") + b"# caf\xe9\n")
    upgraded = invoke("init", "--upgrade", "--yes")
    assert upgraded.exit_code == 0, upgraded.output
    assert ignore.read_bytes().count(b"caf\xe9") == 1  # the user's bytes are kept as they are
    dvc_yaml = run_copy / "dvc.yaml"
    dvc_yaml.write_bytes(dvc_yaml.read_bytes() + b"# caf\xe9\n")
    bad = invoke("init", "--upgrade")
    assert bad.exit_code == 8 and "dvc.yaml" in bad.stderr


def test_the_grid_outputs_stay_out_of_git(run_copy):
    assert invoke("grid", "run", "--workers", "1").exit_code == 0
    assert (
        "results/grid" not in run_copy.git("status", "--porcelain", "--untracked-files=all").stdout
    )
    run_copy.git("add", "-A")  # what a user does: nothing of the grid gets staged
    assert run_copy.git("status", "--porcelain").stdout == ""
    result = invoke("run", "--stage", "report", "--stage", "grid")
    assert result.exit_code == 0, result.output


def test_runs_on_a_detached_head_are_refused(run_copy):
    run_copy.git("checkout", "-q", "--detach")
    result = invoke("run", "-S", "backtest.fee_pct=0.3")
    assert result.exit_code == 1 and "HEAD is detached" in result.stderr
    assert "git switch -c" in result.stderr


def test_checkouts_do_not_complain_about_a_stage_that_never_ran(run_copy):
    assert invoke("hooks", "install").exit_code == 0
    assert not (run_copy / "results/grid").exists()
    run_copy.git("checkout", "-q", "-b", "other")
    proc = run(["git", "checkout", "main"], cwd=run_copy)
    assert "ERROR" not in proc.stderr and "Checkout failed" not in proc.stderr


def test_upgrade_never_lowers_an_engine_pin_and_pins_foreach_stages(tmp_repo):
    text = (tmp_repo / "dvc.yaml").read_text()
    assert f"prepare --engine {ENGINE_VERSION}" in text
    text = text.replace(f"prepare --engine {ENGINE_VERSION}", "prepare --engine 9.9")
    text += "  mybt:\n    foreach: [a, b]\n    do:\n      cmd: python -m ita_vc.pipeline backtest\n"
    (tmp_repo / "dvc.yaml").write_text(text)
    result = invoke("init", "--upgrade", "--yes")
    assert result.exit_code == 0, result.output
    stages = yaml.safe_load((tmp_repo / "dvc.yaml").read_text())["stages"]
    assert stages["prepare"]["cmd"] == "python -m ita_vc.pipeline prepare --engine 9.9"
    assert stages["mybt"]["do"]["cmd"] == (
        f"python -m ita_vc.pipeline backtest --engine {ENGINE_VERSION}"
    )
