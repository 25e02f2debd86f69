"""``ita-vc worker``: claim jobs, run them on their frozen commit and data, report, finish.

One job, one attempt (:func:`run_claimed`):

1. a temporary ``git worktree`` at the request's ``git_commit`` (no hooks run; the commit is
   fetched from the git remote when this clone lacks it), the frozen params written as its
   ``params.yaml``, and the candles file linked from the DVC cache by its recorded md5
   (fetched from the DVC remote when the cache lacks it) - never the workspace's checkout;
2. the same stage code ``dvc repro`` runs (:func:`ita_vc.pipeline.stages.stage_grid`, or
   ``prepare``/``backtest``/``report``), with the job's progress, stop and checkpoint hooks -
   which change no output: the files equal the ``dvc.yaml`` stage's, byte for byte;
3. the outputs' files, the final top-K and the result stored in one transaction.

A heartbeat thread (its own connection) renews the lease every ``heartbeat_seconds`` and
learns of a cancel; progress, the checkpoint and the best-so-far top-K are written together,
at batch boundaries, at most every checkpoint interval (2 s). Every write is conditional on
the lease: a worker that lost it (paused past ``lease_seconds``) stops at the next batch
boundary and writes nothing more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from ita_vc.errors import (
    DataValidationError,
    IntegrityError,
    ItaVcError,
    JobStoreError,
    RuleValidationError,
)
from ita_vc.jobs.model import worker_name
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ita_vc.config import JobsConfig
    from ita_vc.grid.checkpoint import SearchState
    from ita_vc.jobs.store import Claim, JobStore
    from ita_vc.workspace import Workspace

__all__ = ["JobOutcome", "Worker", "open_store", "run_claimed"]

_FINAL_FAILURES = (DataValidationError, RuleValidationError, IntegrityError)
"""Errors another attempt would meet again (bad inputs, missing data): the job fails at once."""

BACKTEST_STAGES = ["prepare", "backtest", "report"]


def open_store(workspace: Workspace, *, timeout: float = 10.0) -> JobStore:
    """The workspace's job store: ``ITA_VC_JOBS_URL``, else ``url`` of the git-ignored
    ``.ita/jobs.local.yaml`` (where a URL may carry its password), else ``jobs.url`` of
    ``configs/config.yaml``, else ``.ita/jobs.sqlite``.

    Raises:
        JobStoreError: unreachable or refused. ConfigError: a bad URL or local file.
    """
    from ita_vc.errors import ConfigError
    from ita_vc.jobs.store import open_job_store
    from ita_vc.yaml_read import YamlError, load_yaml_file

    url = os.environ.get("ITA_VC_JOBS_URL") or None
    source = "ITA_VC_JOBS_URL"
    local = workspace.state_dir / "jobs.local.yaml"
    if url is None and os.path.lexists(local):
        try:
            doc = load_yaml_file(local, max_bytes=1 << 16)
        except YamlError as exc:
            raise ConfigError(str(exc)) from exc
        value = doc.get("url") if isinstance(doc, dict) else None
        if not isinstance(value, str) or set(doc) != {"url"}:
            raise ConfigError(
                f"{local}: must hold only url: postgresql://user:password@host:port/db"
            )
        url, source = value, str(local)
    if url is None:
        url, source = workspace.config.jobs.url, "configs/config.yaml: jobs.url"
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        from ita_vc.jobs.store import redact_url

        raise ConfigError(
            f"{source}: {redact_url(url)!r}: use postgresql://user@host:port/database "
            "(or nothing, for .ita/jobs.sqlite)"
        )
    default = workspace.state_dir / "jobs.sqlite"
    if url is None:
        _check_local_file(workspace, default)
    return open_job_store(url, default, timeout=timeout)


def _check_local_file(workspace: Workspace, path: Path) -> None:
    """``.ita/jobs.sqlite`` is a regular file inside the workspace (or not there yet).

    Raises:
        JobStoreError: a symlink, a folder or another kind of file.
    """
    from ita_vc.errors import JobStoreError, PersistentStoreError

    try:
        workspace.contained(path)
    except PersistentStoreError as exc:
        raise JobStoreError(str(exc)) from exc
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        raise JobStoreError(
            f"{path}: the job store must be a regular file (not a symlink or a folder); "
            "move it away to start an empty queue"
        )


@dataclass
class JobOutcome:
    """How an attempt ended: ``succeeded``, ``failed``, ``cancelled``, ``released`` (queued
    again: the worker was stopped) or ``lost`` (another worker holds the lease now)."""

    job_id: int
    state: str
    error: str | None = None


@dataclass
class _Beat:
    """The heartbeat thread's findings, read by the search's stop hook."""

    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


def _heartbeat(
    connect: Callable[[], JobStore], claim: Claim, settings: JobsConfig, beat: _Beat
) -> None:
    """Renew the lease every ``heartbeat_seconds`` until ``done`` (its own connection)."""
    store = connect()
    try:
        while not beat.done.wait(settings.heartbeat_seconds):
            try:
                ours, cancel = store.heartbeat(claim, settings.lease_seconds)
            except ItaVcError:
                continue  # the store is briefly unreachable: the lease has slack
            if cancel:
                beat.cancel.set()
            if not ours:
                beat.lost.set()
                return
    finally:
        store.close()


def _drop_log_handlers(base: Path) -> None:
    """Close the log handlers the stage code attached inside the worktree (it goes away)."""
    logger = logging.getLogger("ita_vc")
    for handler in list(logger.handlers):
        if str(getattr(handler, "baseFilename", "")).startswith(str(base)):
            logger.removeHandler(handler)
            handler.close()


@contextlib.contextmanager
def _worktree(root: Path, commit: str, job_id: int) -> Iterator[Path]:
    """A temporary worktree at ``commit`` (:func:`~ita_vc.vcs.gitcli.temporary_worktree`),
    the stage code's log handlers inside it closed before it goes."""
    with gitcli.temporary_worktree(root, commit, f"ita-vc-job-{job_id}-") as tree:
        try:
            yield tree
        finally:
            _drop_log_handlers(tree.parent)


def ensure_commit(root: Path, commit: str) -> None:
    """The job's commit in this clone: fetched from ``origin`` (branches and ``ita/keep``
    pins) when missing.

    Raises:
        IntegrityError: not a commit id, or found neither here nor on the remote.
    """

    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise IntegrityError(f"the job's git_commit {commit!r} is not a commit id")

    if gitcli.has_commit(root, commit):
        return
    gitcli.run(  # best effort, never a credential prompt: the check below says what is missing
        [
            "fetch",
            "-q",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/ita/keep/*:refs/tags/ita/keep/*",
        ],
        root,
        env={"GIT_TERMINAL_PROMPT": "0"},
    )
    if not gitcli.has_commit(root, commit):
        raise IntegrityError(
            f"the job's commit {commit[:12]} is not in this clone nor on its git remote "
            "origin: push it from the submitting clone (`ita-vc push`)"
        )


def inside(tree: Path, rel: str, field: str) -> Path:
    """``tree / rel`` for a plain relative path that stays inside the worktree.

    Raises:
        DataValidationError: absolute, ``..``, non-canonical, or through a symlink out.
    """
    pure = PurePosixPath(rel)
    if (
        not rel
        or pure.is_absolute()
        or pure.as_posix() != rel
        or any(part in ("", ".", "..") for part in pure.parts)
        or "\\" in rel
    ):
        raise DataValidationError(f"the job's {field} {rel!r} is not a path inside its workspace")
    target = tree / rel
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.resolve().is_relative_to(tree.resolve()):
        raise DataValidationError(f"the job's {field} {rel!r} leads outside its workspace")
    return target


def _link_candles(workspace: Workspace, tree: Path, data: dict[str, Any]) -> None:
    """The request's candles file into the worktree, from the DVC cache by its md5 (fetched
    from the DVC remote when missing here), checked.

    Raises:
        IntegrityError: the data hash is in neither the cache nor the remote, or the copy
            does not match it.
    """
    from ita_vc.vcs.dvc import local_objects

    md5, rel = str(data["md5"]), str(data["path"])
    target = inside(tree, rel, "data.path")
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise DataValidationError(f"the job's data.md5 {md5!r} is not a DVC md5")
    found = local_objects(workspace.root, [md5])
    if md5 not in found:
        with contextlib.suppress(ItaVcError):
            from ita_vc.vcs.remote import open_remote

            with open_remote(workspace.root) as remote:
                remote.fetch([md5])
        found = local_objects(workspace.root, [md5])
    if md5 not in found:
        raise IntegrityError(
            f"the job's candles {rel} (md5 {md5}, {data.get('sha256')}) are in neither this "
            "clone's DVC cache nor its DVC remote: push them from the submitting clone "
            "(`ita-vc push`), or `dvc pull` here"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copyfile(found[md5], target)
    from ita_vc.utils.hashing import hash_file

    sha, _size = hash_file(target)
    if sha != data.get("sha256"):
        raise IntegrityError(
            f"the cached object {md5} of {rel} hashes to {sha}, the job recorded "
            f"{data.get('sha256')}: the DVC cache is damaged (`dvc cache` check)"
        )


def _rows(frame: Any) -> list[dict[str, Any]]:
    """A top-K frame as JSON-able rows (NaN -> null)."""
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return rows


def _best_so_far(state: SearchState, limit: int) -> list[dict[str, Any]]:
    """The running top-K of a search state: Stage B's, or Stage A's shortlist before it."""
    from ita_vc.grid.request import variant_to_dict

    chosen = state.topk if state.stage in ("B", "done") and state.topk else state.shortlist
    return [
        {
            "rank": rank,
            "variant_key": r.key,
            "params_json": json.dumps(variant_to_dict(r.variant), sort_keys=True),
            "Total Return [%]": r.total_return,
            "Max. Drawdown [%]": r.max_drawdown,
            "Sharpe Ratio": r.sharpe,
            "Num. Trades": r.trades,
            "from_stage": "B" if chosen is state.topk else "A",
        }
        for rank, r in enumerate(chosen[:limit], start=1)
    ]


_STAGE_NAMES = {"A": "stage_a", "B": "stage_b", "done": "finalizing"}


class _Reporter:
    """The search hooks of one attempt: progress kept in memory each batch, and written with
    the checkpoint and the best-so-far top-K when the checkpoint writer says (throttled)."""

    def __init__(
        self,
        store: JobStore,
        claim: Claim,
        settings: JobsConfig,
        beat: _Beat,
        stop: Callable[[], bool],
    ) -> None:
        self.store = store
        self.claim = claim
        self.settings = settings
        self.beat = beat
        self.stop_requested = stop
        self.totals: dict[str, int] = {}

    def progress(self, stage: str, done: int, total: int) -> None:
        del done  # counted from the state at each save
        self.totals[stage] = total

    def save(self, document: bytes, state: SearchState) -> None:
        if state.stage == "A":
            done, total = state.evaluated_a, self.totals.get("A")
        else:
            done, total = state.evaluated_b, self.totals.get("B")
        self.answer(
            self.store.report(
                self.claim,
                stage=_STAGE_NAMES[state.stage],
                processed=done,
                total=total,
                checkpoint=document,
                topk=_best_so_far(state, self.settings.top_k_persisted_default),
            )
        )

    def answer(self, said: str) -> None:
        """What the store said to a report: a cancel asked, or the lease lost."""
        if said == "cancel":
            self.beat.cancel.set()
        elif said == "lost":
            self.beat.lost.set()

    def should_stop(self) -> bool:
        return self.beat.cancel.is_set() or self.beat.lost.is_set() or self.stop_requested()


def _write_params(tree: Path, params: dict[str, Any]) -> None:
    (tree / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), "utf-8")


def _collect(tree: Path, outs: list[str]) -> dict[str, bytes]:
    """Every file below the stage outputs, by repo-relative name (no symlinks followed)."""
    files: dict[str, bytes] = {}
    for out in outs:
        path = tree / out
        if path.is_file() and not path.is_symlink():
            files[out] = path.read_bytes()
        elif path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    files[item.relative_to(tree).as_posix()] = item.read_bytes()
    return files


def _run_grid_job(
    workspace_root: Path,
    tree: Path,
    claim: Claim,
    reporter: _Reporter,
    store: JobStore,
    options: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The grid stage's code in the worktree; (result, final top-K rows, outs)."""
    import pandas as pd

    from ita_vc.pipeline.engine_pin import pinned_engine
    from ita_vc.pipeline.stages import stage_grid
    from ita_vc.vcs.dvc import stage_paths

    engine = claim.job.request.get("engine") or pinned_engine(tree)
    saved = store.checkpoint(claim.job.id)  # a previous attempt's, stopped or lost
    if saved is not None:
        state = saved.get("state")
        state = state if isinstance(state, dict) else {}
        store.log(
            claim,
            f"resuming from the checkpoint: stage {state.get('stage')}, batch "
            f"{state.get('next_batch')}",
        )
    summary = stage_grid(
        tree,
        engine,
        features_from=workspace_root,
        search={
            "progress": reporter.progress,
            "should_stop": reporter.should_stop,
            "saved_checkpoint": saved,
            "save_state": reporter.save,
            **options,
        },
    )
    _deps, outs = stage_paths(tree, ["grid"])
    topk = pd.read_parquet(tree / outs[0] / "topk.parquet") if outs else pd.DataFrame()
    result = {"summary": summary, "stages": ["grid"], "outs": outs}
    return result, _rows(topk), outs


def _run_backtest_job(
    tree: Path, claim: Claim, reporter: _Reporter, store: JobStore
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The prepare, backtest and report stages' code in the worktree."""
    from ita_vc.pipeline.engine_pin import pinned_engine
    from ita_vc.pipeline.stages import stage_backtest, stage_prepare, stage_report
    from ita_vc.vcs.dvc import stage_paths

    engine = claim.job.request.get("engine") or pinned_engine(tree)
    steps = len(BACKTEST_STAGES)

    def step(stage: str, done: int) -> None:
        reporter.answer(store.report(claim, stage=stage, processed=done, total=steps))
        if reporter.should_stop():
            raise KeyboardInterrupt  # as the grid's search stops: between units of work

    step("preparing", 0)
    stage_prepare(tree)
    step("backtest", 1)
    summary = stage_backtest(tree, engine)
    step("finalizing", 2)
    stage_report(tree, engine)
    _deps, outs = stage_paths(tree, BACKTEST_STAGES)
    metrics_path = tree / "results" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    row = {"rank": 1, **{k: v for k, v in metrics.items() if not isinstance(v, dict | list)}}
    return {"summary": summary, "stages": BACKTEST_STAGES, "outs": outs}, [row], outs


def _attempt(
    workspace: Workspace,
    store: JobStore,
    claim: Claim,
    reporter: _Reporter,
    options: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, bytes]]:
    """Steps 1-2 of the module docstring: (result, final top-K rows, output files)."""
    from ita_vc.utils.hashing import hash_canonical

    job = claim.job
    reporter.answer(store.report(claim, stage="preparing", processed=0, total=None))
    request = job.request
    if hash_canonical(request) != job.request_hash:
        raise DataValidationError(
            f"the job's request does not hash to its request_hash {job.request_hash}: the "
            "row was changed after submission; nothing was run"
        )
    commit = str(request["git_commit"])
    ensure_commit(workspace.root, commit)
    with _worktree(workspace.root, commit, job.id) as tree:
        _write_params(tree, dict(request["params"]))
        _link_candles(workspace, tree, dict(request["data"]))
        if job.kind == "grid":
            result, topk, outs = _run_grid_job(
                workspace.root, tree, claim, reporter, store, options
            )
        else:
            result, topk, outs = _run_backtest_job(tree, claim, reporter, store)
        files = _collect(tree, outs)
    result["files"] = len(files)
    result["bytes"] = sum(len(v) for v in files.values())
    return result, topk, files


def _interrupted(store: JobStore, claim: Claim, beat: _Beat) -> JobOutcome:
    """The search stopped at a batch boundary: lease lost, cancelled, or the worker stopped
    (the job goes back to the queue, the attempt not counted)."""
    job_id = claim.job.id
    if beat.lost.is_set():
        return JobOutcome(job_id, "lost", "the lease expired: another worker has the job")
    if beat.cancel.is_set():
        ended = store.stop(claim, "cancelled", None)
        return JobOutcome(job_id, "cancelled" if ended else "lost")
    ended = store.stop(
        claim, "queued", "released: its worker was stopped (Ctrl-C or SIGTERM)", counted=False
    )
    return JobOutcome(job_id, "released" if ended else "lost")


def _failed(store: JobStore, claim: Claim, exc: Exception) -> JobOutcome:
    """A failed attempt: final for bad inputs or missing data, or when no attempt is left;
    else the job goes back to the queue."""
    message = str(exc) if isinstance(exc, ItaVcError) else f"{type(exc).__name__}: {exc}"
    final = isinstance(exc, _FINAL_FAILURES) or claim.attempt >= claim.job.max_attempts
    ended = store.stop(claim, "failed" if final else "queued", message)
    if not ended:
        return JobOutcome(claim.job.id, "lost", message)
    return JobOutcome(claim.job.id, "failed" if final else "released", message)


def run_claimed(
    workspace: Workspace,
    store: JobStore,
    claim: Claim,
    settings: JobsConfig,
    *,
    connect: Callable[[], JobStore],
    stop: Callable[[], bool] = lambda: False,
    options: dict[str, Any] | None = None,
) -> JobOutcome:
    """Run one claimed attempt (see the module docstring) and end it in the store."""
    job = claim.job
    beat = _Beat()
    pulse = threading.Thread(
        target=_heartbeat,
        args=(connect, claim, settings, beat),
        daemon=True,
        name=f"ita-vc-heartbeat-{job.id}",
    )
    pulse.start()
    reporter = _Reporter(store, claim, settings, beat, stop)
    try:
        result, topk, files = _attempt(workspace, store, claim, reporter, options or {})
        if not store.succeed(claim, result, topk, files):
            return JobOutcome(job.id, "lost", "the lease was taken over: result discarded")
        return JobOutcome(job.id, "succeeded")
    except KeyboardInterrupt:
        return _interrupted(store, claim, beat)
    except Exception as exc:  # noqa: BLE001 - every failure ends the attempt in the store
        return _failed(store, claim, exc)
    finally:
        beat.done.set()
        pulse.join(timeout=settings.heartbeat_seconds + 5)


class Worker:
    """Claims and runs jobs until told to stop (or, ``once``, after one job or none)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        settings: JobsConfig | None = None,
        options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings or workspace.config.jobs
        self.options = options or {}
        self.name = name or worker_name()
        self.stop_event = threading.Event()

    def connect(self) -> JobStore:
        """A new connection to the job store."""
        return open_store(self.workspace)

    def run(
        self,
        *,
        once: bool = False,
        on_event: Callable[[str], None] | None = None,
    ) -> list[JobOutcome]:
        """Claim and run jobs; the outcomes, in order. ``on_event`` hears each claim and end.

        Raises:
            ConfigError: jobs are turned off (``jobs.enabled: false``).
            JobStoreError: the store is unreachable.
        """
        if not self.settings.enabled:
            from ita_vc.errors import ConfigError

            raise ConfigError(
                "configs/config.yaml: jobs.enabled is false: jobs are turned off in this "
                "workspace, so this worker runs none"
            )
        outcomes: list[JobOutcome] = []
        store: JobStore | None = None
        say = on_event or (lambda _line: None)
        try:
            while not self.stop_event.is_set():
                try:
                    store = store or self.connect()
                    if not self._one(store, once, say, outcomes):
                        break
                except JobStoreError as exc:
                    if once:
                        raise
                    # a dropped connection (server restart, network): the job, if any, is
                    # reclaimed after its lease - by this worker too, once it reconnects
                    say(f"job store error: {exc}; reconnecting")
                    with contextlib.suppress(Exception):
                        if store is not None:
                            store.close()
                    store = None
                    self.stop_event.wait(max(1.0, self.settings.claim_poll_seconds))
        finally:
            if store is not None:
                store.close()
        return outcomes

    def _one(
        self, store: JobStore, once: bool, say: Callable[[str], None], outcomes: list[JobOutcome]
    ) -> bool:
        """Claim and run one job (or wait for one); False when the loop should end."""
        claim = store.claim(
            self.name,
            lease_seconds=self.settings.lease_seconds,
            max_active=self.settings.max_active_jobs,
        )
        if claim is None:
            if once:
                say(
                    "no job to run (none queued, or max_active_jobs = "
                    f"{self.settings.max_active_jobs} already running)"
                )
                return False
            self.stop_event.wait(self.settings.claim_poll_seconds)
            return True
        say(
            f"job {claim.job.id}: claimed ({claim.job.kind}, attempt "
            f"{claim.attempt}{', resuming' if claim.resumed else ''})"
        )
        started = time.perf_counter()
        outcome = run_claimed(
            self.workspace,
            store,
            claim,
            self.settings,
            connect=self.connect,
            stop=self.stop_event.is_set,
            options=self.options,
        )
        outcomes.append(outcome)
        say(
            f"job {outcome.job_id}: {outcome.state} in {time.perf_counter() - started:.1f} s"
            + (f" ({outcome.error})" if outcome.error else "")
        )
        return not once
