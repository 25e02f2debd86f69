"""What a job is: its states, its row, the ``jobs:`` settings, and job ids.

States (docs/jobs.md draws the machine)::

    queued --claim--> running --done--> succeeded
       |                 |  \\--error (attempts left)--> queued (lease released)
       |                 |  \\--error (no attempts left) / damaged request--> failed
       |                 |  \\--lease expired (worker died)--> reclaimed: running, attempt + 1
       |                 \\--cancel (at the next batch boundary)--> cancelled
       \\--cancel--> cancelled

``succeeded``, ``failed`` and ``cancelled`` are final.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from ita_vc.errors import UsageError

__all__ = [
    "FINAL_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "Job",
    "parse_job_id",
    "printable",
    "worker_name",
]

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
JOB_KINDS = ("grid", "backtest")
PROGRESS_STAGES = ("preparing", "stage_a", "stage_b", "finalizing")
"""What a running job reports as its ``stage``: ``preparing`` (worktree and data), the grid's
``stage_a`` and ``stage_b``, then ``finalizing`` (the top-K re-run and the outputs written)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the ``jobs`` table (times in epoch milliseconds)."""

    id: int
    kind: str
    state: str
    priority: int
    note: str | None
    request: dict[str, Any]
    request_hash: str
    submitted_at: int
    attempt: int
    max_attempts: int
    started_at: int | None = None
    finished_at: int | None = None
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    heartbeat_at: int | None = None
    cancel_requested: bool = False
    stage: str | None = None
    processed: int | None = None
    total: int | None = None
    progress_at: int | None = None
    last_error: str | None = None
    result: dict[str, Any] | None = None
    damaged: str | None = None
    """Why the row could not be read (a corrupted request): listed, never run."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-able data (``jobs status --json``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "priority": self.priority,
            "note": self.note,
            "request_hash": self.request_hash,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "lease_owner": self.lease_owner,
            "lease_expires_at": self.lease_expires_at,
            "heartbeat_at": self.heartbeat_at,
            "cancel_requested": self.cancel_requested,
            "stage": self.stage,
            "processed": self.processed,
            "total": self.total,
            "progress_at": self.progress_at,
            "last_error": self.last_error,
            "result": self.result,
            "damaged": self.damaged,
            "request": self.request,
        }


def parse_job_id(text: object) -> int:
    """A job id as given on the command line (``42`` or ``job-42``).

    Raises:
        UsageError: not a positive whole number.
    """
    raw = str(text).strip()
    digits = raw.removeprefix("job-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18 or int(digits) <= 0:
        raise UsageError(f"{raw!r} is not a job id (a positive whole number, e.g. 42)")
    return int(digits)


def worker_name() -> str:
    """A worker's lease owner: host, pid and a random part (unique across machines)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, CR, BEL) shown as ``?``: for
    values from the job store, which may come from anyone with a login on it."""
    return "".join(c if c.isprintable() or c == " " else "?" for c in text)
