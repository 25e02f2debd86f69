from __future__ import annotations

import json

from tests.helpers import invoke, ita_vc_subprocess, run


def test_rule_new_bump_list_show_diff(tmp_repo):
    assert invoke("rule", "new", "Frank", "--author", "me").exit_code == 0
    result = invoke(
        "rule",
        "bump",
        "Frank",
        "-S",
        "targets.tp_pct=2.5",
        "--set",
        "indicators.0.params.fast=12",
        "--reason",
        "wider",
        "--author",
        "me",
    )
    assert result.exit_code == 0, result.output
    assert "Created rules/Frank/v1.1.yaml" in result.stdout
    assert invoke("rule", "bump", "Frank", "--major", "-S", "targets.sl_pct=1").exit_code == 0
    assert (tmp_repo / "rules/Frank/v2.0.yaml").exists()
    assert invoke("rule", "activate", "Frank", "v2.0").exit_code == 0
    assert invoke("rule", "deprecate", "Frank", "1.0", "--reason", "old").exit_code == 0
    rows = json.loads(invoke("rule", "list", "--json").stdout)
    assert [(r["version"], r["status"]) for r in rows] == [
        ("v1.0", "deprecated"),
        ("v1.1", "inactive"),
        ("v2.0", "active"),
    ]
    active = json.loads(invoke("rule", "list", "--active", "--json").stdout)
    assert [r["version"] for r in active] == ["v2.0"]
    table = invoke("rule", "list", "--setup", "Frank")
    assert "3 rule version(s)" in table.stdout and "deprecated: old" in table.stdout
    show = invoke("rule", "show", "Frank@v1.1")
    assert show.exit_code == 0 and "Frank v1.1  [inactive]" in show.stdout
    assert "fast: 12" in show.stdout
    assert "Frank v2.0  [active]" in invoke("rule", "show", "Frank").stdout
    diff = invoke("rule", "diff", "Frank", "1.0", "v1.1")
    assert diff.exit_code == 0
    assert "targets.tp_pct" in diff.stdout and "indicators.0.params.fast" in diff.stdout
    assert "no differences" in invoke("rule", "diff", "Frank", "1.0", "1.0").stdout


def test_rule_errors_exit_4(tmp_repo):
    invoke("rule", "new", "Frank")
    result = invoke("rule", "bump", "Frank")
    assert result.exit_code == 4 and "nothing to bump" in result.stderr
    assert invoke("rule", "bump", "Frank", "--major", "--minor").exit_code == 4
    assert invoke("rule", "new", "bad/id").exit_code == 4
    assert invoke("rule", "show", "Ghost").exit_code == 4
    assert invoke("rule", "deprecate", "Frank", "1.0").exit_code == 2  # --reason is required


def test_rule_check_cli_and_lean_entry_agree(tmp_repo):
    invoke("rule", "new", "Frank")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank")
    path = tmp_repo / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    tmp_repo.git("add", "-A")
    cli = invoke("rule", "check")
    assert cli.exit_code == 4 and "committed and immutable" in cli.stderr
    lean = ita_vc_subprocess("rule", "check", cwd=tmp_repo)
    assert lean.returncode == 4
    from tests.helpers import VENV_BIN

    hook = run([str(VENV_BIN / "ita-vc-rule-check")], cwd=tmp_repo, check=False)
    assert hook.returncode == 4 and "committed and immutable" in hook.stderr
    files = invoke("rule", "check", "rules/Frank/v1.0.yaml")
    assert files.exit_code == 4
    assert invoke("rule", "check", "--all").exit_code == 4
    tmp_repo.git("checkout", "HEAD", "--", "rules")
    ok = invoke("rule", "check")
    assert ok.exit_code == 0 and "rule check: 0 file(s) OK" in ok.stdout
    assert invoke("rule", "check", "--against", "HEAD").exit_code == 0
    assert invoke("rule", "check", "/etc/passwd").exit_code == 4


def test_rule_check_outside_a_workspace(tmp_path):
    from tests.helpers import VENV_BIN

    assert invoke("rule", "check", cwd=tmp_path).exit_code == 5
    proc = run([str(VENV_BIN / "ita-vc-rule-check")], cwd=tmp_path, check=False)
    assert proc.returncode == 5 and "not an ita-vc workspace" in proc.stderr


def test_hooks_install_uninstall_cli(tmp_repo):
    result = invoke("hooks", "install", "--no-dvc")
    assert result.exit_code == 0 and "pre-commit" in result.stdout
    assert (tmp_repo / ".git/hooks/pre-commit").exists()
    assert not (tmp_repo / ".git/hooks/post-checkout").exists()
    assert "removed pre-commit" in invoke("hooks", "uninstall").stdout
    assert "nothing changed" in invoke("hooks", "uninstall").stdout


def test_init_with_hooks_and_the_offer(tmp_path):
    plain = invoke("init", str(tmp_path / "a"))
    assert "ita-vc hooks install" in plain.stdout and "ita-vc-rule-check" in plain.stdout
    hooked = invoke("init", str(tmp_path / "b"), "--hooks")
    assert hooked.exit_code == 0 and "git hook pre-commit" in hooked.stdout
    assert (tmp_path / "b/.git/hooks/pre-commit").exists()
    assert (tmp_path / "b/configs/indicators.yaml").exists()


def test_indicators_list(tmp_path):
    table = invoke("indicators", "list", cwd=tmp_path)  # works outside a workspace too
    assert table.exit_code == 0 and "ma_cross" in table.stdout
    catalog = json.loads(invoke("indicators", "list", "--json").stdout)
    assert catalog["rsi"]["params"]["window"]["default"] == 14
    assert catalog["ma_cross"]["constraints"] == ["fast < slow"]
