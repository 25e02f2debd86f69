from __future__ import annotations

import json

import pandas as pd
import pytest

from ita_vc._version import __version__
from tests.helpers import REPO_ROOT, VENV_BIN, invoke, ita_vc_subprocess, run


def test_version_and_help():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"ita-vc {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("init", "store", "index"):
        assert command in result.stdout


def test_python_dash_m_and_console_script(tmp_path):
    proc = run([str(VENV_BIN / "python"), "-m", "ita_vc", "--help"], cwd=tmp_path)
    assert "Usage: ita-vc" in proc.stdout
    proc = ita_vc_subprocess("--version", cwd=tmp_path, check=True)
    assert proc.stdout.strip() == f"ita-vc {__version__}"


def test_help_does_not_import_heavy_libraries(tmp_path):
    code = (
        "import sys\nfrom ita_vc.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('dvc', 'pandas', 'git', 'pyarrow', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = run([str(VENV_BIN / "python"), "-c", code], cwd=tmp_path)
    assert "HEAVY []" in proc.stdout


def test_every_command_has_help_text():
    from typer.main import get_command

    from ita_vc.cli import app

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, command in walk(get_command(app), []):
        assert (command.help or "").strip(), f"`ita-vc {' '.join(path)}` has no help"


def test_usage_error_exits_2():
    result = invoke("store", "ls", "--bogus")
    assert result.exit_code == 2


def test_outside_a_workspace_exits_5_with_the_cure(tmp_path):
    result = invoke("store", "ls", cwd=tmp_path)
    assert result.exit_code == 5
    assert "not an ita-vc workspace" in result.stderr and "ita-vc init" in result.stderr
    assert "Traceback" not in result.output


def test_init_then_idempotent(tmp_path):
    result = invoke("init", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert "Initialized ita-vc workspace" in result.stdout
    again = invoke("init", str(tmp_path / "ws"))
    assert again.exit_code == 0
    assert "already an ita-vc workspace; nothing changed" in again.stdout


def test_store_ls_table_json_and_filters(tmp_repo):
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    store = PersistentStore(Workspace.at(tmp_repo))
    store.save_dataframe(
        pd.DataFrame({"a": [1]}),
        "raw",
        "1m",
        subdir="x/BTC",
        meta={"symbol": "BTC", "timeframe": "1m"},
    )
    store.save_json({"m": 1}, "results", "m.json", meta={"run_id": "bt_1"})
    table = invoke("store", "ls")
    assert table.exit_code == 0
    assert "2 artifact(s)" in table.stdout and "BTC" in table.stdout
    listed = json.loads(invoke("store", "ls", "--json").stdout)
    assert [r["path"] for r in listed] == ["data/raw/x/BTC/1m.parquet", "results/m.json"]
    only = json.loads(invoke("store", "ls", "--json", "--run-id", "bt_1").stdout)
    assert [r["path"] for r in only] == ["results/m.json"]
    assert (
        json.loads(invoke("store", "ls", "--json", "--symbol", "BTC", "--kind", "results").stdout)
        == []
    )


def test_store_ls_forwards_filters_to_the_core(tmp_repo, monkeypatch):
    from ita_vc.store import PersistentStore

    seen = {}

    def fake_list(self, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(PersistentStore, "list", fake_list)
    assert invoke("store", "ls", "--kind", "png", "--symbol", "ETH", "--run-id", "r").exit_code == 0
    assert seen == {"kind": "png", "symbol": "ETH", "run_id": "r"}


def test_index_rebuild(tmp_repo):
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    PersistentStore(Workspace.at(tmp_repo)).save_binary(b"x", "raw", "x.bin")
    (tmp_repo / ".ita" / "index.sqlite").unlink()
    result = invoke("index", "rebuild")
    assert result.exit_code == 0 and "Index rebuilt: 1 artifact(s)" in result.stdout
    assert "data/raw/x.bin" in invoke("store", "ls").stdout


def test_corrupt_index_exits_9_and_names_the_cure(tmp_repo):
    (tmp_repo / ".ita").mkdir(exist_ok=True)
    (tmp_repo / ".ita" / "index.sqlite").write_bytes(b"junk" * 1000)
    result = invoke("store", "ls")
    assert result.exit_code == 9
    assert "ita-vc index rebuild" in result.stderr


def test_invalid_config_exits_8(tmp_repo):
    (tmp_repo / "configs" / "config.yaml").write_text("paths:\n  data_root: /abs\n")
    result = invoke("store", "ls")
    assert result.exit_code == 8
    assert "configs/config.yaml:2: paths.data_root" in result.stderr


def test_unexpected_errors_exit_3_with_a_logged_traceback(tmp_repo, monkeypatch):
    from ita_vc.store import PersistentStore

    def boom(self, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(PersistentStore, "list", boom)
    result = invoke("store", "ls")
    assert result.exit_code == 3
    assert "unexpected RuntimeError: kaboom" in result.stderr
    assert "Traceback" not in result.stderr
    log = (tmp_repo / "logs" / "ita-vc.log").read_text()
    assert "RuntimeError: kaboom" in log and "Traceback" in log
    with pytest.raises(RuntimeError, match="kaboom"):
        from ita_vc.cli import main

        main(["--debug", "store", "ls"])


def test_keyboard_interrupt_exits_130(tmp_repo, monkeypatch):
    from ita_vc.store import PersistentStore

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PersistentStore, "list", interrupted)
    assert invoke("store", "ls").exit_code == 130


def test_repo_itself_is_a_workspace():
    from ita_vc.workspace import Workspace

    assert Workspace.at(REPO_ROOT).config.paths.data_root == "data"
