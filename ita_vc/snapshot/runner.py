"""``ita-vc run``: check everything, set params, ``dvc repro``, snapshot, commit.

Order (nothing is changed before the checks pass):

1. the workspace lock (``wait`` seconds), the metadata index readable, a killed earlier run
   repaired (:mod:`ita_vc.snapshot.journal`);
2. a clean tree: uncommitted code, rules or configs (``git status``; ``params.yaml`` and
   ``dvc.lock``, which a run writes itself, do not count) and DVC-tracked data that differs
   from its committed ``.dvc`` file (``dvc status``) make the tree dirty: refused unless
   ``allow_dirty``, which is recorded in the snapshot;
3. the ``-S`` overrides applied to ``params.yaml`` in memory and the result validated by the
   same parsers the stages use; the stages chosen (default: ``report`` and its upstream);
   the rule version committed, a regular file, valid - and active for live runs; the candles
   present;
4. a run whose inputs (the ``dvc.lock`` entries of its stages, and the mode) equal a recorded
   run's is not repeated (``force`` runs it anyway);
5. ``params.yaml`` written, ``dvc repro`` of the chosen stages (the child holds the lock too and
   dies with this process), then ``dvc status`` of those stages must be clean;
6. the snapshot written and committed with everything ``dvc repro`` changed.

A journal records each phase, so a killed run is repaired by the next one; on any error the
run undoes what it did (``params.yaml`` restored, no snapshot left behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ita_vc.backtest.params import preset_ref
from ita_vc.catalog import load_catalog
from ita_vc.errors import (
    ConfigError,
    DataValidationError,
    DirtyWorkspaceError,
    IntegrityError,
    ItaVcError,
    PersistentStoreError,
    RuleValidationError,
    UsageError,
    VcsError,
)
from ita_vc.pipeline.engine_pin import pinned_engine
from ita_vc.rules.model import RuleVersion
from ita_vc.rules.registry import RuleRegistry, default_author
from ita_vc.rules.validate import check_setup_id
from ita_vc.snapshot.capture import RUN_MODES, RUN_WRITTEN, SnapshotStore
from ita_vc.snapshot.journal import RunJournal, recover_interrupted_run
from ita_vc.snapshot.links import link_run
from ita_vc.snapshot.manifest import MANIFEST_SUFFIX, manifest_relpath
from ita_vc.snapshot.pipeline_files import pipeline_stage_names, run_hash_of
from ita_vc.snapshot.records import Recorder, headline_metrics, recorded_run, rule_ref
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import canonical_json
from ita_vc.validation.params import check_params
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import (
    check_params_values,
    data_source_changes,
    pipeline_outputs,
    pipeline_status,
    stage_closure,
)
from ita_vc.yaml_read import YamlDocument, YamlError, load_yaml_document, read_text_file
from ita_vc.yaml_rewrite import YamlEditError, dump_rt, load_rt, set_path, to_rt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ita_vc.backtest.params import RunParams
    from ita_vc.workspace import Workspace

__all__ = [
    "DEFAULT_STAGE",
    "RunReport",
    "apply_param_overrides",
    "pipeline_env",
    "pipeline_stage_names",
    "run_pipeline",
]

DEFAULT_STAGE = "report"
"""``ita-vc run`` reproduces this stage and its upstream (prepare -> backtest -> report)."""
_RULE_STAGES = ("backtest", "grid", "validate")
_CANDLE_STAGES = ("prepare", "grid")
_EXIT_CLASSES: dict[int, type[ItaVcError]] = {
    4: RuleValidationError,
    8: ConfigError,
    9: PersistentStoreError,
    11: DataValidationError,
}


@dataclass
class RunReport:
    """What ``ita-vc run`` did (``already`` set: nothing; it equals that recorded run)."""

    run_id: str
    snapshot_path: str
    snapshot: dict[str, Any]
    committed: str | None
    staged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    already: bool = False
    stages: list[str] = field(default_factory=list)


def pipeline_env(extra_path: Path | None = None) -> dict[str, str]:
    """Environment for pipeline subprocesses: this interpreter's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    if extra_path is not None:
        env["PYTHONPATH"] = f"{extra_path}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(
            os.pathsep
        )
    return env


def _plain_value(key: str, value: object) -> object:
    """A ``-S`` value as JSON-able data: dates and times become ISO strings (DVC refuses
    them); other types YAML may produce (bytes, sets) are refused."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(f"{key}.{i}", v) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise DataValidationError(
        f"-S {key}: a {type(value).__name__} is not a params value "
        f"({value!r}); use a number, a string, a list or a mapping"
    )


def apply_param_overrides(text: str, overrides: Iterable[tuple[str, object]]) -> str:
    """``params.yaml`` text with ``key.path=value`` overrides applied (comments kept), like
    ``dvc exp run -S``. Dates are written as quoted strings.

    Raises:
        DataValidationError: a path that cannot be set, or a value params cannot hold.
    """
    try:
        doc = load_rt(text, "params.yaml", allow_aliases=True) if text.strip() else to_rt({})
    except YamlEditError as exc:
        raise DataValidationError(f"params.yaml: {exc}") from exc
    for key, raw in overrides:
        if not key or any(not part for part in key.split(".")):
            raise DataValidationError(f"-S {key!r}: not a key path (e.g. backtest.fee_pct)")
        value = _plain_value(key, raw)
        node = doc
        for part in key.split(".")[:-1]:  # create missing sections, as dvc exp run -S does
            if not isinstance(node, dict):
                raise DataValidationError(f"-S {key}: {part} is not a section of params.yaml")
            if part not in node:
                node[part] = to_rt({})
            node = node[part]
        if key == "rule.version" and value is not None:
            if isinstance(value, float | int) and not isinstance(value, bool):
                raise DataValidationError(
                    f"-S rule.version: {value!r} is a number (YAML reads 1.10 as 1.1); give the "
                    f'version as text: -S rule.version="{value}" or --version'
                )
            value = DoubleQuotedScalarString(str(value).lstrip("v"))
        try:
            set_path(doc, key, value)
        except YamlEditError as exc:
            raise DataValidationError(f"-S {key}: {exc}") from exc
    return dump_rt(doc)


def _choose_stages(root: Path, stages: Sequence[str] | None) -> list[str]:
    names = pipeline_stage_names(root)
    if not stages:
        return [DEFAULT_STAGE] if DEFAULT_STAGE in names else [n for n in names if n != "grid"]
    unknown = [s for s in stages if s not in names]
    if unknown:
        raise UsageError(
            f"--stage {', '.join(unknown)}: no such stage in dvc.yaml (stages: {', '.join(names)})"
        )
    return list(dict.fromkeys(stages))


def _dirty_paths(root: Path) -> list[str]:
    """Uncommitted git changes a run would not own, and DVC data that differs from its
    ``.dvc`` file. Files inside pipeline outputs do not count: ``dvc repro`` rewrites them
    (they show as untracked after checking out a commit whose ``.gitignore`` predates them)."""
    changed = list(dict.fromkeys(p for p in gitcli.status_paths(root) if p not in RUN_WRITTEN))
    if changed:
        outs = pipeline_outputs(root)
        changed = [p for p in changed if not any(p == o or p.startswith(o + "/") for o in outs)]
    return changed + data_source_changes(root)


def _dirty_message(dirty: list[str]) -> str:
    shown = ", ".join(dirty[:8]) + (f" (+{len(dirty) - 8} more)" if len(dirty) > 8 else "")
    data = [d for d in dirty if ".dvc:" in d]
    hint = (
        " For data: `dvc add data` then commit the .dvc file (`ita-vc data import "
        "--commit` does both)."
        if data
        else ""
    )
    return (
        f"uncommitted changes: {shown}. Commit them (a run must be traceable to its code, "
        "rules and data) or pass --allow-dirty (the snapshot records them)." + hint
    )


def _read_params(path: Path) -> str:
    """``params.yaml`` as text (empty when missing).

    Raises:
        DataValidationError: too large, not UTF-8, not a regular file.
    """
    if not os.path.lexists(path):
        return ""
    try:
        return read_text_file(path)
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc


def _load_params_document(text: str) -> YamlDocument:
    """params.yaml composed once (under the limits, aliases allowed) with its node index; the
    values DVC cannot read are refused before DVC reads them."""
    try:
        doc = load_yaml_document(text, "params.yaml", allow_aliases=True)
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc
    if doc.data is None:
        return YamlDocument(doc.source, {}, doc.index)
    if not isinstance(doc.data, dict):
        raise DataValidationError("params.yaml: must be a mapping of sections")
    check_params_values(doc)
    return doc


def _load_params_text(text: str) -> dict[str, Any]:
    data: dict[str, Any] = _load_params_document(text).data
    return data


def _validated_params(workspace: Workspace, text: str) -> tuple[dict[str, Any], RunParams]:
    """Every problem of params.yaml (after the -S edits) at once, each with its line, the grid
    section's included (a run commits params.yaml: never a bad grid)."""
    doc = _load_params_document(text)
    params, _validation = check_params(
        doc.data,
        load_catalog(workspace.root),
        index=doc.index,
        engine=pinned_engine(workspace.root),
    )
    return doc.data, params


def _preflight(
    workspace: Workspace,
    params: RunParams,
    closure: list[str],
    mode: str,
) -> str:
    """Everything the stages need is there; returns the rule version's lifecycle status."""
    root = workspace.root
    status = "inactive"
    if any(s in closure for s in _RULE_STAGES):
        if not params.setup_id or not params.version:
            raise DataValidationError(
                "params.yaml needs rule.setup_id and rule.version (or pass --setup and --version)"
            )
        registry = RuleRegistry(workspace)
        rel = registry.relpath(params.setup_id, RuleVersion.parse(params.version))
        if not os.path.lexists(root / rel):
            have = (
                ", ".join(v.tag for v in registry.versions(params.setup_id))
                if (root / registry.relpath(params.setup_id)).is_dir()
                else ""
            )
            raise DataValidationError(
                f"{rel} does not exist"
                + (f" ({params.setup_id} has {have})" if have else "")
                + f": create it with `ita-vc rule new {params.setup_id}` and commit it, or set "
                "rule.setup_id / rule.version in params.yaml (or --setup / --version)"
            )
        rule = registry.get(params.setup_id, params.version)
        tracked = gitcli.git(["ls-files", "--", rel], root).strip()
        if not tracked or rel in gitcli.status_paths(root):
            raise DirtyWorkspaceError(
                f"{rel} is not committed: a run's rule version must be traceable; commit it "
                "first (`git add` + `git commit`), even with --allow-dirty"
            )
        entry = registry.status(params.setup_id, rule.version)
        status = entry.status
        if mode == "live" and not entry.active:
            active = registry.get_active_version(params.setup_id)
            why = f" ({entry.deprecation_reason})" if entry.deprecated else ""
            raise RuleValidationError(
                f"{params.setup_id} {rule.version.tag} is {status}{why}: only the active "
                "version runs live"
                + (
                    f"; the active one is {active.tag}"
                    if active
                    else f" (activate one: `ita-vc rule activate {params.setup_id} vX.Y`)"
                )
                + "; backtests of any version are fine (--mode backtest)"
            )
    if any(s in closure for s in _CANDLE_STAGES):
        from ita_vc.candles.dataset import CandleStore  # lazy: imports pandas (~0.5 s)

        data = params.data
        candles = CandleStore(workspace)
        if not candles.exists(data.market, data.symbol, data.source_timeframe):
            rel = candles.relpath(data.market, data.symbol, data.source_timeframe)
            raise DataValidationError(
                f"no candles for {data.market} {data.symbol} {data.source_timeframe} ({rel}): "
                f"import them with `ita-vc data import FILE --market {data.market} --symbol "
                f"{data.symbol} --commit`, restore them with `dvc pull`, or set data.market / "
                "data.symbol in params.yaml"
            )
    return status


def _already_recorded(workspace: Workspace, run_hash: str) -> dict[str, Any] | None:
    folder = workspace.path(workspace.config.store.kinds["provenance"])
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            snapshot = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(snapshot, dict)
            and snapshot.get("run_hash") == run_hash
            and snapshot.get("git_dirty") is False
        ):
            return snapshot  # a dirty run is not "this run": it may not reproduce
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the child gets SIGTERM when this process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# A watcher that takes the child's whole process group down when this process dies: a stage
# command of the user's own (`sleep 20 && python ...`) runs in a shell that DVC's death alone
# would not stop. It gets SIGTERM through PR_SET_PDEATHSIG, and checks its parent too (in case
# this process died before the watcher installed its handler).
_WATCHER = """
import os, signal, sys, time
group, parent = int(sys.argv[1]), int(sys.argv[2])
def stop(*_):
    try:
        os.killpg(group, signal.SIGTERM)
    except OSError:
        pass
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while os.getppid() == parent:
    time.sleep(0.2)
stop()
"""


def _stream(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    progress: Callable[[str], None] | None,
    keep_fds: tuple[int, ...] = (),
) -> tuple[int, list[str]]:
    """Run ``cmd`` in a process group of its own, streaming its output. If this process dies
    (even by SIGKILL) the whole group is terminated; Ctrl-C is passed on to the group."""
    lines: list[str] = []
    linux = sys.platform == "linux"
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        pass_fds=keep_fds,
        start_new_session=True,
        preexec_fn=_die_with_parent if linux else None,  # noqa: PLW1509
    ) as proc:
        watcher = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, str(proc.pid), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if linux else None,  # noqa: PLW1509
        )
        try:
            assert proc.stdout is not None  # noqa: S101
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if progress is not None:
                    progress(line.rstrip("\n"))
            code = proc.wait()
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGINT)  # the group is not in the terminal's
            try:
                proc.wait()
            except KeyboardInterrupt:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        finally:
            watcher.kill()
            watcher.wait()
    return code, lines


def _repro_failure(lines: list[str]) -> ItaVcError:
    """The error of a failed ``dvc repro``: a stage's own error keeps its class (exit code)."""
    tail = "\n".join(lines[-20:])
    for line in reversed(lines):
        match = re.search(r"exited with (\d+)", line)
        if match:
            code = int(match.group(1))
            if code == 130:
                raise KeyboardInterrupt
            errors = [x.removeprefix("error: ") for x in lines if x.startswith("error: ")]
            cls = _EXIT_CLASSES.get(code)
            if cls is not None and errors:
                return cls(f"dvc repro stopped: {errors[-1]}")
            break
    return VcsError("dvc repro failed:\n" + tail)


def _repro(
    root: Path, targets: list[str], progress: Callable[[str], None] | None, lock_fd: int | None
) -> None:
    """``dvc repro TARGETS``, then require a clean ``dvc status`` of them."""
    if progress is not None:
        progress(f"dvc repro {' '.join(targets)}")
    code, lines = _stream(
        [str(Path(sys.executable).parent / "dvc"), "repro", *targets],
        root,
        pipeline_env(),
        progress,
        keep_fds=(lock_fd,) if lock_fd is not None else (),
    )
    if code != 0:
        raise _repro_failure(lines)
    status = pipeline_status(root, targets)
    if status:
        raise IntegrityError(
            f"dvc status is not clean after dvc repro: {status}; no snapshot written"
        )


def _undo_snapshot(workspace: Workspace, rel: str, run_id: str) -> None:
    written = [rel, manifest_relpath(workspace, run_id)]
    gitcli.git(["reset", "-q", "--", *written], workspace.root, check=False)
    for path in written:
        (workspace.root / path).unlink(missing_ok=True)
    with contextlib.suppress(PersistentStoreError):
        MetadataIndex(workspace.index_path).delete_run(run_id)


def _commit(workspace: Workspace, journal: RunJournal, report: RunReport, commit: bool) -> None:
    root = workspace.root
    gitcli.git(["add", "--", *report.staged], root)
    if not commit:
        report.warnings.append(
            f"not committed: {', '.join(report.staged)} are staged; commit them, or the "
            "run's outputs belong to no revision and garbage collection may drop them"
        )
        return
    journal.save("commit")
    proc = gitcli.run(["commit", "-q", "-m", str(journal.message), "--", *report.staged], root)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        raise VcsError(
            f"git commit of run {report.run_id} failed, so the run is not recorded "
            f"(its snapshot was removed): {output}"
        )
    report.committed = gitcli.head(root)


@dataclass(frozen=True)
class _RunOptions:
    """The caller's choices for one ``ita-vc run``."""

    mode: str
    note: str | None
    allow_dirty: bool
    commit: bool
    force: bool
    stages: Sequence[str] | None
    progress: Callable[[str], None] | None


@dataclass
class _Prepared:
    """What the checks (steps 1-3 of the module docstring) established, under the lock."""

    notes: list[str]
    code_commit: str
    params_path: Path
    original: str
    text: str
    dirty: list[str]
    targets: list[str]
    closure: list[str]
    rule_status: str

    def write_params(self) -> None:
        if self.text != self.original:
            atomic_write_bytes(self.params_path, self.text.encode("utf-8"))

    def restore_params(self) -> None:
        if self.text != self.original:
            atomic_write_bytes(self.params_path, self.original.encode("utf-8"))


def _run_edits(
    mode: str, setup_id: str | None, version: str | None, overrides: Iterable[tuple[str, object]]
) -> list[tuple[str, object]]:
    """The ``-S`` edits, ``--setup`` and ``--version`` first; the mode checked before all."""
    if mode not in RUN_MODES:
        raise UsageError(f"--mode must be one of {', '.join(RUN_MODES)}, got {mode!r}")
    edits = list(overrides)
    if setup_id is not None:
        if reason := check_setup_id(setup_id):
            raise DataValidationError(f"--setup: {reason}")
        edits.insert(0, ("rule.setup_id", setup_id))
    if version is not None:
        edits.insert(0, ("rule.version", version))
    return edits


def _recover_and_check_head(workspace: Workspace, commit: bool) -> tuple[list[str], str]:
    """Step 1 and the commit to record: the index readable, a killed run repaired, a HEAD
    (on a branch when the run commits). Returns the recovery notes and HEAD."""
    root = workspace.root
    MetadataIndex(workspace.index_path).check()
    notes = recover_interrupted_run(workspace)
    code_commit = gitcli.head(root)
    if code_commit is None:
        raise DirtyWorkspaceError(
            "the repository has no commit yet: commit the workspace "
            "first (git add -A && git commit)"
        )
    if commit and gitcli.branch(root) is None:
        raise VcsError(
            f"HEAD is detached (at {code_commit[:10]}): the run's commit would belong to no "
            "branch, so a later checkout leaves it unreachable (git gc may drop it, and "
            "ita-vc gc cannot see it). Create a branch first: git switch -c NAME"
        )
    return notes, code_commit


def _checked_params(
    workspace: Workspace,
    edits: list[tuple[str, object]],
    allow_dirty: bool,
) -> tuple[Path, str, str, list[str], RunParams]:
    """Step 2 and the params of step 3: returns the path, the original and the new text, the
    dirty paths and the validated params."""
    params_path = workspace.contained("params.yaml")
    original = _read_params(params_path)
    _load_params_text(original)  # before DVC reads it: DVC expands YAML aliases unbounded
    dirty = _dirty_paths(workspace.root)
    if dirty and not allow_dirty:
        raise DirtyWorkspaceError(_dirty_message(dirty))
    text = apply_param_overrides(original, edits) if edits else original
    doc, params = _validated_params(workspace, text)
    if edits and doc == _load_params_text(original):
        text = original  # the same values: leave the file (and its formatting) alone
    return params_path, original, text, dirty, params


def _run_stages(root: Path, stages: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The chosen stages and their upstream closure, which must include the backtest."""
    targets = _choose_stages(root, stages)
    closure = stage_closure(root, targets)
    if "backtest" not in closure:
        raise UsageError(
            f"--stage {' '.join(targets)} does not run the backtest stage: a "
            "run records a backtest (the grid runs with `ita-vc grid run`, "
            "or `ita-vc run --stage report --stage grid`)"
        )
    return targets, closure


def _prepare(
    workspace: Workspace,
    edits: list[tuple[str, object]],
    opts: _RunOptions,
) -> _Prepared:
    """Steps 1-3 of the module docstring, in order; nothing is changed yet."""
    notes, code_commit = _recover_and_check_head(workspace, opts.commit)
    params_path, original, text, dirty, params = _checked_params(workspace, edits, opts.allow_dirty)
    targets, closure = _run_stages(workspace.root, opts.stages)
    rule_status = _preflight(workspace, params, closure, opts.mode)
    return _Prepared(
        notes, code_commit, params_path, original, text, dirty, targets, closure, rule_status
    )


def _recorded_before(
    workspace: Workspace,
    prep: _Prepared,
    opts: _RunOptions,
) -> RunReport | None:
    """Step 4: the recorded run with these inputs, if the tree and params are unchanged."""
    if opts.force or prep.text != prep.original or prep.dirty:
        return None
    root = workspace.root
    current = run_hash_of(root, prep.closure, opts.mode)
    if current is None or pipeline_status(root, prep.targets):
        return None
    previous = _already_recorded(workspace, current)
    if previous is None:
        return None
    rid = str(previous["run_id"])
    rel = SnapshotStore(workspace).snapshot_relpath(rid)
    return RunReport(
        rid, rel, previous, None, warnings=prep.notes, already=True, stages=prep.closure
    )


def _reproduce(
    workspace: Workspace,
    prep: _Prepared,
    edits: list[tuple[str, object]],
    opts: _RunOptions,
    lock_fd: int | None,
) -> tuple[RunJournal, set[str]]:
    """Step 5: journal, ``params.yaml`` written, ``dvc repro``; undone on any error. Returns
    the journal and the git status paths from before."""
    journal = RunJournal(
        workspace,
        params_original=prep.original,
        params_written=prep.text,
        overrides=[f"{k}={v}" for k, v in edits],
    )
    journal.save("repro")
    before = set(gitcli.status_paths(workspace.root))
    lock_path = workspace.root / "dvc.lock"
    lock_before = lock_path.read_bytes() if lock_path.is_file() else None
    try:
        prep.write_params()
        _repro(workspace.root, prep.targets, opts.progress, lock_fd)
    except BaseException:
        prep.restore_params()
        # DVC records the stages that finished in dvc.lock but writes their .gitignore entries
        # only when the whole repro succeeds: the lock goes back to what it was, so the next
        # run re-runs them and their outputs are ignored again
        if lock_before is None:
            lock_path.unlink(missing_ok=True)
        elif lock_path.read_bytes() != lock_before:
            atomic_write_bytes(lock_path, lock_before)
        journal.clear()
        raise
    return journal, before


def _recorded_after(
    workspace: Workspace,
    prep: _Prepared,
    opts: _RunOptions,
    journal: RunJournal,
    provenance: SnapshotStore,
) -> RunReport | None:
    """The recorded run the repro turned out to equal (e.g. ``-S`` back to its values)."""
    if opts.force or prep.dirty:
        return None
    root = workspace.root
    same = _already_recorded(workspace, run_hash_of(root, prep.closure, opts.mode) or "")
    if same is None:
        return None
    journal.clear()
    changed = [p for p in RUN_WRITTEN if p in gitcli.status_paths(root)]
    if changed:
        prep.notes.append(
            f"{' and '.join(changed)} now hold the values of "
            f"{same['run_id']}, not committed: commit them, or `git "
            f"checkout -- {' '.join(changed)}` to go back"
        )
    return RunReport(
        str(same["run_id"]),
        provenance.snapshot_relpath(str(same["run_id"])),
        same,
        None,
        warnings=prep.notes,
        already=True,
        stages=prep.closure,
    )


def _staged_paths(after: set[str], before: set[str], rel: str, dirty: list[str]) -> list[str]:
    """What the run's commit holds: everything the run changed, its snapshot, the files it
    always writes, new ``.gitignore`` entries, and ``.dvc`` files when data was dirty."""
    manifest = rel.removesuffix(".json") + MANIFEST_SUFFIX
    return sorted(
        {
            p
            for p in after
            if p not in before
            or p in RUN_WRITTEN
            or p in (rel, manifest)
            or (p.endswith(".gitignore") and p not in dirty)
        }
        | ({p for p in after if p.endswith(".dvc")} if any(".dvc:" in d for d in dirty) else set())
    )


def _snapshot_and_commit(
    workspace: Workspace,
    prep: _Prepared,
    opts: _RunOptions,
    journal: RunJournal,
    provenance: SnapshotStore,
    report: RunReport,
    before: set[str],
) -> None:
    """Step 6 proper: the snapshot built and saved, the run's changes staged and committed."""
    root = workspace.root
    snapshot = provenance.build(
        report.run_id,
        code_commit=prep.code_commit,
        dirty_paths=prep.dirty,
        stages_run=prep.closure,
        meta={"author": default_author(root), "run_mode": opts.mode, "note": opts.note},
        rule_status=prep.rule_status,
    )
    report.snapshot = snapshot
    provenance.save(snapshot)
    after = set(gitcli.status_paths(root))
    report.staged = _staged_paths(after, before, report.snapshot_path, prep.dirty)
    journal.to_stage = report.staged
    journal.message = (
        f"ita-vc run {report.run_id}: {snapshot['setup_id']} "
        f"{snapshot['rule_version']} ({opts.mode})"
    )
    _commit(workspace, journal, report, opts.commit)


def _record(
    workspace: Workspace,
    prep: _Prepared,
    opts: _RunOptions,
    journal: RunJournal,
    provenance: SnapshotStore,
    before: set[str],
    run_id: str,
) -> RunReport:
    """Step 6: the run id journalled, then snapshot and commit; undone on any error."""
    rel = provenance.snapshot_relpath(run_id)
    journal.run_id, journal.snapshot_path = run_id, rel
    journal.save("snapshot")
    report = RunReport(run_id, rel, {}, None, warnings=prep.notes, stages=prep.closure)
    try:
        _snapshot_and_commit(workspace, prep, opts, journal, provenance, report, before)
    except BaseException:
        _undo_snapshot(workspace, rel, run_id)
        prep.restore_params()
        journal.clear()
        raise
    journal.clear()
    return report


_RUNNING_STAGE = re.compile(r"Running stage '([^']+)'")


def _recording_progress(
    rec: Recorder, progress: Callable[[str], None] | None
) -> Callable[[str], None]:
    """The ``dvc repro`` line callback: the user's, and the record's stage from DVC's
    ``Running stage 'X'`` lines."""

    def on_line(line: str) -> None:
        match = _RUNNING_STAGE.search(line)
        if match:
            rec.stage(match.group(1))
        if progress is not None:
            progress(line)

    return on_line


def _record_config(rec: Recorder, text: str) -> None:
    """The run's frozen params (``params.yaml`` as the stages will read it) into its record."""
    doc = _load_params_text(text)
    rule = doc.get("rule")
    rule = rule if isinstance(rule, dict) else {}
    data = doc.get("data")
    data = data if isinstance(data, dict) else {}
    setup, version = rule.get("setup_id"), rule.get("version")
    rec.config(
        doc,
        preset_ref=preset_ref(doc),
        rule=rule_ref(setup, version),
        symbol=data.get("symbol"),
        timeframe=data.get("timeframe"),
    )


def _record_outcome(rec: Recorder, report: RunReport) -> None:
    """What a finished ``ita-vc run`` adds to its record."""
    snap = report.snapshot
    if report.already:
        rec.set(recorded_as=report.run_id)
        return
    metrics = snap.get("metrics") or {}
    rec.set(
        snapshot_path=report.snapshot_path,
        artifacts_manifest_sha=snap.get("artifacts_manifest_sha"),
        data_hash=snap.get("data_hash"),
        config_hash=snap.get("config_hash"),
        preset_ref=snap.get("preset_ref"),
        metrics_summary_json=canonical_json(headline_metrics(metrics)),
    )


def run_pipeline(
    workspace: Workspace,
    *,
    setup_id: str | None = None,
    version: str | None = None,
    overrides: Iterable[tuple[str, object]] = (),
    mode: str = "backtest",
    note: str | None = None,
    allow_dirty: bool = False,
    commit: bool = True,
    wait: float = 0,
    stages: Sequence[str] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    before_repro: Callable[[], None] | None = None,
) -> RunReport:
    """Run the pipeline and record it (see the module docstring). The run gets its id when
    it starts (after the workspace lock) and its record in the run log
    (:mod:`ita_vc.snapshot.records`), failed and cancelled runs included. ``before_repro``
    runs under the lock after the checks (``ita-vc jobs adopt`` places a job's outputs there).

    Raises:
        UsageError: a bad mode, stage name or wait.
        WorkspaceLockedError: another command holds the workspace.
        IndexCorruptError: the metadata index is unreadable (checked first).
        DirtyWorkspaceError: uncommitted changes without ``allow_dirty``; an uncommitted rule.
        DataValidationError: bad params or ``-S`` values; missing rule file or candles.
        RuleValidationError: an invalid rule; a live run of an inactive version.
        IntegrityError: ``dvc status`` not clean after ``dvc repro``.
        VcsError: ``dvc repro`` or ``git commit`` failed.
    """
    edits = _run_edits(mode, setup_id, version, overrides)
    if note is not None:
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"--note: not valid UTF-8 text ({note!r}); the note is stored as JSON"
            ) from None
    with (
        workspace.lock(timeout=wait, purpose=f"ita-vc run ({mode})") as lock,
        recorded_run(workspace, mode, note=note) as rec,
    ):
        opts = _RunOptions(
            mode, note, allow_dirty, commit, force, stages, _recording_progress(rec, progress)
        )
        rec.stage("preflight")
        prep = _prepare(workspace, edits, opts)
        _record_config(rec, prep.text)
        if before_repro is not None:
            before_repro()
        report = _recorded_before(workspace, prep, opts)
        if report is None:
            rec.stage("repro")
            journal, before = _reproduce(workspace, prep, edits, opts, lock.fd)
            provenance = SnapshotStore(workspace)
            report = _recorded_after(workspace, prep, opts, journal, provenance)
            if report is None:
                rec.stage("snapshot")
                report = _record(workspace, prep, opts, journal, provenance, before, rec.run_id)
                with contextlib.suppress(ItaVcError):  # the index is a cache: rebuild cures it
                    link_run(workspace, report.snapshot)
        _record_outcome(rec, report)
        return report
