"""The commit checks, driven through real git commits and the installed hook."""

from __future__ import annotations

import pytest

from ita_vc.catalog import load_catalog
from ita_vc.rules.check import check_against, check_files, check_staged, check_worktree
from ita_vc.rules.hook_install import install_hooks
from tests.rules.conftest import make_rule_text

IMMUTABLE = (
    "v1.0 of Frank is committed and immutable; create a new version with `ita-vc rule bump Frank`"
)


@pytest.fixture
def hooked(tmp_repo, registry):
    """A repo with the hook installed and Frank v1.0 committed through it."""
    install_hooks(tmp_repo, with_dvc=False)
    registry.new("Frank", author="trader_1")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank v1.0")
    return tmp_repo


def _commit(repo, message="change", *args):
    return repo.git("commit", "-q", "-m", message, *args, check=False)


def _staged(repo):
    return check_staged(repo, rules_root="rules", catalog=load_catalog())


def test_the_real_flow_edit_rejected_then_bump_accepted(hooked, registry):
    path = hooked / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    hooked.git("add", "-A")
    proc = _commit(hooked, "edit in place")
    assert proc.returncode != 0
    assert IMMUTABLE in proc.stderr
    assert "params_hash: is sha256:" in proc.stderr  # every problem, not only the first
    assert hooked.git("log", "--oneline").stdout.count("\n") == 2  # nothing committed
    hooked.git("checkout", "HEAD", "--", "rules")
    registry.bump("Frank", sets=["indicators.0.params.fast=11"])
    hooked.git("add", "-A")
    proc = _commit(hooked, "bump")
    assert proc.returncode == 0, proc.stderr
    assert "rule check: 1 file(s) OK" in proc.stderr  # git sends hook output to stderr


def test_one_changed_byte_is_rejected(hooked):
    path = hooked / "rules/Frank/v1.0.yaml"
    path.write_bytes(path.read_bytes() + b"\n")  # a trailing newline: same YAML, new bytes
    hooked.git("add", "-A")
    proc = _commit(hooked)
    assert proc.returncode != 0 and IMMUTABLE in proc.stderr


def test_the_index_is_checked_not_the_working_tree(hooked):
    path = hooked / "rules/Frank/v1.0.yaml"
    original = path.read_text()
    path.write_text(original.replace("fast: 10", "fast: 11"))  # edited but not staged
    (hooked / "notes.txt").write_text("x")
    hooked.git("add", "notes.txt")
    assert _commit(hooked).returncode == 0
    proc = _commit(hooked, "all", "-a")  # git commit -a stages through a temporary index
    assert proc.returncode != 0 and IMMUTABLE in proc.stderr


def test_deleting_or_renaming_a_committed_version_is_refused(hooked):
    hooked.git("rm", "-q", "rules/Frank/v1.0.yaml")
    proc = _commit(hooked, "delete")
    assert proc.returncode != 0 and "deleting a committed version is refused" in proc.stderr
    hooked.git("reset", "-q", "--hard")
    hooked.git("mv", "rules/Frank/v1.0.yaml", "rules/Frank/v1.1.yaml")
    proc = _commit(hooked, "rename")
    assert proc.returncode != 0
    assert "deleting a committed version is refused" in proc.stderr
    assert "lives at rules/Frank/v1.0.yaml" in proc.stderr


def test_a_reused_version_number_is_refused(hooked):
    content = (hooked / "rules/Frank/v1.0.yaml").read_text()
    hooked.git("rm", "-q", "rules/Frank/v1.0.yaml")
    assert _commit(hooked, "sneaky delete", "--no-verify").returncode == 0
    hooked.gen({"rules/Frank/v1.0.yaml": content.replace("fast: 10", "fast: 12")})
    hooked.git("add", "-A")
    report = _staged(hooked)
    assert any("was used before" in str(p) for p in report.problems)


def test_lifecycle_problems_block_the_commit(hooked, registry):
    registry.bump("Frank", sets=["targets.tp_pct=2"])
    (hooked / "rules/Frank/lifecycle.yaml").write_text(
        "schema_version: 1\nsetup_id: Frank\nversions:\n"
        "  v1.0: {active: true}\n  v1.1: {active: true}\n  v1.7: {active: false}\n"
    )
    hooked.git("add", "-A")
    proc = _commit(hooked)
    assert proc.returncode != 0
    assert "at most one active version per setup; active: v1.0, v1.1" in proc.stderr
    assert "names v1.7, which does not exist in Frank" in proc.stderr


def test_a_lifecycle_naming_a_deleted_version(hooked, registry):
    registry.activate("Frank", "1.0")
    hooked.git("add", "-A")
    assert _commit(hooked, "activate").returncode == 0
    hooked.git("rm", "-q", "--cached", "rules/Frank/v1.0.yaml")
    report = _staged(hooked)
    messages = " ".join(str(p) for p in report.problems)
    assert "deleting a committed version is refused" in messages
    assert "names v1.0, which does not exist" in messages


def test_bad_files_and_folders_under_rules(hooked):
    hooked.gen(
        {
            "rules/Frank/notes.yaml": "a: 1\n",
            "rules/bad id/v1.0.yaml": make_rule_text(),
            "rules/Frank/README.md": "ignored",
            "rules/README.md": "ignored too",
        }
    )
    hooked.git("add", "-A")
    report = _staged(hooked)
    messages = [str(p) for p in report.problems]
    assert any("'notes.yaml' is not a version file name" in m for m in messages)
    assert any("setup folder:" in m and "'bad id'" in m for m in messages)
    assert len(messages) == 2


def test_every_bad_input_blocks_a_commit_with_a_clear_message(hooked):
    cases = {
        "rules/A/v1.0.yaml": b"a: [1, 2\n",
        "rules/B/v1.0.yaml": b"a: !!python/object/apply:os.system ['true']\n",
        "rules/C/v1.0.yaml": b"setup_id: C\nsetup_id: C\n",
        "rules/D/v1.0.yaml": b"setup_id: D\nauthor: \xff\n",
        "rules/E/v1.0.yaml": make_rule_text(setup_id="E")
        .replace("params_hash: sha256:", "params_hash: sha256:0")
        .encode(),
    }
    hooked.gen(cases)
    hooked.git("add", "-A")
    proc = _commit(hooked)
    assert proc.returncode != 0
    for expected in (
        "rules/A/v1.0.yaml:2:",
        "tag not allowed",
        "duplicate key 'setup_id'",
        "rules/D/v1.0.yaml:2: not valid UTF-8",
        "rules/E/v1.0.yaml",
    ):
        assert expected in proc.stderr, expected


def test_first_commit_of_a_repository(tmp_path):
    from ita_vc.initialize import init_workspace
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace
    from tests.helpers import run

    root = tmp_path / "fresh"
    init_workspace(root)
    RuleRegistry(Workspace.at(root)).new("Frank")
    run(["git", "add", "-A"], cwd=root)
    report = check_staged(root, rules_root="rules", catalog=load_catalog())
    assert report.ok and "rules/Frank/v1.0.yaml" in report.checked


def test_check_files_and_worktree(hooked):
    path = hooked / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    report = check_files(
        hooked, ["rules/Frank/v1.0.yaml"], rules_root="rules", catalog=load_catalog()
    )
    assert any(IMMUTABLE in str(p) for p in report.problems)
    report = check_worktree(hooked, rules_root="rules", catalog=load_catalog())
    assert not report.ok
    path.unlink()
    report = check_worktree(hooked, rules_root="rules", catalog=load_catalog())
    assert any("deleting a committed version" in str(p) for p in report.problems)


def test_against_a_range_catches_no_verify_commits_and_twin_versions(hooked, registry):
    hooked.git("branch", "-q", "other")
    # branch main: v1.1 with tp 2
    registry.bump("Frank", sets=["targets.tp_pct=2"])
    hooked.git("add", "-A")
    assert _commit(hooked, "main v1.1").returncode == 0
    # branch other: its own v1.1 with tp 3, plus an in-place edit committed with --no-verify
    hooked.git("checkout", "-q", "other")
    registry.bump("Frank", sets=["targets.tp_pct=3"])
    hooked.git("add", "-A")
    assert _commit(hooked, "other v1.1").returncode == 0
    path = hooked / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    hooked.git("add", "-A")
    assert _commit(hooked, "sneaky", "--no-verify").returncode == 0
    report = check_against(hooked, "main", rules_root="rules", catalog=load_catalog())
    messages = " ".join(str(p) for p in report.problems)
    assert "(commit " in messages and IMMUTABLE in messages
    assert "v1.1 of Frank was also created on main with other content" in messages
    clean = check_against(hooked, "HEAD", rules_root="rules", catalog=load_catalog())
    assert clean.ok and clean.checked == ()


def test_against_an_unknown_revision(hooked):
    from ita_vc.errors import VcsError

    with pytest.raises(VcsError, match="not a commit"):
        check_against(hooked, "no-such-branch", rules_root="rules", catalog=load_catalog())
