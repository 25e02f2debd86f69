"""The runs registry: list, show, diff and pin recorded runs.

Snapshot files (git) are the source of truth; the index's ``runs`` table is a cache kept in
step with them. Pins are git tags ``ita/keep/<run_id>`` on the commit that recorded the run:
durable, shared with ``git push --tags``, and seen by a plain ``dvc gc -T`` as well.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from ita_vc.backtest.metrics import METRIC_NAMES
from ita_vc.errors import ItaVcError, UsageError
from ita_vc.snapshot.capture import SnapshotStore, check_run_id, run_row
from ita_vc.snapshot.history import recorded_runs
from ita_vc.snapshot.records import log_records
from ita_vc.snapshot.summary import DiffRow, run_diff
from ita_vc.validation.verdict import headline_values
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ita_vc.snapshot.runlog import RunRecord
    from ita_vc.workspace import Workspace

__all__ = [
    "KEEP_TAG_PREFIX",
    "METRIC_ALIASES",
    "STATUSES",
    "DiffRow",
    "diff_runs",
    "keep_run",
    "list_runs",
    "log_entry",
    "parse_since",
    "pinned_runs",
    "record_lines",
    "resolve_metric",
    "resolve_run_id",
    "sync_runs",
]

KEEP_TAG_PREFIX = "ita/keep/"

METRIC_ALIASES: dict[str, str] = {
    "return": "Total Return [%]",
    "returns": "Total Return [%]",
    "total_return": "Total Return [%]",
    "ret": "Total Return [%]",
    "profit": "Total Profit",
    "pnl": "Total Profit",
    "dd": "Max. Drawdown [%]",
    "drawdown": "Max. Drawdown [%]",
    "maxdd": "Max. Drawdown [%]",
    "max_dd": "Max. Drawdown [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "calmar": "Calmar Ratio",
    "trades": "Num. Trades",
    "winrate": "Win Rate [%]",
    "win_rate": "Win Rate [%]",
    "win": "Win Rate [%]",
    "exposure": "Gross Exposure",
    "coverage": "Position Coverage [%]",
    "benchmark": "Benchmark Return [%]",
    "expectancy": "Expectancy",
    "sqn": "SQN",
}
"""Short names ``runs list --sort`` accepts (besides every metric name, in any case)."""
STATUSES = ("running", "completed", "failed", "cancelled", "abandoned")
"""The statuses ``runs list --status`` filters on (``abandoned``: a ``running`` record whose
heartbeat is stale and whose process is gone)."""
VALIDATION_COLUMNS = ("p_value", "dsr", "pbo")
"""The validation numbers ``runs list`` shows and sorts by (p_value and pbo ascending: smaller
is better; dsr descending), from a run's recorded validation summary."""


def _squash(name: str) -> str:
    """``Total Return [%]`` -> ``totalreturn``: letters and digits, lower case."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_metric(name: str, available: Iterable[str] = METRIC_NAMES) -> str:
    """The metric ``name`` means: an exact name, a name in any case or spacing (``sharpe ratio``,
    ``total_return``) or an alias of :data:`METRIC_ALIASES` (``sharpe``, ``dd``, ``return``).

    Raises:
        UsageError: no metric of that name (the valid names and aliases are listed).
    """
    names = list(dict.fromkeys(available))
    if name in names:
        return name
    squashed = _squash(name)
    by_squash = {_squash(n): n for n in names}
    aliases = {_squash(k): v for k, v in METRIC_ALIASES.items() if v in names}
    found = by_squash.get(squashed) or aliases.get(squashed)
    if found and squashed:
        return found
    raise UsageError(
        f"unknown metric {name!r} to sort by; metrics: {', '.join(names)}; aliases: "
        + ", ".join(sorted(k for k, v in METRIC_ALIASES.items() if v in names))
    )


def parse_since(text: str) -> str:
    """``--since`` as an ISO UTC timestamp (``2025-11-10`` or ``2025-11-10T08:00[:00][Z]``)
    to compare with a run's recorded time.

    Raises:
        UsageError: not a date.
    """
    raw = text.strip()
    try:
        when = dt.datetime.fromisoformat(raw.removesuffix("Z").removesuffix("z"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is not a date: give YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC)"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


_LATEST = re.compile(r"@latest(?:~(\d+))?")


def resolve_run_id(workspace: Workspace, ref: str, extra: Iterable[str] = ()) -> str:
    """The run id ``ref`` names: a full id, a unique prefix of one (``bt_2025_11_10_00``),
    ``@latest`` (the newest run recorded in this checkout) or ``@latest~N`` (N runs before it).

    A full, well-formed id is returned as it is (it may name a run of another branch).
    ``extra``: more run ids a prefix may name (the run log's, for ``runs show``).

    Raises:
        UsageError: no run matches, the prefix is ambiguous (the candidates are named), or
            ``@latest~N`` goes past the oldest run.
    """
    ids = SnapshotStore(workspace).run_ids()  # oldest first
    latest = _LATEST.fullmatch(ref.strip())
    if latest:
        back = int(latest.group(1) or 0)
        if back >= len(ids):
            raise UsageError(
                f"{ref}: only {len(ids)} run(s) are recorded in this checkout"
                if ids
                else f"{ref}: no run is recorded in this checkout yet"
            )
        return ids[-1 - back]
    if ref in ids:
        return ref
    known = list(dict.fromkeys([*ids, *extra]))
    matches = [run_id for run_id in known if run_id.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (
            f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        )
        raise UsageError(f"run id prefix {ref!r} is ambiguous: {shown}")
    try:
        return check_run_id(ref)
    except UsageError:
        raise UsageError(
            f"not a run id: {ref!r} (no recorded run starts with it): give a run id, a unique "
            "prefix of one, @latest or @latest~N (`ita-vc runs list` shows them)"
        ) from None


def sync_runs(workspace: Workspace) -> list[dict[str, Any]]:
    """Index rows for every snapshot file (missing ones are added), oldest first."""
    provenance = SnapshotStore(workspace)
    indexed = {row["run_id"]: row for row in provenance.store.index.runs()}
    rows = []
    for run_id in provenance.run_ids():
        row = indexed.get(run_id)
        if row is None:
            row = run_row(provenance.load_snapshot(run_id), provenance.snapshot_relpath(run_id))
            provenance.store.index.upsert_run(row)
        rows.append(row)
    return rows


def _matches(
    snapshot: dict[str, Any],
    *,
    setup_id: str | None,
    symbol: str | None,
    since: str | None,
    note: str | None,
) -> bool:
    """Whether a run passes the ``runs list`` filters."""
    if setup_id and str(snapshot.get("setup_id") or "").lower() != setup_id.lower():
        return False
    if symbol and str(snapshot.get("symbol") or "").lower() != symbol.lower():
        return False
    if since and str(snapshot.get("timestamp") or "") < since:
        return False
    text = str((snapshot.get("meta") or {}).get("note") or "")
    return not note or note.lower() in text.lower()


def _iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_rule(rule: str | None) -> tuple[str | None, str | None]:
    if not rule or "@" not in rule:
        return rule, None
    setup, version = rule.rsplit("@", 1)
    return setup, version


def log_entry(record: RunRecord) -> dict[str, Any]:
    """A run-log record as a ``runs list`` row (failed, cancelled, running and abandoned runs,
    and completed runs that commit nothing: ``grid run``, ``validate``, ``backtest run``)."""
    setup, version = _split_rule(record.rule)
    try:
        metrics = json.loads(record.metrics_summary_json or "{}")
    except ValueError:
        metrics = {}
    return {
        "run_id": record.run_id,
        "status": record.effective_status(),
        "flow": record.flow,
        "stage": record.stage,
        "created_at": _iso_ms(record.created_at),
        "updated_at": _iso_ms(record.updated_at),
        "setup_id": setup,
        "rule_version": version,
        "config_hash": record.config_hash,
        "git_commit": record.git_commit,
        "run_mode": record.flow,
        "snapshot_path": None,
        "snapshot_sha256": None,
        "metrics": metrics if isinstance(metrics, dict) else {},
        "kept": False,
        "symbol": record.symbol,
        "timeframe": record.timeframe,
        "note": record.note,
        "validation": headline_values(None),
        "error_code": record.error_code,
        "error_message": record.error_message,
        "data_hash": record.data_hash,
    }


def _log_rows(workspace: Workspace, committed: set[str]) -> list[dict[str, Any]]:
    """The run log's records that no snapshot in this checkout stands for."""
    rows = []
    for record in log_records(workspace).values():
        if record.run_id in committed or record.recorded_as or record.snapshot_path:
            continue  # the snapshot is the record (or the run was an already recorded one)
        rows.append(log_entry(record))
    return rows


def _ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "-"
    return f"{_iso_ms(ms)} ({max(0, now_ms - ms) // 1000:,} s ago)"


def record_lines(record: RunRecord, now_ms: int | None = None) -> list[tuple[str, str]]:
    """``runs show`` of a run known only to the run log (running, failed, cancelled, abandoned,
    or a run that commits nothing): label and value lines, ``run_progress`` included."""
    now = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    status = record.effective_status(now)
    lines = [("run", f"{record.run_id} ({record.flow})"), ("status", status)]
    if status == "abandoned":
        lines.append(
            (
                "",
                f"no heartbeat for {(now - (record.heartbeat_at or 0)) // 1000:,} s and process "
                f"{record.pid} is gone (killed, or its machine went off): it holds nothing",
            )
        )
    lines.append(("stage", record.stage or "-"))
    progress = record.progress
    if progress:
        done, total = progress.get("done"), progress.get("total")
        ratio = progress.get("ratio")
        share = f" ({ratio * 100:.1f} %)" if isinstance(ratio, int | float) else ""
        lines.append(
            (
                "progress",
                f"{progress.get('stage')}: {done:,} / {total:,}{share}, "
                f"updated {_ago(progress.get('updated_at'), now)}"
                if isinstance(done, int) and isinstance(total, int)
                else str(progress),
            )
        )
    lines += [
        ("created", _ago(record.created_at, now)),
        ("updated", _ago(record.updated_at, now)),
        ("heartbeat", _ago(record.heartbeat_at, now)),
    ]
    if record.completed_at is not None:
        lines.append(("ended", _ago(record.completed_at, now)))
    if record.error_code is not None or record.error_message:
        lines.append(("error", f"exit {record.error_code}: {record.error_message}"))
    for label, value in (
        ("rule", record.rule),
        ("data", " ".join(str(v) for v in (record.symbol, record.timeframe) if v) or None),
        ("data_hash", record.data_hash),
        ("config_hash", record.config_hash),
        ("seed", record.seed),
        ("git commit", record.git_commit),
        ("preset", record.preset_ref),
        ("manifest", record.manifest_path or record.artifacts_manifest_sha),
        ("note", record.note),
    ):
        if value is not None:
            lines.append((label, str(value)))
    if record.metrics_summary_json:
        lines.append(("metrics", record.metrics_summary_json))
    lines.append(("", "a record of this clone's run log (.ita/runs.jsonl): local, not versioned"))
    return lines


def _check_status(status: str | None) -> str | None:
    if status is None:
        return None
    wanted = status.strip().lower()
    if wanted not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
    return wanted


def list_runs(
    workspace: Workspace,
    *,
    setup_id: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    symbol: str | None = None,
    since: str | None = None,
    note: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Runs (newest first, or by a metric descending), with their key metrics and pin state.

    Committed runs come from their snapshots (``status`` completed); the clone's run log
    (:mod:`ita_vc.snapshot.runlog`) adds the failed, cancelled, running and abandoned runs and
    the completed runs that commit nothing (``flow`` grid, validate; ``backtest run``), each
    with its ``stage``, ``error_code`` and ``error_message``. ``status`` keeps one status.

    ``sort`` takes a metric name in any case or an alias (:func:`resolve_metric`); the filters
    keep the runs of one setup, one symbol (any case), recorded at or after ``since``
    (:func:`parse_since`) or whose note contains ``note`` (any case). Each row also has the
    run's ``symbol``, ``timeframe`` and ``note``, and ``sort_metric`` (the resolved name).

    Raises:
        UsageError: an unknown sort metric (the valid ones are listed), a bad ``since``, an
            unknown status or a limit below 1.
    """
    wanted = _check_status(status)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a whole number >= 1, got {limit!r}")
    metric = (
        resolve_metric(sort, (*METRIC_NAMES, *VALIDATION_COLUMNS)) if sort is not None else None
    )
    after = parse_since(since) if since is not None else None
    pins = pinned_runs(workspace)
    provenance = SnapshotStore(workspace)
    rows = []
    for row in sync_runs(workspace):
        snapshot = provenance.load_snapshot(row["run_id"])
        if not _matches(snapshot, setup_id=setup_id, symbol=symbol, since=after, note=note):
            continue
        entry = {k: v for k, v in row.items() if k != "metrics_json"}  # JSON in JSON: no
        entry["metrics"] = json.loads(row["metrics_json"])
        entry["kept"] = row["run_id"] in pins
        entry["symbol"] = snapshot.get("symbol")
        entry["timeframe"] = snapshot.get("timeframe")
        entry["note"] = (snapshot.get("meta") or {}).get("note")
        entry["validation"] = headline_values(snapshot.get("validation"))
        entry["status"] = "completed"
        entry["flow"] = entry.get("run_mode") or "backtest"
        entry["stage"] = None
        entry["error_code"] = entry["error_message"] = None
        entry["data_hash"] = snapshot.get("data_hash")
        if metric in VALIDATION_COLUMNS:
            entry["metrics"][metric] = entry["validation"][metric]
            entry["sort_metric"] = metric
        elif metric is not None:
            entry["metrics"][metric] = (snapshot.get("metrics") or {}).get(metric)
            entry["sort_metric"] = metric
        rows.append(entry)
    committed = {row["run_id"] for row in rows} | set(provenance.run_ids())
    for entry in _log_rows(workspace, committed):
        like = {
            "setup_id": entry["setup_id"],
            "symbol": entry["symbol"],
            "timestamp": entry["created_at"],
            "meta": {"note": entry["note"]},
        }
        if _matches(like, setup_id=setup_id, symbol=symbol, since=after, note=note):
            if metric is not None:
                value = entry["metrics"].get(metric) if metric not in VALIDATION_COLUMNS else None
                entry["metrics"][metric] = value
                entry["sort_metric"] = metric
            rows.append(entry)
    if wanted is not None:
        rows = [r for r in rows if r["status"] == wanted]
    if metric is not None:
        sign = 1 if metric in ("p_value", "pbo") else -1  # smaller p and PBO are better

        def order(entry: dict[str, Any]) -> tuple[bool, float]:
            value = entry["metrics"][metric]
            number = value if isinstance(value, int | float) else None
            return number is None, sign * (number or 0)

        rows.sort(key=order)
    else:
        rows.sort(key=lambda r: (str(r.get("created_at") or ""), r["run_id"]), reverse=True)
    return rows[:limit] if limit else rows


def diff_runs(workspace: Workspace, a: str, b: str) -> list[DiffRow]:
    """What differs between two runs (rule parameters, execution, params, data, code, metrics
    with delta and percent change, package versions): the rows of
    :func:`ita_vc.snapshot.summary.run_diff`."""
    return list(run_diff(workspace, a, b).rows)


def pinned_runs(workspace: Workspace) -> dict[str, str]:
    """``{run_id: reason}`` of every ``ita/keep/<run_id>`` tag."""
    raw = gitcli.git(
        [
            "for-each-ref",
            f"refs/tags/{KEEP_TAG_PREFIX}",
            "--format=%(refname:strip=4)%09%(contents:subject)",
        ],
        workspace.root,
    )
    pins = {}
    for line in raw.decode().splitlines():
        run_id, _, reason = line.partition("\t")
        if run_id:
            pins[run_id] = reason
    return pins


def keep_run(
    workspace: Workspace, run_id: str, reason: str | None = None, *, wait: float = 0
) -> str:
    """Pin a run: an annotated tag ``ita/keep/<run_id>`` on the commit that recorded it (on
    whichever branch or tag it is), under the workspace lock.

    Raises:
        UsageError: a malformed run id.
        ItaVcError: no such run on any ref, or its snapshot is not committed yet.
        WorkspaceLockedError: another command holds the workspace.
    """
    check_run_id(run_id)
    with workspace.lock(timeout=wait, purpose=f"ita-vc runs keep {run_id}"):
        recorded = recorded_runs(workspace).get(run_id)
        if recorded is None:
            raise ItaVcError(
                f"no run {run_id}: no snapshot of it is committed on any branch or "
                "tag, nor in the working tree"
            )
        if not recorded.commits:
            raise ItaVcError(f"{recorded.path} is not committed yet: commit the run, then pin it")
        tag = f"{KEEP_TAG_PREFIX}{run_id}"
        message = reason or "kept"
        gitcli.git(["tag", "-f", "-a", tag, "-m", message, recorded.commits[0]], workspace.root)
    return tag
