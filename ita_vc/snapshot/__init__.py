"""Run Snapshot / Provenance: snapshots from dvc.lock + git, run, verify, reproduce, runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.snapshot.capture import (
        RunProvenance,
        SnapshotStore,
        environment,
        snapshot_hash,
    )
    from ita_vc.snapshot.manifest import build_manifest, load_manifest, manifest_sha
    from ita_vc.snapshot.records import Recorder, log_records, prune_records, recorded_run
    from ita_vc.snapshot.reproduce import ReproduceReport, reproduce_run
    from ita_vc.snapshot.runlog import RunLog, RunRecord
    from ita_vc.snapshot.runner import RunReport, run_pipeline
    from ita_vc.snapshot.runs import diff_runs, keep_run, list_runs, pinned_runs
    from ita_vc.snapshot.verify import VerifyReport, verify_run

_EXPORTS = {
    "Recorder": "ita_vc.snapshot.records",
    "RunLog": "ita_vc.snapshot.runlog",
    "RunRecord": "ita_vc.snapshot.runlog",
    "build_manifest": "ita_vc.snapshot.manifest",
    "load_manifest": "ita_vc.snapshot.manifest",
    "log_records": "ita_vc.snapshot.records",
    "manifest_sha": "ita_vc.snapshot.manifest",
    "prune_records": "ita_vc.snapshot.records",
    "recorded_run": "ita_vc.snapshot.records",
    "ReproduceReport": "ita_vc.snapshot.reproduce",
    "RunProvenance": "ita_vc.snapshot.capture",
    "SnapshotStore": "ita_vc.snapshot.capture",
    "RunReport": "ita_vc.snapshot.runner",
    "VerifyReport": "ita_vc.snapshot.verify",
    "diff_runs": "ita_vc.snapshot.runs",
    "environment": "ita_vc.snapshot.capture",
    "keep_run": "ita_vc.snapshot.runs",
    "list_runs": "ita_vc.snapshot.runs",
    "pinned_runs": "ita_vc.snapshot.runs",
    "reproduce_run": "ita_vc.snapshot.reproduce",
    "run_pipeline": "ita_vc.snapshot.runner",
    "snapshot_hash": "ita_vc.snapshot.capture",
    "verify_run": "ita_vc.snapshot.verify",
}

__all__ = [
    "Recorder",
    "ReproduceReport",
    "RunLog",
    "RunProvenance",
    "RunRecord",
    "RunReport",
    "SnapshotStore",
    "VerifyReport",
    "build_manifest",
    "diff_runs",
    "environment",
    "keep_run",
    "list_runs",
    "load_manifest",
    "log_records",
    "manifest_sha",
    "pinned_runs",
    "prune_records",
    "recorded_run",
    "reproduce_run",
    "run_pipeline",
    "snapshot_hash",
    "verify_run",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
