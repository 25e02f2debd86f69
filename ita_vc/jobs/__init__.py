"""Backtest jobs: a persisted queue, workers with leases, progress, cancel and adoption.

* :mod:`~ita_vc.jobs.model` - states, the job row, job ids;
* :mod:`~ita_vc.jobs.store` - the store interface and its SQLite and PostgreSQL backends;
* :mod:`~ita_vc.jobs.request` - freezing a request (``ita-vc jobs submit``);
* :mod:`~ita_vc.jobs.worker` - claiming and running jobs (``ita-vc worker``);
* :mod:`~ita_vc.jobs.adopt` - a succeeded job into a committed run (``ita-vc jobs adopt``).

docs/jobs.md has the state machine, the runbook and both storage set-ups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.jobs.adopt import adopt_job, adoption_differences
    from ita_vc.jobs.model import FINAL_STATES, JOB_KINDS, JOB_STATES, Job, parse_job_id
    from ita_vc.jobs.request import FrozenRequest, freeze_request
    from ita_vc.jobs.store import Claim, JobStore, open_job_store
    from ita_vc.jobs.worker import JobOutcome, Worker, open_store, run_claimed

_EXPORTS = {
    "Claim": "ita_vc.jobs.store",
    "FINAL_STATES": "ita_vc.jobs.model",
    "FrozenRequest": "ita_vc.jobs.request",
    "JOB_KINDS": "ita_vc.jobs.model",
    "JOB_STATES": "ita_vc.jobs.model",
    "Job": "ita_vc.jobs.model",
    "JobOutcome": "ita_vc.jobs.worker",
    "JobStore": "ita_vc.jobs.store",
    "Worker": "ita_vc.jobs.worker",
    "adopt_job": "ita_vc.jobs.adopt",
    "adoption_differences": "ita_vc.jobs.adopt",
    "freeze_request": "ita_vc.jobs.request",
    "open_job_store": "ita_vc.jobs.store",
    "open_store": "ita_vc.jobs.worker",
    "parse_job_id": "ita_vc.jobs.model",
    "run_claimed": "ita_vc.jobs.worker",
}

__all__ = [
    "FINAL_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "Claim",
    "FrozenRequest",
    "Job",
    "JobOutcome",
    "JobStore",
    "Worker",
    "adopt_job",
    "adoption_differences",
    "freeze_request",
    "open_job_store",
    "open_store",
    "parse_job_id",
    "run_claimed",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
