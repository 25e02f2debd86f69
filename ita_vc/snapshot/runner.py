"""``ita-vc run``: set params, ``dvc repro``, refuse unless clean, snapshot, commit.

Rules: uncommitted code, rule or data changes make the tree dirty (``params.yaml`` and
``dvc.lock``, which a run writes itself, do not); a dirty run needs ``allow_dirty`` and is
flagged in the snapshot. A rule file that is not committed is always refused. One run at a time
per workspace (the workspace lock). On any failure ``params.yaml`` is restored.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError, IntegrityError, VcsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ita_vc.workspace import Workspace

__all__ = ["RunReport", "apply_param_overrides", "pipeline_env", "run_pipeline"]


@dataclass
class RunReport:
    """What ``ita-vc run`` did."""

    run_id: str
    snapshot_path: str
    snapshot: dict[str, Any]
    committed: str | None
    staged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def pipeline_env(extra_path: Path | None = None) -> dict[str, str]:
    """Environment for pipeline subprocesses: this interpreter's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    if extra_path is not None:
        env["PYTHONPATH"] = f"{extra_path}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(
            os.pathsep)
    return env


def apply_param_overrides(text: str, overrides: Iterable[tuple[str, Any]]) -> str:
    """``params.yaml`` text with ``key.path=value`` overrides applied (comments kept), like
    ``dvc exp run -S``.

    Raises:
        DataValidationError: a path that cannot be set.
    """
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from ita_vc.yamledit import YamlEditError, dump_rt, load_rt, set_path, to_rt

    doc = load_rt(text) if text.strip() else to_rt({})
    for key, raw in overrides:
        value = raw
        parts = key.split(".")
        node = doc
        for part in parts[:-1]:  # create missing sections, as dvc exp run -S does
            if part not in node:
                node[part] = to_rt({})
            node = node[part]
        if key == "rule.version" and value is not None:
            value = DoubleQuotedScalarString(str(value).lstrip("v"))
        try:
            set_path(doc, key, value)
        except YamlEditError as exc:
            raise DataValidationError(f"-S {key}: {exc}") from exc
    return dump_rt(doc)


def _stream(cmd: list[str], cwd: Path, env: dict[str, str],
            progress: Callable[[str], None] | None) -> tuple[int, list[str]]:
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None  # noqa: S101
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if progress is not None:
                progress(line.rstrip("\n"))
        code = proc.wait()
    return code, lines


def _repro(root: Path, progress: Callable[[str], None] | None) -> None:
    """``dvc repro``, then require a clean ``dvc status``."""
    from ita_vc.vcs.dvc import pipeline_status

    code, lines = _stream([str(Path(sys.executable).parent / "dvc"), "repro"], root,
                          pipeline_env(), progress)
    if code != 0:
        raise VcsError("dvc repro failed:\n" + "\n".join(lines[-20:]))
    status = pipeline_status(root)
    if status:
        raise IntegrityError(f"dvc status is not clean after dvc repro: {status}; "
                             "no snapshot written")


def run_pipeline(  # noqa: PLR0912, PLR0915 - the steps of one command, in order
    workspace: Workspace, *, setup_id: str | None = None, version: str | None = None,
    overrides: Iterable[tuple[str, Any]] = (), mode: str = "backtest", note: str | None = None,
    allow_dirty: bool = False, commit: bool = True, wait: float = 0,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Run the pipeline and record it (see the module docstring).

    Raises:
        WorkspaceLockedError: another run holds the workspace.
        IntegrityError: a dirty tree without ``allow_dirty``, an uncommitted rule file, or
            ``dvc status`` not clean after ``dvc repro``.
        DataValidationError: bad params. VcsError: ``dvc repro`` or ``git commit`` failed.
    """
    from ita_vc.backtest.params import parse_params
    from ita_vc.rules.registry import default_author
    from ita_vc.rules.validate import check_setup_id
    from ita_vc.snapshot.capture import RUN_MODES, RUN_WRITTEN, RunProvenance, new_run_id
    from ita_vc.store.atomic import atomic_write_bytes
    from ita_vc.vcs import gitcli
    from ita_vc.yamlio import YamlError, load_yaml_text

    if mode not in RUN_MODES:
        raise DataValidationError(f"--mode must be one of {', '.join(RUN_MODES)}")
    root = workspace.root
    with workspace.lock(timeout=wait):
        code_commit = gitcli.head(root)
        if code_commit is None:
            raise IntegrityError("the repository has no commit yet: commit the workspace first")
        dirty = [p for p in gitcli.status_paths(root) if p not in RUN_WRITTEN]
        if dirty and not allow_dirty:
            shown = ", ".join(dirty[:8]) + (f" (+{len(dirty) - 8} more)" if len(dirty) > 8 else "")
            raise IntegrityError(
                f"uncommitted changes: {shown}; commit them (a run must be traceable to its "
                "code, rules and data) or pass --allow-dirty (the snapshot flags it)"
            )
        params_path = root / "params.yaml"
        original = params_path.read_text("utf-8") if params_path.exists() else ""
        edits = list(overrides)
        if setup_id is not None:
            if reason := check_setup_id(setup_id):
                raise DataValidationError(f"--setup: {reason}")
            edits.insert(0, ("rule.setup_id", setup_id))
        if version is not None:
            edits.insert(0, ("rule.version", version))
        text = apply_param_overrides(original, edits) if edits else original
        try:
            params = parse_params(load_yaml_text(text, "params.yaml") or {})
        except YamlError as exc:
            raise DataValidationError(str(exc)) from exc
        if not params.setup_id or not params.version:
            raise DataValidationError("params.yaml needs rule.setup_id and rule.version "
                                      "(or pass --setup and --version)")
        rule_rel = f"{workspace.config.paths.rules_root}/{params.setup_id}/v{params.version}.yaml"
        tracked = gitcli.git(["ls-files", "--", rule_rel], root).strip()
        if not tracked or rule_rel in gitcli.status_paths(root):
            raise IntegrityError(
                f"{rule_rel} is not committed: a run's rule version must be traceable; "
                "commit it first (or `ita-vc rule new/bump` then commit)"
            )
        if text != original:
            atomic_write_bytes(params_path, text.encode("utf-8"))
        try:
            _repro(root, progress)
        except BaseException:
            if text != original:
                atomic_write_bytes(params_path, original.encode("utf-8"))
            raise
        provenance = RunProvenance(workspace)
        now = dt.datetime.now(dt.UTC)
        identity = f"{gitcli.config_value(root, 'user.email')}|{socket.gethostname()}|{code_commit}"
        run_id = new_run_id(provenance.folder, mode, now, identity)
        snapshot = provenance.build(
            run_id, code_commit=code_commit, dirty_paths=dirty,
            meta={"author": default_author(root), "run_mode": mode, "note": note},
        )
        ref = provenance.save(snapshot)
        after = set(gitcli.status_paths(root))
        to_stage = [p for p in after if p in RUN_WRITTEN or p == ref.path or (
            p.endswith(".gitignore") and p not in dirty)]
        gitcli.git(["add", "--", *sorted(to_stage)], root)
        report = RunReport(run_id, ref.path, snapshot, None, sorted(to_stage))
        if commit:
            message = (f"ita-vc run {run_id}: {snapshot['setup_id']} {snapshot['rule_version']}"
                       f" ({mode})")
            proc = subprocess.run(["git", "commit", "-q", "-m", message, "--", *sorted(to_stage)],
                                  cwd=root, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise VcsError(f"git commit of run {run_id} failed (the snapshot is saved and "
                               f"staged): {proc.stdout}{proc.stderr}")
            report.committed = gitcli.head(root)
        else:
            report.warnings.append(
                f"not committed: {', '.join(sorted(to_stage))} are staged; commit them, or the "
                "run's outputs belong to no revision and garbage collection may drop them"
            )
        return report
