"""Hook installation beside existing hooks, DVC's and the pre-commit framework's."""

from __future__ import annotations

import os
import sys

import pytest

from ita_vc.errors import VcsError
from ita_vc.rules.hook_install import HOOK_MARKER, install_hooks, uninstall_hooks
from tests.helpers import VENV_BIN, run


def _commit(repo, *args):
    return repo.git("commit", "-q", "-m", "c", *args, check=False)


def _edit_committed(repo, registry):
    registry.new("Frank")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "Frank", "--no-verify")
    path = repo / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    repo.git("add", "-A")


def test_an_existing_hook_is_kept_and_called_first(tmp_repo, registry):
    hooks = tmp_repo / ".git/hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text(
        '#!/bin/sh\necho legacy-ran >> "$(git rev-parse --show-toplevel)/legacy.log"\nexit 0\n'
    )
    os.chmod(hooks / "pre-commit", 0o755)
    report = install_hooks(tmp_repo, with_dvc=False)
    assert report.moved == ["pre-commit -> pre-commit.legacy"]
    assert HOOK_MARKER in (hooks / "pre-commit").read_text()
    _edit_committed(tmp_repo, registry)
    proc = _commit(tmp_repo)
    assert proc.returncode != 0 and "committed and immutable" in proc.stderr
    assert (tmp_repo / "legacy.log").read_text() == "legacy-ran\n"
    # installing again is idempotent: no second move, the legacy hook stays
    assert install_hooks(tmp_repo, with_dvc=False).moved == []
    assert (hooks / "pre-commit.legacy").exists()
    uninstall_hooks(tmp_repo)
    assert "legacy-ran" in (hooks / "pre-commit").read_text()
    assert not (hooks / "pre-commit.legacy").exists()
    assert uninstall_hooks(tmp_repo).written == []


def test_a_failing_legacy_hook_still_blocks(tmp_repo):
    hooks = tmp_repo / ".git/hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\necho nope >&2\nexit 3\n")
    os.chmod(hooks / "pre-commit", 0o755)
    install_hooks(tmp_repo, with_dvc=False)
    tmp_repo.gen({"x.txt": "x"})
    tmp_repo.git("add", "-A")
    proc = _commit(tmp_repo)
    assert proc.returncode != 0 and "nope" in proc.stderr


def test_foreign_hook_and_legacy_both_present_is_refused(tmp_repo):
    hooks = tmp_repo / ".git/hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\n")
    (hooks / "pre-commit.legacy").write_text("#!/bin/sh\n")
    with pytest.raises(VcsError, match="merge them by hand"):
        install_hooks(tmp_repo)


def test_dvc_install_before(tmp_repo, registry):
    tmp_repo.dvc("install")
    hooks = tmp_repo / ".git/hooks"
    assert "exec dvc git-hook pre-commit" in (hooks / "pre-commit").read_text()
    report = install_hooks(tmp_repo)  # a DVC repo: with_dvc by default
    assert report.moved == ["pre-commit -> pre-commit.legacy"]
    assert sorted(report.kept) == ["post-checkout", "pre-push"]  # DVC's own stay
    text = (hooks / "pre-commit").read_text()
    assert "git-hook pre-commit" not in text  # DVC's pre-commit runs once, as the legacy hook
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    _edit_committed(tmp_repo, registry)
    proc = run(["git", "commit", "-q", "-m", "c"], cwd=tmp_repo, check=False, env=env)
    assert proc.returncode != 0 and "committed and immutable" in proc.stderr


def test_dvc_install_after_is_not_needed(tmp_repo, registry):
    report = install_hooks(tmp_repo)
    assert sorted(report.written) == ["post-checkout", "pre-commit", "pre-push"]
    hooks = tmp_repo / ".git/hooks"
    assert "checkout --allow-missing" in (hooks / "post-checkout").read_text()  # DVC's, quiet
    assert "git-hook pre-commit" in (hooks / "pre-commit").read_text()
    proc = tmp_repo.dvc("install", check=False)  # DVC refuses: a hook exists ...
    assert proc.returncode != 0
    tmp_repo.gen({"x.txt": "x"})
    tmp_repo.git("add", "-A")
    proc = _commit(tmp_repo)  # ... but its pre-commit already runs from ours
    assert proc.returncode == 0, proc.stderr


def test_core_hooks_path_is_honoured(tmp_repo):
    tmp_repo.git("config", "core.hooksPath", "myhooks")
    report = install_hooks(tmp_repo, with_dvc=False)
    assert report.hooks_dir == tmp_repo / "myhooks"
    assert (tmp_repo / "myhooks/pre-commit").exists()


def test_the_hook_is_fast_and_imports_nothing_heavy(tmp_repo):
    """The hook's entry point must not import dvc, pandas, gitpython or typer (timed in
    benchmarks/bench_rules.py, not here)."""
    code = (
        "import sys\nfrom ita_vc.rules.hook_entry import main\nrc = main([])\n"
        "heavy = [m for m in ('dvc', 'pandas', 'git', 'pyarrow', 'typer', 'rich') "
        "if m in sys.modules]\nprint('HEAVY', heavy, rc)\n"
    )
    proc = run([sys.executable, "-c", code], cwd=tmp_repo)
    assert "HEAVY [] 0" in proc.stdout


def _framework_config(tmp_repo) -> None:
    """The published hook (.pre-commit-hooks.yaml) in its documented offline `repo: local`
    form: same id, entry, always_run and pass_filenames, run by the project's environment."""
    import yaml

    from tests.helpers import REPO_ROOT

    (published,) = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = {k: published[k] for k in ("id", "name", "always_run", "pass_filenames")}
    hook.update(entry=str(VENV_BIN / published["entry"]), language="system")
    tmp_repo.gen(
        {".pre-commit-config.yaml": yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]})}
    )


def test_the_pre_commit_framework_runs_the_published_hook(tmp_repo, registry, tmp_path):
    from tests.helpers import REPO_ROOT

    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-home")}
    pre_commit = str(VENV_BIN / "pre-commit")
    run(
        [pre_commit, "validate-manifest", str(REPO_ROOT / ".pre-commit-hooks.yaml")],
        cwd=tmp_repo,
        env=env,
    )
    _framework_config(tmp_repo)
    run([pre_commit, "install"], cwd=tmp_repo, env=env)
    registry.new("Frank")
    tmp_repo.git("add", "-A")
    ok = run(["git", "commit", "-q", "-m", "Frank"], cwd=tmp_repo, env=env, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = tmp_repo / "rules/Frank/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 11"))
    tmp_repo.git("add", "-A")
    proc = run(
        ["git", "commit", "-q", "-m", "edit"], cwd=tmp_repo, env=env, check=False, timeout=120
    )
    assert proc.returncode != 0
    assert "v1.0 of Frank is committed and immutable" in proc.stdout + proc.stderr
    tmp_repo.git("rm", "-q", "--cached", "rules/Frank/v1.0.yaml")  # deletions too
    proc = run([pre_commit, "run"], cwd=tmp_repo, env=env, check=False)
    assert proc.returncode != 0 and "deleting a committed version is refused" in proc.stdout


def test_a_hook_installed_by_ita_vc_0_2_still_runs(tmp_repo):
    """Hooks installed before 0.3 run ``python -m ita_vc._hook``: that module stays a shim."""
    ok = run([sys.executable, "-m", "ita_vc._hook"], cwd=tmp_repo)
    assert ok.returncode == 0, ok.stderr
    rules = tmp_repo / "rules" / "Broken"
    rules.mkdir(parents=True)
    (rules / "v1.0.yaml").write_text("setup_id: Broken\n", encoding="utf-8")
    tmp_repo.git("add", "rules")
    bad = run([sys.executable, "-m", "ita_vc._hook"], cwd=tmp_repo, check=False)
    assert bad.returncode == 4, bad.stderr
    assert "rules/Broken/v1.0.yaml" in bad.stderr
