"""Hostile rule files (issue 12 item 2): symlinked versions, lifecycle files and setup folders.

A committed version must never change; a symlink's target can. So rule versions and lifecycle
files must be regular files in git, and every path that reads them refuses a symlink with a
message that says so (exit 4): the staged check (the installed hook), ``--against`` (commits
made with ``--no-verify``), the working-tree check, the registry and therefore ``run``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from ita_vc.errors import RuleValidationError
from ita_vc.rules.hook_install import install_hooks
from tests.helpers import invoke, make_pipeline_repo

pytestmark = pytest.mark.slow

LINK_MSG = "is a symbolic link; rule versions and lifecycle files must be regular files in git"


@pytest.fixture
def registry(workspace):
    from ita_vc.rules import RuleRegistry

    return RuleRegistry(workspace)


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (
            rel.startswith((".git/", ".ita/", "logs/", ".dvc/tmp/"))
            or path.is_symlink()
            or not path.is_file()
        ):
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _outside_rule(repo, registry, tmp_path: Path) -> Path:
    """A valid SymRule v1.0 moved outside the repository; rules/SymRule/v1.0.yaml links to it."""
    registry.new("SymRule", author="t")
    inside = repo / "rules/SymRule/v1.0.yaml"
    outside = tmp_path / "outside-v1.0.yaml"
    outside.write_bytes(inside.read_bytes())
    inside.unlink()
    inside.symlink_to(outside)
    return outside


def test_a_symlinked_version_is_refused_by_the_installed_hook(tmp_repo, registry, tmp_path):
    install_hooks(tmp_repo, with_dvc=False)
    _outside_rule(tmp_repo, registry, tmp_path)
    tmp_repo.git("add", "-A")
    staged = tmp_repo.git("ls-files", "-s", "rules/SymRule/v1.0.yaml").stdout
    assert staged.startswith("120000 ")
    head = tmp_repo.git("rev-parse", "HEAD").stdout
    hook = subprocess.run(
        [str(tmp_repo / ".git/hooks/pre-commit")],
        cwd=tmp_repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert hook.returncode == 4
    assert f"rules/SymRule/v1.0.yaml: {LINK_MSG}" in hook.stderr
    assert "must be a YAML mapping" not in hook.stderr
    proc = tmp_repo.git("commit", "-q", "-m", "sym", check=False)
    assert proc.returncode == 1 and LINK_MSG in proc.stderr
    assert tmp_repo.git("rev-parse", "HEAD").stdout == head  # nothing committed
    result = invoke("rule", "check")
    assert result.exit_code == 4 and LINK_MSG in result.stderr


def test_a_symlinked_version_committed_with_no_verify(tmp_repo, registry, tmp_path):
    base = tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    outside = _outside_rule(tmp_repo, registry, tmp_path)
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "--no-verify", "-m", "sym")
    before = _digest(tmp_repo)
    against = invoke("rule", "check", "--against", base)
    assert against.exit_code == 4
    assert "rules/SymRule/v1.0.yaml: (commit " in against.stderr and LINK_MSG in against.stderr
    for args in (("rule", "check", "--all"), ("rule", "check", "rules/SymRule/v1.0.yaml")):
        result = invoke(*args)
        assert result.exit_code == 4 and LINK_MSG in result.stderr, args
    for args in (
        ("rule", "list"),
        ("rule", "show", "SymRule"),
        ("rule", "bump", "SymRule", "-S", "direction=long-only"),
        ("rule", "activate", "SymRule", "1.0"),
    ):
        result = invoke(*args)
        assert result.exit_code == 4, (args, result.output)
        assert f"rules/SymRule/v1.0.yaml {LINK_MSG}" in result.stderr, args
    with pytest.raises(RuleValidationError, match="v1.0.yaml is a symbolic link"):
        registry.get("SymRule", "1.0")
    with pytest.raises(RuleValidationError, match="v1.0.yaml is a symbolic link"):
        registry.versions("SymRule")
    assert _digest(tmp_repo) == before
    assert outside.read_bytes()  # the target was never touched
    assert not (tmp_repo / "rules/SymRule/v1.1.yaml").exists()


def test_run_refuses_a_symlinked_rule_version(tmp_repo, tmp_path):
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    repo = make_pipeline_repo(tmp_repo)
    registry = RuleRegistry(Workspace.at(repo))
    _outside_rule(repo, registry, tmp_path)
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("setup_id: example_ma_cross", "setup_id: SymRule"))
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-verify", "-m", "sym")
    head = repo.git("rev-parse", "HEAD").stdout
    before = _digest(repo)
    result = invoke("run")
    assert result.exit_code == 4, result.output
    assert f"rules/SymRule/v1.0.yaml {LINK_MSG}" in result.stderr
    assert repo.git("rev-parse", "HEAD").stdout == head
    assert _digest(repo) == before
    assert not list((repo / "provenance").glob("*.json"))


def test_a_symlinked_lifecycle_file(tmp_repo, registry, tmp_path):
    registry.new("Frank", author="t")
    outside = tmp_path / "lifecycle.yaml"
    outside.write_text("schema_version: 1\nsetup_id: Frank\nversions:\n  v1.0: {active: true}\n")
    (tmp_repo / "rules/Frank/lifecycle.yaml").symlink_to(outside)
    tmp_repo.git("add", "-A")
    result = invoke("rule", "check")
    assert result.exit_code == 4
    assert f"rules/Frank/lifecycle.yaml: {LINK_MSG}" in result.stderr
    result = invoke("rule", "list")
    assert result.exit_code == 4 and f"rules/Frank/lifecycle.yaml {LINK_MSG}" in result.stderr
    result = invoke("rule", "deprecate", "Frank", "1.0", "--reason", "x")
    assert result.exit_code == 4
    assert outside.read_text().endswith("{active: true}\n")  # never written through the link


def test_a_symlinked_setup_folder(tmp_repo, registry, tmp_path):
    registry.new("Real", author="t")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "v1.0.yaml").write_bytes((tmp_repo / "rules/Real/v1.0.yaml").read_bytes())
    (tmp_repo / "rules/Link").symlink_to(elsewhere)
    tmp_repo.git("add", "-A")
    result = invoke("rule", "check")
    assert result.exit_code == 4
    assert (
        "rules/Link: is a symbolic link; a setup folder under rules/ must be a real folder"
        in result.stderr
    )
    for args in (("rule", "list"), ("rule", "new", "Link")):
        result = invoke(*args)
        assert result.exit_code == 4, args
        assert (
            "rules/Link is a symbolic link; a setup folder must be a real folder" in result.stderr
        )
    assert sorted(p.name for p in elsewhere.iterdir()) == ["v1.0.yaml"]


def test_a_committed_version_replaced_by_a_symlink(tmp_repo, registry, tmp_path):
    """A type change (regular file -> symlink) of a committed version: both problems."""
    registry.new("Frank", author="t")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "--no-verify", "-m", "Frank")
    path = tmp_repo / "rules/Frank/v1.0.yaml"
    outside = tmp_path / "v.yaml"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    os.symlink(outside, path)
    tmp_repo.git("add", "-A")
    result = invoke("rule", "check")
    assert result.exit_code == 4
    assert LINK_MSG in result.stderr
    assert "v1.0 of Frank is committed and immutable" in result.stderr
