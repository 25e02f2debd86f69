"""Hostile input around runs, snapshots and retention: clear errors with documented exit codes,
never a traceback (exit 3), nothing changed on refusal."""

from __future__ import annotations

import pandas as pd
import pytest

from ita_vc.errors import DataValidationError
from ita_vc.snapshot.capture import SnapshotStore
from ita_vc.workspace import Workspace
from tests.helpers import invoke


def _state(repo):
    return (
        repo.git("status", "--porcelain").stdout,
        repo.git("rev-parse", "HEAD").stdout,
        (repo / "params.yaml").read_text(),
    )


def test_an_invalid_dvc_lock_is_named_not_a_traceback(run_copy):
    (run_copy / "dvc.lock").write_text("schema: '2.0'\nstages:\n  backtest: [not, a, stage\n")
    for command in (("snapshot", "verify", "--all"), ("gc", "--dry-run"), ("gc", "--yes")):
        result = invoke(*command)
        assert result.exit_code == 8, (command, result.output)
        assert "dvc.lock:4:" in result.stderr and "git checkout dvc.lock" in result.stderr
        assert "dvc.lock" in result.stderr and "Traceback" not in result.output
    result = invoke("run", "--allow-dirty")
    assert result.exit_code not in (0, 3), result.output
    assert "dvc.lock" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (("run", "--wait", "nan"), 2, "--wait must be a number of seconds >= 0"),
        (("run", "--wait", "-1"), 2, "--wait must be a number of seconds >= 0"),
        (("run", "--stage", "nope"), 2, "no such stage in dvc.yaml"),
        (("run", "--stage", "prepare"), 2, "does not run the backtest stage"),
        (("run", "--mode", "paper"), 2, "--mode must be one of"),
        (("run", "-S", "rule.setup_id=Frank_raid/../example_ma_cross"), 11, "rule.setup_id"),
        (("run", "-S", "rule.setup_id=../../.."), 11, "rule.setup_id"),
        (("run", "-S", "backtest.slippage_pct=250"), 11, "slippage_pct"),
        (("run", "-S", "backtest.fee_pct=.nan"), 11, "fee_pct"),
        (("run", "-S", "data.start=9999-12-31"), 11, "data.start"),
        (("run", "-S", "backtest=7"), 11, "backtest"),
        (("run", "-S", "=1"), 11, "-S"),
        (("run", "-S", "no.equals"), 11, "key.path=value"),
        (("run", "-S", "data.x=!!binary aGk="), 11, "data.x"),
        (("run", "--version", "1.x"), 11, "version"),
        (("runs", "show", "../x"), 2, "not a run id"),
        (("runs", "keep", "../../etc"), 2, "not a run id"),
        (("snapshot", "verify", "../x"), 2, "not a run id"),
        (("reproduce", "bt_2020_01_01_001_zzz"), 2, "not a run id"),
        (("runs", "list", "--limit", "-1"), 2, ""),
        (("trash", "purge", "--older-than", "nan"), 2, "--older-than"),
        (("trash", "purge", "--older-than", "-1"), 2, ""),
        (("trash", "restore"), 2, "say what to restore"),
        (("gc", "--wait", "inf"), 2, "--wait"),
    ],
)
def test_bad_run_and_retention_arguments_are_refused_before_anything_changes(
    run_copy, args, code, match
):
    before = _state(run_copy)
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert match in result.stderr or match in result.stdout
    assert "Traceback" not in result.output
    assert _state(run_copy) == before


def test_the_data_hash_of_a_csv_a_frame_or_a_parquet_file(ran_repo, tmp_path):
    provenance = SnapshotStore(Workspace.at(ran_repo))
    run_id = ran_repo.report.run_id
    canonical = pd.read_parquet(ran_repo / "data/candles/binance-spot/BTCUSDT/1m.parquet")
    csv = tmp_path / "c.csv"
    canonical.drop(columns="gap_flag").to_csv(csv, index=False)
    assert provenance.verify_data_hash(run_id, csv)
    assert provenance.verify_data_hash(run_id, canonical)
    changed = canonical.copy()
    # the last minute of the 2025-01-08 00:00 hour: its close is that hour's close
    inside = changed.index[changed["ts_utc"] == 1_736_294_400_000 + 59 * 60_000]
    assert len(inside) == 1
    changed.loc[inside, ["open", "high", "low", "close"]] *= 1.01
    assert not provenance.verify_data_hash(run_id, changed)
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    with pytest.raises(DataValidationError, match="junk.csv"):
        provenance.verify_data_hash(run_id, junk)
    with pytest.raises(DataValidationError, match="no candle column"):
        provenance.verify_data_hash(run_id, pd.DataFrame({"x": [1]}))


_BOMB = """\
rule: {setup_id: example_ma_cross, version: "1.0"}
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def _limited(*args, cwd):
    """`ita-vc ARGS` as a real process with 1 GiB of address space and a generous timeout."""
    import resource
    import subprocess

    from tests.helpers import VENV_BIN

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [str(VENV_BIN / "ita-vc"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=limit,
    )


def test_an_alias_bomb_in_params_yaml_never_reaches_dvc(run_copy):
    (run_copy / "params.yaml").write_text(_BOMB)
    for args, code in (
        (("gc", "--dry-run"), 11),
        (("snapshot", "verify", "--all"), 11),
        (("run",), 11),
    ):
        proc = _limited(*args, cwd=run_copy)
        assert proc.returncode == code, (args, proc.stderr[-500:])
        assert "params.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_an_alias_bomb_committed_in_history_never_reaches_dvc(run_copy):
    good = (run_copy / "params.yaml").read_text()
    (run_copy / "params.yaml").write_text(_BOMB)
    run_copy.git("commit", "-q", "--no-verify", "-am", "a bomb")
    bad = run_copy.git("rev-parse", "HEAD").stdout.strip()
    (run_copy / "params.yaml").write_text(good)
    run_copy.git("commit", "-q", "-am", "fixed")
    proc = _limited("gc", "--dry-run", cwd=run_copy)
    assert proc.returncode == 11, proc.stderr[-500:]
    assert f"the version committed in {bad[:10]}" in proc.stderr


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (('end: "2025-01-12"', "end: 2025-01-12"), "data.end: 2025-01-12 is a YAML date"),
        (("  top_k: 20\n", "  top_k: 20\n  bogus: 1\n"), "grid.bogus"),
        (("  top_k: 20\n", "  top_k: 0\n"), "grid.top_k"),
        (("  top_k: 20\n", "  top_k: .nan\n"), "grid.top_k"),
    ],
)
def test_a_committed_params_yaml_dvc_or_the_grid_cannot_read_is_refused_first(
    run_copy, edit, match
):
    """A YAML date makes DVC itself fail (it was exit 3); a bad grid section was committed with
    the run unless a -S grid override asked for the check: both are refused (11) up front."""
    params = run_copy / "params.yaml"
    text = params.read_text()
    assert edit[0] in text
    params.write_text(text.replace(edit[0], edit[1], 1))
    run_copy.git("commit", "-q", "-am", "params a user wrote")
    before = _state(run_copy)
    result = invoke("run")
    assert result.exit_code == 11, result.output
    assert match in result.stderr and "params.yaml" in result.stderr
    assert _state(run_copy) == before


def test_a_yaml_date_committed_in_history_is_named_by_gc_not_a_traceback(run_copy):
    """DVC raises a TypeError on a YAML date in any revision gc hands it (it was exit 3)."""
    good = (run_copy / "params.yaml").read_text()
    (run_copy / "params.yaml").write_text(good.replace('end: "2025-01-12"', "end: 2025-01-12"))
    run_copy.git("commit", "-q", "-am", "a date DVC cannot read")
    bad = run_copy.git("rev-parse", "HEAD").stdout.strip()
    (run_copy / "params.yaml").write_text(good)
    run_copy.git("commit", "-q", "-am", "quoted again")
    result = invoke("gc", "--dry-run")
    assert result.exit_code == 11, result.output
    assert "data.end: 2025-01-12 is a YAML date" in result.stderr
    assert f"the version committed in {bad[:10]}" in result.stderr
