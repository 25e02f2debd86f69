"""Run records of every flow: one place that gives a run its id and keeps its record in the run
log while it runs (:mod:`ita_vc.snapshot.runlog`).

``ita-vc run`` (``bt_``/``lv_``/``tr_``), ``backtest run`` (``bt_``), ``grid run`` (``gr_``) and
``validate`` (``va_``) each run inside :func:`recorded_run`: the id is allocated from the
clone's counter, a ``start`` event is written with the git commit, then the stage, progress
(at most one event a second) and the fields the run learns (rule, data hash, config) as it goes,
and an ``end`` event with the outcome. A run that commits nothing gets its manifest under
``.ita/manifests/`` (local like the log); a committed run's manifest is committed next to its
snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import socket
import time
from typing import TYPE_CHECKING, Any

from ita_vc.errors import EXIT_INTERRUPTED, ItaVcError
from ita_vc.snapshot.capture import next_run_id
from ita_vc.snapshot.manifest import (
    MANIFEST_SUFFIX,
    build_manifest,
    check_manifest,
    manifest_sha,
)
from ita_vc.snapshot.runlog import RunLog, RunRecord
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import canonical_json
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path

    from ita_vc.workspace import Workspace

__all__ = [
    "PROGRESS_INTERVAL_S",
    "Recorder",
    "headline_metrics",
    "local_manifest_files",
    "log_records",
    "prune_records",
    "record_validation",
    "recorded_run",
    "rule_ref",
]

#: progress events are written at most this often (the first and the last always)
PROGRESS_INTERVAL_S = 1.0


class Recorder:
    """The handle a running flow updates its record through."""

    def __init__(self, workspace: Workspace, run_id: str, update: Callable[..., None]) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self._update = update
        self._stage: str | None = None
        self._last_progress = 0.0

    def stage(self, name: str) -> None:
        """The run entered stage ``name`` (written once per change)."""
        if name != self._stage:
            self._stage = name
            self._update(stage=name)

    def progress(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` units of ``stage`` (throttled to one event a second)."""
        now = time.monotonic()
        final = total > 0 and done >= total
        if stage == self._stage and not final and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self._stage = stage
        ratio = min(1.0, done / total) if total > 0 else 0.0
        self._update(
            stage=stage, progress={"stage": stage, "done": done, "total": total, "ratio": ratio}
        )

    def set(self, **fields: Any) -> None:
        """Record fields the run learnt (``rule``, ``data_hash``, ``config_json``, ...)."""
        if fields:
            self._update(**fields)

    def config(self, config: Mapping[str, Any], **fields: Any) -> None:
        """Record the run's canonical frozen config (and its ``seed`` when it has one)."""
        validation = config.get("validation")
        seed = validation.get("seed") if isinstance(validation, dict) else None
        self.set(
            config_json=canonical_json(config),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            **fields,
        )

    def summary(self, summary: Mapping[str, Any], **fields: Any) -> None:
        """Record what a backtest's ``summary.json`` (or a validation summary) says about the
        run: its rule, symbol, timeframe, data hash and config hash."""
        self.set(
            rule=rule_ref(summary.get("setup_id"), summary.get("rule_version")),
            symbol=summary.get("symbol"),
            timeframe=summary.get("timeframe"),
            data_hash=summary.get("data_hash"),
            config_hash=summary.get("config_hash"),
            **fields,
        )

    def cancelled(self, message: str) -> None:
        """The run stops normally but was cancelled (Ctrl-C after which partial results were
        written): its record ends ``cancelled`` with exit code 130."""
        self._update(end_as=("cancelled", EXIT_INTERRUPTED, message))

    def finish(
        self,
        outputs: Iterable[str | Path],
        metrics: Mapping[str, Any] | None = None,
    ) -> str:
        """The run wrote ``outputs`` (files or folders) and nothing is committed: its manifest
        goes to ``.ita/manifests/<run_id>.manifest.json`` and its sha and the metrics into the
        record. Returns the manifest's sha."""
        manifest = build_manifest(self.workspace, self.run_id, outputs)
        sha = manifest_sha(manifest)
        target = self.workspace.contained(
            self.workspace.state_dir / "manifests" / f"{self.run_id}{MANIFEST_SUFFIX}",
            follow=True,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, (canonical_json(manifest) + "\n").encode("utf-8"))
        self.set(
            artifacts_manifest_sha=sha,
            manifest_path=self.workspace.relpath(target),
            metrics_summary_json=canonical_json(headline_metrics(metrics)) if metrics else None,
        )
        return sha


def rule_ref(setup_id: object, version: object) -> str | None:
    """``SETUP@vX.Y`` as records and ``runs list --rule`` name a rule version (None when
    either part is missing); the version with or without its ``v``."""
    if not setup_id or not version:
        return None
    return f"{setup_id}@v{str(version).lstrip('v')}"


def record_validation(
    rec: Recorder, summary: Mapping[str, Any], outputs: Iterable[str | Path]
) -> None:
    """What ``ita-vc validate`` adds to its record: the run's rule, data, config and seed,
    the headline numbers (p-value, DSR, PBO) and the manifest of what it wrote."""
    from ita_vc.validation.verdict import headline_values  # lazy: the validation package

    rec.summary(summary, seed=summary.get("seed"))
    rec.finish(outputs, headline_values(summary))


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics a record keeps: numbers and strings (JSON-safe), NaN as null."""
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or value is None or isinstance(value, str | int):
            kept[str(key)] = value
        elif isinstance(value, float):
            kept[str(key)] = value if math.isfinite(value) else None
    return kept


@contextlib.contextmanager
def recorded_run(workspace: Workspace, flow: str, **fields: Any) -> Iterator[Recorder]:
    """Run a block as run ``<flow prefix>_...`` with its record in the run log (see the module
    docstring). The block's exception ends the record ``failed`` (``cancelled`` for Ctrl-C)
    and is re-raised.

    Raises:
        ItaVcError: the run log cannot be written (nothing ran).
    """
    root = workspace.root
    commit = gitcli.head(root)
    identity = f"{gitcli.config_value(root, 'user.email')}|{socket.gethostname()}|{commit}"
    run_id = next_run_id(workspace, flow, dt.datetime.now(dt.UTC), identity)
    log = RunLog(workspace.state_dir)
    with log.recording(run_id, flow, fields={"git_commit": commit, **fields}) as update:
        yield Recorder(workspace, run_id, update)


def prune_records(
    workspace: Workspace,
    max_runs: int | None,
    protect: Iterable[str] = (),
    *,
    dry_run: bool = False,
) -> list[str]:
    """Retention of run records (``max_runs`` of ``configs/retention.yaml``, seed 004's "keep
    the newest N completed runs"): the run log keeps the records of the newest ``max_runs``
    completed runs and of the newest ``max_runs`` failed/cancelled/abandoned ones, every live
    running one and the ``protect``-ed (pinned) ones; the dropped runs' local manifests
    (``.ita/manifests/``) go with them. Committed snapshots are git's: never touched. Returns
    the dropped run ids (``dry_run``: what would be dropped, nothing changed).

    Raises:
        ItaVcError: the log cannot be rewritten (left as it was).
    """
    dropped = RunLog(workspace.state_dir).compact(max_runs, protect, dry_run=dry_run)
    if dry_run:
        return dropped
    folder = workspace.state_dir / "manifests"
    for run_id in dropped:
        (folder / f"{run_id}{MANIFEST_SUFFIX}").unlink(missing_ok=True)
    return dropped


def local_manifest_files(workspace: Workspace, record: RunRecord) -> list[dict[str, Any]]:
    """The files of a run that committed nothing, from its local manifest when it still
    hashes to the record's ``artifacts_manifest_sha`` (else none: it was edited or lost)."""
    if not record.manifest_path:
        return []
    try:
        path = workspace.contained(record.manifest_path)
        manifest = check_manifest(
            json.loads(path.read_text("utf-8")), record.run_id, record.manifest_path
        )
    except (ItaVcError, OSError, ValueError):
        return []
    if manifest_sha(manifest) != record.artifacts_manifest_sha:
        return []
    return [
        {**entry, "run_id": record.run_id, "source": "manifest (local)"}
        for entry in manifest["files"]
    ]


def log_records(workspace: Workspace) -> dict[str, RunRecord]:
    """Every record of the clone's run log, by run id."""
    return RunLog(workspace.state_dir).records()
