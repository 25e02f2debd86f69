"""``ita-vc rule rehash`` (issue 13 item 8): an uncommitted version edited by hand gets its
params_hash recomputed; a committed one is refused; the hook says which case applies."""

from __future__ import annotations

import pytest

from ita_vc.errors import RuleValidationError
from ita_vc.rules.hook_install import install_hooks
from tests.helpers import invoke

REHASH_HINT = (
    "this version was never committed: recompute its hash with `ita-vc rule rehash Frank@v1.0`"
)
BUMP_HINT = (
    "v1.0 of Frank is committed and immutable: undo the edit (`git checkout HEAD -- "
    "rules/Frank/v1.0.yaml`) and put the change in a new version with "
    "`ita-vc rule bump Frank`"
)
PATH = "rules/Frank/v1.0.yaml"


def _edit(repo, old: str = "fast: 10", new: str = "fast: 11  # tuned by hand") -> str:
    path = repo / PATH
    text = path.read_text().replace(old, new)
    path.write_text(text)
    return text


def test_an_uncommitted_edit_the_hook_says_rehash_and_rehash_fixes_it(tmp_repo, registry):
    install_hooks(tmp_repo, with_dvc=False)
    registry.new("Frank", author="t")
    edited = _edit(tmp_repo)
    tmp_repo.git("add", "-A")
    proc = tmp_repo.git("commit", "-q", "-m", "Frank", check=False)
    assert proc.returncode == 1
    assert REHASH_HINT in proc.stderr and "hand-edited" not in proc.stderr
    assert "rule bump" not in proc.stderr
    result = invoke("rule", "rehash", "Frank@v1.0")
    assert result.exit_code == 0, result.output
    assert "Rehashed rules/Frank/v1.0.yaml" in result.stdout
    text = (tmp_repo / PATH).read_text()
    # only the params_hash line changed: comments, key order and layout kept
    old_lines, new_lines = edited.splitlines(), text.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("params_hash: sha256:")
    assert "# tuned by hand" in text and text.startswith("# Rule Frank v1.0.")
    rule = registry.get("Frank", "1.0")
    assert rule.indicators[0]["params"]["fast"] == 11 and changed[0][1].endswith(rule.params_hash)
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank")  # the hook accepts it now


def test_a_committed_version_is_refused_and_the_hook_says_bump(tmp_repo, registry):
    install_hooks(tmp_repo, with_dvc=False)
    registry.new("Frank", author="t")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank")
    edited = _edit(tmp_repo)
    result = invoke("rule", "rehash", "Frank")
    assert result.exit_code == 4
    assert (
        "rules/Frank/v1.0.yaml is committed (it is in HEAD) and immutable; `rule rehash` is "
        "only for versions never committed"
    ) in result.stderr
    assert (tmp_repo / PATH).read_text() == edited  # nothing written
    with pytest.raises(RuleValidationError, match="in HEAD"):
        registry.rehash("Frank", "1.0")
    tmp_repo.git("add", "-A")
    proc = tmp_repo.git("commit", "-q", "-m", "edit", check=False)
    assert proc.returncode == 1 and BUMP_HINT in proc.stderr and "rehash" not in proc.stderr
    with pytest.raises(RuleValidationError, match="committed and immutable: undo the edit"):
        registry.get("Frank")


def test_the_registry_and_against_name_the_case(tmp_repo, registry):
    registry.new("Frank", author="t")
    _edit(tmp_repo)
    with pytest.raises(RuleValidationError, match="rule rehash Frank@v1.0"):
        registry.get("Frank")
    base = tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "--no-verify", "-m", "bad hash")
    result = invoke("rule", "check", "--against", base)
    assert result.exit_code == 4 and BUMP_HINT in result.stderr  # committed on the branch


def test_rehash_with_nothing_to_do_writes_nothing(tmp_repo, registry):
    registry.new("Frank", author="t")
    path = tmp_repo / PATH
    stat = path.stat()
    result = invoke("rule", "rehash", "Frank")
    assert result.exit_code == 0
    assert "params_hash is already right" in result.stdout and "nothing written" in result.stdout
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_ino == stat.st_ino
    assert not registry.rehash("Frank").changed


def test_rehash_refuses_a_file_with_other_problems(tmp_repo, registry):
    registry.new("Frank", author="t")
    edited = _edit(tmp_repo, "name: ma_cross", "name: no_such_indicator")
    result = invoke("rule", "rehash", "Frank@1.0")
    assert result.exit_code == 4
    assert (
        "cannot rehash rules/Frank/v1.0.yaml: fix these first (nothing was written):"
        in result.stderr
    )
    assert "unknown indicator 'no_such_indicator'" in result.stderr
    assert (tmp_repo / PATH).read_text() == edited


def test_rehash_adds_a_missing_hash_and_picks_the_latest_version(tmp_repo, registry):
    registry.new("Frank", author="t")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank")
    registry.bump("Frank", sets=["targets.sl_pct=2"], author="t")
    path = tmp_repo / "rules/Frank/v1.1.yaml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("params_")]
    path.write_text("\n".join(lines).replace("sl_pct: 2", "sl_pct: 3") + "\n")
    result = registry.rehash("Frank")
    assert result.old_hash is None and result.changed
    assert result.rule.version.tag == "v1.1" and result.rule.targets["sl_pct"] == 3
    assert registry.get("Frank", "1.1").params_hash == result.rule.params_hash


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("Frank@v9.9", "Frank has no version v9.9"),
        ("Frank@1.x", "not a version"),
        ("../x", "setup_id:"),
        ("Nobody", "no rule 'Nobody'"),
    ],
)
def test_rehash_bad_references(tmp_repo, registry, ref, message):
    registry.new("Frank", author="t")
    result = invoke("rule", "rehash", ref)
    assert result.exit_code == 4 and message in result.stderr
