"""Presets (docs/presets.md): save -> edit -> apply round trips keeping comments, save from a
run, diff, bad names (exit 2), corrupt files (exit 11, params.yaml untouched), apply refused for
a missing rule version or dataset, preset_ref, the index table, and a clean ``dvc status``."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ita_vc.backtest.params import parse_params
from ita_vc.errors import DataValidationError, UsageError
from ita_vc.presets import (
    apply_preset,
    check_preset_name,
    diff_presets,
    list_presets,
    load_preset,
    preset_ref,
    preset_values,
    save_preset,
    sync_presets,
)
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.hashing import hash_canonical
from ita_vc.workspace import Workspace
from ita_vc.yaml_read import load_yaml_text
from tests.helpers import VENV_BIN, invoke, run


def _params(repo) -> dict:
    return load_yaml_text((repo / "params.yaml").read_text(), "params.yaml", allow_aliases=True)


def _edit(repo, old: str, new: str) -> None:
    path = repo / "params.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_round_trip_keeps_comments_and_records_the_preset(run_copy):
    original = _params(run_copy)
    out = invoke("preset", "save", "base")
    assert out.exit_code == 0, out.stderr
    stored = json.loads((run_copy / "presets/base.json").read_text())
    assert set(stored) == {"schema_version", "name", "created_at", "source", "values", "sha256"}
    assert stored["source"] == "params.yaml" and stored["name"] == "base"
    assert stored["values"] == preset_values(original)
    assert stored["sha256"] == hash_canonical(stored["values"])
    raw = (run_copy / "presets/base.json").read_text()
    assert raw.endswith("}\n") and raw == json.dumps(stored, indent=2, sort_keys=True) + "\n"

    _edit(run_copy, "slippage_pct: 0.01", "slippage_pct: 0.5")
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 10")
    (run_copy / "params.yaml").write_text(
        (run_copy / "params.yaml").read_text() + "# a trailing comment\n"
    )
    assert _params(run_copy)["backtest"]["slippage_pct"] == 0.5

    out = invoke("preset", "apply", "base")
    assert out.exit_code == 0, out.stderr
    text = (run_copy / "params.yaml").read_text()
    after = _params(run_copy)
    assert preset_values(after) == preset_values(original)
    assert after["preset"] == {"name": "base", "sha256": stored["sha256"]}
    for comment in ("# percent per fill", "# always quoted", "# a trailing comment"):
        assert comment in text
    assert 'version: "1.0"' in text
    assert preset_ref(after) == {"name": "base", "sha256": stored["sha256"]}
    # a second apply changes nothing
    assert invoke("preset", "apply", "base").exit_code == 0
    assert (run_copy / "params.yaml").read_text() == text


def test_apply_of_the_current_values_keeps_dvc_status_clean_and_the_config(run_copy):
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}

    def status() -> str:
        return run([str(VENV_BIN / "dvc"), "status", "--json"], cwd=run_copy, env=env).stdout

    before, status_before = _params(run_copy), json.loads(status())
    assert "backtest" not in status_before and "report" not in status_before  # `ita-vc run` ran
    assert invoke("preset", "save", "now").exit_code == 0
    assert invoke("preset", "apply", "now").exit_code == 0
    after = _params(run_copy)
    assert after["preset"]["name"] == "now"
    assert parse_params(after) == parse_params(before)  # config_hash is computed from these
    assert json.loads(status()) == status_before  # no stage reads the preset: key


def test_dry_run_writes_nothing(run_copy):
    assert invoke("preset", "save", "base").exit_code == 0
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 10")
    before = (run_copy / "params.yaml").read_bytes()
    out = invoke("preset", "apply", "base", "--dry-run")
    assert out.exit_code == 0, out.stderr
    assert "+  warmup_bars: 200" in out.stdout and "preset:" in out.stdout
    assert (run_copy / "params.yaml").read_bytes() == before


def test_save_from_a_run_and_refuses_to_overwrite(run_copy):
    run_id = run_copy.report.run_id
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 10")
    out = invoke("preset", "save", "fromrun", "--from-run", run_id)
    assert out.exit_code == 0, out.stderr
    preset = load_preset(Workspace.at(run_copy), "fromrun")
    assert preset.source == run_id and preset.values["backtest"]["warmup_bars"] == 200
    again = invoke("preset", "save", "fromrun", "--from-run", "@latest")
    assert again.exit_code == 2 and "--force" in again.stderr
    assert invoke("preset", "save", "fromrun", "--force").exit_code == 0
    assert load_preset(Workspace.at(run_copy), "fromrun").values["backtest"]["warmup_bars"] == 10
    for ref in ("bt_1999_01_01_99", "bt_1999_01_01_001_abc"):
        unknown = invoke("preset", "save", "x", "--from-run", ref)
        assert unknown.exit_code == 2 and ref in unknown.stderr, unknown.output
    assert not (run_copy / "presets/x.json").exists()


def test_diff_names_changed_added_and_removed_keys(run_copy):
    ws = Workspace.at(run_copy)
    a = save_preset(ws, "a")
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 10")
    _edit(run_copy, "  fee_pct: null", "  periods_per_year: 365\n  fee_pct: null")
    text = (run_copy / "params.yaml").read_text()
    (run_copy / "params.yaml").write_text(text[: text.index("validation:")])
    b = save_preset(ws, "b")
    diff = diff_presets(a, b)
    assert diff.changed == {"backtest.warmup_bars": (200, 10)}
    assert diff.added == {"backtest.periods_per_year": 365}
    assert diff.removed and all(k.startswith("validation.") for k in diff.removed)
    out = invoke("preset", "diff", "a", "b", "--json")
    assert out.exit_code == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["changed"] == {"backtest.warmup_bars": {"old": 200, "new": 10}}
    table = invoke("preset", "diff", "a", "b")
    assert "backtest.warmup_bars" in table.stdout and "removed" in table.stdout
    assert "no differences" in invoke("preset", "diff", "a", "a").stdout
    # applying b drops the validation section it lacks
    apply_preset(ws, "b")
    assert "validation" not in _params(run_copy)


def test_list_show_and_the_index(run_copy):
    ws = Workspace.at(run_copy)
    assert "no presets" in invoke("preset", "list").stdout
    save_preset(ws, "one")
    save_preset(ws, "two")
    listed = json.loads(invoke("preset", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["one", "two"]
    assert "one" in invoke("preset", "list").stdout
    shown = invoke("preset", "show", "one")
    assert shown.exit_code == 0 and "backtest.warmup_bars: 200" in shown.stdout
    assert json.loads(invoke("preset", "show", "one", "--json").stdout)["name"] == "one"
    (run_copy / "presets/bad.json").write_text("{not json")
    index = MetadataIndex(ws.index_path)
    index.path.unlink()
    out = invoke("index", "rebuild")
    assert out.exit_code == 0, out.stderr
    rows = index.rows("presets")
    assert [r["name"] for r in rows] == ["one", "two"]
    assert rows[0]["file_path"] == "presets/one.json"
    assert json.loads(rows[0]["values_json"]) == load_preset(ws, "one").values
    assert sync_presets(ws) == 2
    listing = invoke("preset", "list")
    assert listing.exit_code == 11 and "presets/bad.json" in listing.stderr
    assert "one" in listing.stdout
    with pytest.raises(DataValidationError, match="bad.json"):
        list_presets(ws)


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("JSON", lambda d: None),
        ("sha256", lambda d: d["values"]["backtest"].update(warmup_bars=7)),
        ("schema_version", lambda d: d.update(schema_version=2)),
        ("name", lambda d: d.update(name="other")),
        ("created_at", lambda d: d.pop("created_at")),
        ("extra", lambda d: d.update(extra=1)),
        ("values", lambda d: d.update(values=[1])),
    ],
)
def test_a_corrupt_preset_exits_11_and_leaves_params_alone(run_copy, field, mutate):
    save_preset(Workspace.at(run_copy), "base")
    path = run_copy / "presets/base.json"
    if field == "JSON":
        path.write_text(path.read_text()[:-5])
    else:
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data))
    before = (run_copy / "params.yaml").read_bytes()
    for args in (("apply", "base"), ("show", "base")):
        out = invoke("preset", *args)
        assert out.exit_code == 11, (field, out.stderr)
        assert "presets/base.json" in out.stderr and field.lower() in out.stderr.lower()
        assert "Traceback" not in out.stderr
    assert (run_copy / "params.yaml").read_bytes() == before


def test_values_that_fail_the_params_checks_are_refused(run_copy):
    ws = Workspace.at(run_copy)
    preset = save_preset(ws, "base")
    path = run_copy / "presets/base.json"
    data = preset.document()
    data["values"]["backtest"]["fee_pct"] = 500
    data["sha256"] = hash_canonical(data["values"])
    path.write_text(json.dumps(data))
    before = (run_copy / "params.yaml").read_bytes()
    out = invoke("preset", "apply", "base")
    assert out.exit_code == 11 and "presets/base.json" in out.stderr and "fee_pct" in out.stderr
    assert (run_copy / "params.yaml").read_bytes() == before
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: -3")
    refused = invoke("preset", "save", "neg")
    assert refused.exit_code == 11 and "warmup_bars" in refused.stderr
    assert not (run_copy / "presets/neg.json").exists()


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('version: "1.0"', 'version: "4.2"', "values.rule"),
        ("symbol: BTCUSDT", "symbol: ETHUSDT", "values.data"),
    ],
)
def test_apply_refuses_a_missing_rule_version_or_dataset(run_copy, old, new, field):
    original = (run_copy / "params.yaml").read_bytes()
    _edit(run_copy, old, new)
    assert invoke("preset", "save", "gone").exit_code == 0
    (run_copy / "params.yaml").write_bytes(original)
    out = invoke("preset", "apply", "gone")
    assert out.exit_code == 11, out.stderr
    assert "presets/gone.json" in out.stderr and field in out.stderr
    assert (run_copy / "params.yaml").read_bytes() == original


def test_preset_ref_is_none_after_a_section_is_edited(run_copy):
    ws = Workspace.at(run_copy)
    preset = save_preset(ws, "base")
    apply_preset(ws, "base")
    assert preset_ref(_params(run_copy)) == preset.ref()
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 199")
    assert preset_ref(_params(run_copy)) is None
    assert preset_ref({"rule": {}}) is None
    assert preset_ref({"preset": {"name": "x"}}) is None


def test_apply_waits_for_no_one_holding_the_lock(run_copy):
    from tests.helpers import lock_held_elsewhere

    ws = Workspace.at(run_copy)
    save_preset(ws, "base")
    _edit(run_copy, "warmup_bars: 200", "warmup_bars: 10")
    before = (run_copy / "params.yaml").read_bytes()
    with lock_held_elsewhere(ws):
        out = invoke("preset", "apply", "base")
    assert out.exit_code == 10, out.stderr
    assert (run_copy / "params.yaml").read_bytes() == before


@pytest.mark.parametrize(
    "name", ["", "A", "-x", ".x", "a..b", "a/b", "../x", "x" * 65, "é", "a b", "a\n"]
)
def test_bad_names_exit_2(workspace, name):
    for args in (("save", name), ("show", name), ("apply", name)):
        out = invoke("preset", *args)
        assert out.exit_code == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert not (workspace.root / "presets").exists()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=70))
def test_names_are_checked_by_one_rule(name):
    good = bool(re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name)) and ".." not in name
    if good:
        assert check_preset_name(name) == name
    else:
        with pytest.raises(UsageError, match=re.escape(repr(name))):
            check_preset_name(name)


def test_apply_writes_missing_sections_with_a_quoted_version(run_copy):
    ws = Workspace.at(run_copy)
    preset = save_preset(ws, "base")
    (run_copy / "params.yaml").write_text("rule:\n  setup_id: example_ma_cross  # the setup\n")
    apply_preset(ws, "base")
    text = (run_copy / "params.yaml").read_text()
    assert "# the setup" in text and 'version: "1.0"' in text
    assert preset_ref(_params(run_copy)) == preset.ref()
    (run_copy / "params.yaml").write_text("# only a comment\n")
    apply_preset(ws, "base")
    assert preset_ref(_params(run_copy)) == preset.ref()


def test_ita_vc_run_accepts_a_params_yaml_with_a_preset(run_copy):
    from ita_vc.snapshot.capture import SnapshotStore

    assert invoke("preset", "save", "now").exit_code == 0
    assert invoke("preset", "apply", "now").exit_code == 0
    run_copy.git("add", "-A")
    run_copy.git("commit", "-q", "-m", "preset now")
    same = invoke("run")
    assert same.exit_code == 0 and "already recorded" in same.stdout, same.output
    out = invoke("run", "--force", "--note", "after the preset")
    assert out.exit_code == 0, out.output
    snapshots = SnapshotStore(Workspace.at(run_copy))
    first, second = (snapshots.load_snapshot(i) for i in snapshots.run_ids())
    assert second["params"]["preset"]["name"] == "now"
    assert second["config_hash"] == first["config_hash"]
    assert second["run_hash"] == first["run_hash"]
