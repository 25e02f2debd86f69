"""The run log: a record of every run, the failed, cancelled and killed ones included, local to
the clone.

``.ita/runs.jsonl`` is append-only: one JSON object per line, each an *event* of one run
(``start``, ``stage``, ``progress``, ``heartbeat``, ``end``), written with ``O_APPEND``, under an
exclusive lock on the file and fsynced, so concurrent runs never interleave a line and a
crash loses at most the line being written (a torn last line is skipped when reading). A run's
record is the fold of its events, in order (:func:`fold`). Committed runs keep their durable
record in their snapshot; this log is what makes failures and runs outside the pipeline
visible (``runs list --status failed``); it is documented as not versioned.

Statuses: ``running`` until an ``end`` event gives ``completed``, ``failed`` (with the error's
exit code and message) or ``cancelled`` (Ctrl-C). A ``running`` record whose last heartbeat is
older than :data:`STALE_SECONDS` and whose process is gone reads as ``abandoned`` (a SIGKILL or
a machine that went off): it never blocks a later run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ita_vc.errors import EXIT_INTERRUPTED, ItaVcError
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import canonical_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path

__all__ = [
    "FLOWS",
    "HEARTBEAT_SECONDS",
    "LOG_NAME",
    "STALE_SECONDS",
    "RunLog",
    "RunRecord",
    "fold",
]

LOG_NAME = "runs.jsonl"
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 30.0
FLOWS = ("backtest", "grid", "validate", "live", "train")
#: the log and its lock are never opened through a symlink (one planted in .ita/ would make
#: every run append outside the workspace)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MAX_LINE = 1 << 20
"""A line longer than this (1 MiB) is not a record (skipped when read, refused when written)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), None if it does not exist."""
    import psutil  # lazy: only the run log's liveness checks need it

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:
        return -1.0  # exists, not ours to inspect


def _pid_alive(pid: object, started: object = None) -> bool:
    """Whether the run's process still runs: ``pid`` exists and, when the record has its
    start time, is the same process (a pid reused after a reboot is not the run)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    now_started = _started(pid)
    if now_started is None:
        return False
    if isinstance(started, int | float) and now_started >= 0:
        return abs(now_started - float(started)) < 1.0
    return True


@dataclass
class RunRecord:
    """One run, folded from its events (seed 004's ``runs`` fields; times in epoch ms)."""

    run_id: str
    flow: str = "backtest"
    status: str = "running"
    stage: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    started_at: int | None = None
    completed_at: int | None = None
    heartbeat_at: int | None = None
    pid: int | None = None
    #: the process's start time (epoch seconds): a reused pid is not the run's process
    pid_started: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    config_hash: str | None = None
    config_json: str | None = None
    seed: int | None = None
    rule: str | None = None
    data_hash: str | None = None
    git_commit: str | None = None
    metrics_summary_json: str | None = None
    artifacts_manifest_sha: str | None = None
    preset_ref: dict[str, Any] | None = None
    symbol: str | None = None
    timeframe: str | None = None
    note: str | None = None
    #: the snapshot of a committed ``ita-vc run`` (``provenance/<run_id>.json``)
    snapshot_path: str | None = None
    #: a run whose inputs equal an already recorded run: that run's id (nothing new recorded)
    recorded_as: str | None = None
    #: the manifest of a run that commits nothing (``.ita/manifests/<run_id>.manifest.json``)
    manifest_path: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)

    def effective_status(self, now_ms: int | None = None) -> str:
        """``abandoned`` for a ``running`` record whose heartbeat is stale and whose process is
        gone; else the recorded status."""
        if self.status != "running":
            return self.status
        now = _now_ms() if now_ms is None else now_ms
        beat = self.heartbeat_at or self.updated_at or self.created_at or 0
        if now - beat > STALE_SECONDS * 1000 and not _pid_alive(self.pid, self.pid_started):
            return "abandoned"
        return "running"

    def to_dict(self, now_ms: int | None = None) -> dict[str, Any]:
        """The record as JSON, with ``status`` as :meth:`effective_status` reads it."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["status"] = self.effective_status(now_ms)
        return out


_FIELDS = set(RunRecord.__dataclass_fields__) - {"run_id", "progress"}


def fold(events: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]) -> dict[str, RunRecord]:
    """Each run's record from the log's events, in log order (unknown keys are ignored, so a
    newer ita-vc's lines read)."""
    records: dict[str, RunRecord] = {}
    for event in events:
        run_id = event.get("run_id")
        if not isinstance(run_id, str):
            continue
        record = records.setdefault(run_id, RunRecord(run_id))
        ts = event.get("ts")
        kind = event.get("event")
        for key, value in event.items():
            if key in _FIELDS:
                setattr(record, key, value)
        if isinstance(ts, int):
            record.updated_at = ts
            if kind == "start":
                record.created_at = record.created_at or ts
                record.started_at = ts
                record.heartbeat_at = ts
            elif kind == "heartbeat":
                record.heartbeat_at = ts
            elif kind == "end":
                record.completed_at = ts
        if kind == "progress" and isinstance(event.get("progress"), dict):
            record.progress = {**event["progress"], "updated_at": ts}
        elif kind == "record" and isinstance(event.get("progress"), dict):
            record.progress = dict(event["progress"])  # a compacted run: fields set above
    return records


def _record_event(record: RunRecord) -> dict[str, Any]:
    """A folded record as one ``record`` event (what :meth:`RunLog.compact` writes)."""
    return {k: v for k, v in asdict(record).items() if v is not None and v != {}}


class RunLog:
    """The run log of a workspace's state folder (``.ita/runs.jsonl``)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOG_NAME
        self.lock_path = state_dir / f"{LOG_NAME}.lock"

    def append(self, event: Mapping[str, Any]) -> None:
        """Append one event (with ``ts`` now when it has none): one line, locked, fsynced.

        Raises:
            ItaVcError: the line is too long, or the log cannot be written.
        """
        line = canonical_json({"ts": _now_ms(), **event}) + "\n"
        data = line.encode("utf-8", "backslashreplace")  # lone surrogates from bad bytes
        if len(data) > _MAX_LINE:
            raise ItaVcError(f"{self.path}: a run log event of {len(data):,} bytes is too long")
        try:
            with self._locked():
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise ItaVcError(f"{self.path}: cannot write the run log: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The log's lock (a file of its own, so :meth:`compact` can replace the log)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def compact(
        self, keep_newest: int | None, protect: Iterable[str] = (), *, dry_run: bool = False
    ) -> list[str]:
        """Retention of records: keep the records of the newest ``keep_newest`` completed runs
        and of the newest ``keep_newest`` others (failed, cancelled, abandoned: failures stay
        visible without crowding out completed runs), every live ``running`` record and every
        run in ``protect`` (pinned runs); the log is rewritten with one folded line per kept
        run. Returns the dropped run ids (None keeps everything; ``dry_run`` writes nothing).

        Raises:
            ItaVcError: the log cannot be rewritten (it is left as it was).
        """
        if keep_newest is None:
            return []
        try:
            with self._locked():
                records = self.records()
                ordered = sorted(
                    records.values(), key=lambda r: (r.created_at or 0, r.run_id), reverse=True
                )
                statuses = {r.run_id: r.effective_status() for r in ordered}
                done = [r.run_id for r in ordered if statuses[r.run_id] == "completed"]
                other = [
                    r.run_id for r in ordered if statuses[r.run_id] not in ("completed", "running")
                ]
                keep = set(done[:keep_newest]) | set(other[:keep_newest]) | set(protect)
                keep |= {run_id for run_id, status in statuses.items() if status == "running"}
                dropped = [r.run_id for r in ordered if r.run_id not in keep]
                if not dropped or dry_run:
                    return sorted(dropped)
                lines = [
                    canonical_json({"event": "record", **_record_event(r)}) + "\n"
                    for r in reversed(ordered)
                    if r.run_id in keep
                ]
                atomic_write_bytes(self.path, "".join(lines).encode("utf-8", "backslashreplace"))
        except OSError as exc:
            raise ItaVcError(f"{self.path}: cannot compact the run log: {exc}") from exc
        return sorted(dropped)

    def events(self) -> Iterator[dict[str, Any]]:
        """The log's events in order; a torn or foreign line is skipped."""
        try:
            handle = os.fdopen(os.open(self.path, os.O_RDONLY | _NOFOLLOW), "rb")
        except FileNotFoundError:
            return
        except OSError as exc:  # a symlink planted in its place (ELOOP): not our log
            raise ItaVcError(f"{self.path}: cannot read the run log: {exc}") from exc
        with handle:
            for raw in handle:
                if len(raw) > _MAX_LINE or not raw.endswith(b"\n"):
                    continue  # a torn last line (a crash mid-write) or junk
                try:
                    event = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(event, dict):
                    yield event

    def records(self) -> dict[str, RunRecord]:
        """Every run's record, by run id."""
        return fold(self.events())

    @contextlib.contextmanager
    def recording(
        self,
        run_id: str,
        flow: str,
        *,
        fields: Mapping[str, Any] | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> Iterator[Callable[..., None]]:
        """Record a run around a block: ``start`` now, a heartbeat every ``heartbeat`` seconds
        from a daemon thread, and ``end`` with ``completed``, ``failed`` (the error's exit code
        and message) or ``cancelled`` (KeyboardInterrupt). Yields ``update(**fields)`` (e.g.
        ``stage=...``, ``progress={...}``, ``metrics_summary_json=...``) for the block;
        ``update(end_as=(status, code, message))`` sets the outcome of a block that ends
        normally (a search stopped by Ctrl-C that wrote its partial results: cancelled).

        Raises:
            ValueError: an unknown flow.
        """
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r} (known: {', '.join(FLOWS)})")
        self.append({"event": "start", "run_id": run_id, "flow": flow, "status": "running",
                     "pid": os.getpid(), "pid_started": _started(os.getpid()),
                     **dict(fields or {})})  # fmt: skip
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(heartbeat):
                with contextlib.suppress(ItaVcError):
                    self.append({"event": "heartbeat", "run_id": run_id})

        thread = threading.Thread(target=beat, name=f"heartbeat {run_id}", daemon=True)
        thread.start()

        ending: list[tuple[str, int | None, str | None]] = []

        def update(**values: Any) -> None:
            if "end_as" in values:  # the block's own outcome (e.g. a grid stopped by Ctrl-C)
                ending[:] = [values.pop("end_as")]
            if not values:
                return
            kind = "progress" if "progress" in values else "stage"
            with contextlib.suppress(ItaVcError):  # a full disk must not fail the run itself
                self.append({"event": kind, "run_id": run_id, **values})

        try:
            yield update
        except KeyboardInterrupt:
            self._end(run_id, "cancelled", EXIT_INTERRUPTED, "interrupted (Ctrl-C)")
            raise
        except ItaVcError as exc:
            self._end(run_id, "failed", exc.exit_code, str(exc))
            raise
        except BaseException as exc:
            self._end(run_id, "failed", 3, f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._end(run_id, *(ending[0] if ending else ("completed", None, None)))
        finally:
            stop.set()
            thread.join(timeout=heartbeat + 1)

    def _end(self, run_id: str, status: str, code: int | None, message: str | None) -> None:
        with contextlib.suppress(ItaVcError):  # the run's own outcome wins over the log's
            self.append(
                {
                    "event": "end",
                    "run_id": run_id,
                    "status": status,
                    "error_code": code,
                    "error_message": message,
                }
            )
