"""Rule writes take the workspace lock (issue 11 item 3): `rule new/bump/rehash/activate/
deprecate` are refused with exit 10 while another process holds it, wait with ``--wait``, and
the Python API gets the same protection without ever locking twice in one process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import pytest

from ita_vc.errors import UsageError, WorkspaceLockedError
from tests.helpers import VENV_BIN, invoke, lock_held_elsewhere

pytestmark = pytest.mark.slow

_HOLDER = textwrap.dedent("""
    import sys
    from ita_vc.workspace import Workspace
    with Workspace.at(sys.argv[1]).lock(purpose="test holder"):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
""")

# `ita-vc ARGS` that says "waiting" on its first retry for the lock, then goes on waiting
_SIGNAL_WHEN_WAITING = textwrap.dedent("""
    import sys, time
    real_sleep = time.sleep
    said = []
    def sleep(seconds):
        if not said:
            said.append(1)
            print("waiting", flush=True)
        real_sleep(seconds)
    time.sleep = sleep
    from ita_vc.cli import main
    main(sys.argv[1:])
""")


class Holder:
    """Another process inside ``workspace.lock()`` until :meth:`release`."""

    def __init__(self, root) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def holder(tmp_repo):
    held = Holder(tmp_repo)
    yield held
    if held.proc.poll() is None:
        held.release()


def _rules_state(repo) -> dict[str, str]:
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / "rules").rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def frank(tmp_repo, registry):
    registry.new("Frank", author="t")
    tmp_repo.git("add", "-A")
    tmp_repo.git("commit", "-q", "-m", "Frank")
    registry.new("Draft", author="t")  # uncommitted, edited by hand: rehash would write
    path = tmp_repo / "rules/Draft/v1.0.yaml"
    path.write_text(path.read_text().replace("fast: 10", "fast: 12"))
    return tmp_repo


@pytest.mark.parametrize(
    "args",
    [
        ("rule", "new", "Other"),
        ("rule", "bump", "Frank", "-S", "targets.tp_pct=5"),
        ("rule", "rehash", "Draft@v1.0"),
        ("rule", "activate", "Frank", "1.0"),
        ("rule", "deprecate", "Frank", "1.0", "--reason", "old"),
    ],
)
def test_every_rule_write_is_refused_while_the_lock_is_held(frank, holder, args):
    before = _rules_state(frank)
    result = invoke(*args)
    assert result.exit_code == 10, result.output
    assert "another ita-vc command is running" in result.stderr
    assert "held by pid" in result.stderr and "test holder" in result.stderr
    assert _rules_state(frank) == before
    holder.release()
    assert invoke(*args).exit_code == 0  # and it works once the holder is gone


def test_rule_bump_as_a_real_process_exits_10_and_writes_nothing(frank, holder):
    before = _rules_state(frank)
    proc = subprocess.run(
        [str(VENV_BIN / "ita-vc"), "rule", "bump", "Frank", "-S", "direction=long-only"],
        cwd=frank,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 10, proc.stderr
    assert "pass --wait SECONDS" in proc.stderr
    assert _rules_state(frank) == before
    assert not (frank / "rules/Frank/v1.1.yaml").exists()


def test_wait_waits_for_the_holder(frank, holder):
    waiter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SIGNAL_WHEN_WAITING,
            "rule",
            "bump",
            "Frank",
            "-S",
            "direction=long-only",
            "--wait",
            "600",
        ],
        cwd=frank,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiter.stdout is not None
        assert waiter.stdout.readline().strip() == "waiting"  # it is blocked on the lock ...
        assert not (frank / "rules/Frank/v1.1.yaml").exists()
        holder.release()  # ... and goes on once it is free
        out, err = waiter.communicate(timeout=120)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert waiter.returncode == 0, err
    assert "Created rules/Frank/v1.1.yaml" in out
    assert "direction: long-only" in (frank / "rules/Frank/v1.1.yaml").read_text()


@pytest.mark.parametrize("wait", ["nan", "-1", "inf"])
def test_a_bad_wait_is_a_usage_error(frank, wait):
    before = _rules_state(frank)
    result = invoke("rule", "bump", "Frank", "-S", "direction=long-only", "--wait", wait)
    assert result.exit_code == 2
    assert "--wait must be a number of seconds >= 0" in result.output
    assert _rules_state(frank) == before


def test_the_python_api_takes_the_lock_too(frank, registry, workspace):
    before = _rules_state(frank)
    with lock_held_elsewhere(workspace):
        for call in (
            lambda: registry.new("Other"),
            lambda: registry.bump("Frank", sets=["direction=long-only"]),
            lambda: registry.rehash("Draft", "1.0"),
            lambda: registry.activate("Frank", "1.0"),
            lambda: registry.deprecate("Frank", "1.0", reason="old"),
        ):
            with pytest.raises(WorkspaceLockedError, match="another ita-vc command"):
                call()
    assert _rules_state(frank) == before
    with pytest.raises(UsageError, match="--wait must be"):
        registry.bump("Frank", sets=["direction=long-only"], wait=float("nan"))


def test_nothing_inside_takes_the_lock_twice(frank, registry, holder):
    """flock is not re-entrant across two opens in one process: a write method called while
    the registry holds the lock must not try again (it would be refused by itself)."""
    holder.release()
    result = invoke("rule", "bump", "Frank", "-S", "direction=long-only", "--reason", "why")
    assert result.exit_code == 0, result.output  # bump -> lifecycle edit, one lock
    with registry.locked(wait=0, purpose="several rule writes"):
        rule = registry.bump("Frank", sets=["direction=short-only"], reason="batch")
        registry.activate("Frank", rule.version)
        registry.deprecate("Frank", "1.0", reason="superseded")
    assert registry.get_active_version("Frank") == rule.version


def test_a_second_process_is_refused_while_the_registry_holds_the_lock(frank, registry):
    with registry.locked(purpose="batch"):
        result = subprocess.run(
            [str(VENV_BIN / "ita-vc"), "rule", "activate", "Frank", "1.0"],
            cwd=frank,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 10 and "held by pid" in result.stderr
