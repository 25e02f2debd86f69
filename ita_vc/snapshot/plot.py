"""``ita-vc runs plot``: recorded runs overlaid on one time axis.

Each run is read from what it committed, not from ``results/``: its snapshot names the
``results/backtest`` directory object it produced (DVC md5), and the run's ``equity.parquet``
and ``summary.json`` are read from that object in the DVC cache - so a past run still plots
after later runs overwrote ``results/``. The charts are drawn by :mod:`ita_vc.charts.compare`:
HTML (Bokeh, JS inlined, fixed ids: the same runs give the same bytes) or PNG (matplotlib Agg,
no timestamp), chosen by the file's suffix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ita_vc.charts.compare import (
    METRICS,
    OUT_SUFFIXES,
    RunSeries,
    render_runs_html,
    render_runs_png,
)
from ita_vc.errors import IntegrityError, ItaVcError, PersistentStoreError, UsageError
from ita_vc.snapshot.capture import SnapshotStore
from ita_vc.snapshot.runs import resolve_run_id
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.vcs.dvc import cache_paths

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ita_vc.utils.arrays import FloatArray
    from ita_vc.workspace import Workspace

__all__ = [
    "check_plot_args",
    "check_plot_target",
    "default_plot_path",
    "load_run_series",
    "plot_runs",
    "run_label",
]


def run_label(run_id: str, snapshot: Mapping[str, Any]) -> str:
    """A run's legend entry: ``<id> <setup> <version> <symbol> <timeframe>`` and its note
    (cut at 40 characters), so runs of one rule on other data or settings tell apart."""
    parts = [run_id, snapshot.get("setup_id"), snapshot.get("rule_version")]
    parts += [snapshot.get("symbol"), snapshot.get("timeframe")]
    label = " ".join(str(p) for p in parts if p)
    note = str(snapshot.get("note") or "").strip()
    if note:
        label += f" - {note[:40]}" + ("..." if len(note) > 40 else "")
    return label


def default_plot_path(workspace: Workspace, out_suffix: str = ".html") -> Path:
    """``<workspace>/dvc_plots/runs_plot.html``: where ``dvc plots show`` writes too, ignored
    by git (``ita-vc init``'s .gitignore), so a plot never makes the next run dirty."""
    return workspace.root / "dvc_plots" / f"runs_plot{out_suffix}"


def check_plot_target(workspace: Workspace, path: Path) -> None:
    """A chart file may not replace what the workspace versions: a file git tracks, anything
    under the data or results folders (DVC's), a symlink (it would be replaced, its target
    never written) or a folder.

    Raises:
        UsageError: naming the path and why.
    """
    from ita_vc.vcs import gitcli

    if path.is_symlink():
        raise UsageError(f"--out {path}: is a symlink; give the file to write itself")
    if path.is_dir():
        raise UsageError(f"--out {path}: is a folder; give a file name ending in .html or .png")
    root = workspace.root.resolve()
    target = path.resolve()
    if not target.is_relative_to(root):
        return
    rel = target.relative_to(root).as_posix()
    paths = workspace.config.paths
    for folder in (paths.data_root, paths.results_root, ".git", ".dvc"):
        if rel == folder or rel.startswith(folder.rstrip("/") + "/"):
            raise UsageError(
                f"--out {path}: inside {folder}/, which the workspace versions; write the "
                "chart elsewhere (default: dvc_plots/runs_plot.html)"
            )
    if gitcli.ls_files(root, rel):
        raise UsageError(
            f"--out {path}: git tracks this file; write the chart elsewhere (default: "
            "dvc_plots/runs_plot.html)"
        )


def check_plot_args(refs: Sequence[str], metric: str, out: str | Path) -> Path:
    """The output path, once the arguments are known to be usable.

    Raises:
        UsageError: no run, an unknown metric, or an output that is not ``.html``/``.png``.
    """
    if not refs:
        raise UsageError("give at least one run to plot (`ita-vc runs list` shows them)")
    if metric not in METRICS:
        raise UsageError(f"unknown --metric {metric!r}: use one of {', '.join(METRICS)}")
    if len(set(refs)) < len(refs):
        raise UsageError("a run is given twice: give each run once")
    path = Path(out)
    if path.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(
            f"--out {str(out)!r}: the file must end in .html (interactive) or .png (an image)"
        )
    return path


def _backtest_object(snapshot: Mapping[str, Any], results: str) -> str:
    """The md5 (``.dir``) of the run's ``results/backtest`` output, from its snapshot (its
    ``outputs``, else the ``dvc.lock`` it recorded)."""
    run_id = snapshot.get("run_id")
    path = f"{results}/backtest"

    def items(value: object) -> list[Mapping[str, Any]]:  # a hand-edited snapshot: skip junk
        return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []

    lock = snapshot.get("dvc_lock")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    bodies = [b for b in stages.values() if isinstance(b, dict)] if isinstance(stages, dict) else []
    recorded = [*items(snapshot.get("outputs")), *(i for b in bodies for i in items(b.get("outs")))]
    for item in recorded:
        if item.get("path") == path and str(item.get("md5") or "").endswith(".dir"):
            return str(item["md5"])
    status = snapshot.get("stages")
    ran = (
        ", ".join(str(k) for k, v in status.items() if v != "not_run")
        if isinstance(status, dict)
        else ""
    )
    raise ItaVcError(
        f"run {run_id} recorded no {path} output (its stages: {ran or 'none'}): nothing to plot"
    )


def _object_files(workspace: Workspace, run_id: str, oid: str, names: Sequence[str]) -> list[Path]:
    """Cache paths of ``names`` inside the directory object ``oid`` of ``run_id``.

    Raises:
        IntegrityError: the object or one of the files is missing from the DVC cache.
    """
    remedy = "(`ita-vc snapshot verify " + run_id + "` checks it; `dvc pull` fetches it)"
    manifest = cache_paths(workspace.root, [oid])[oid]
    try:
        entries = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        raise IntegrityError(
            f"run {run_id}: the results/backtest object {oid} is not in the DVC cache {remedy}"
        ) from None
    by_name = {str(e.get("relpath")): str(e.get("md5")) for e in entries if isinstance(e, dict)}
    found = []
    for name in names:
        md5 = by_name.get(name)
        if md5 is None:
            raise IntegrityError(f"run {run_id}: results/backtest {oid} holds no {name}")
        path = cache_paths(workspace.root, [md5])[md5]
        if not path.is_file():
            trashed = workspace.trashed_object_path(md5).exists()
            raise IntegrityError(
                f"run {run_id}: results/backtest/{name} (object {md5}) is not in the DVC "
                "cache " + ("- it is in the trash (`ita-vc trash restore`)" if trashed else remedy)
            )
        found.append(path)
    return found


def _normalised(equity: FloatArray, init_cash: float, metric: str) -> FloatArray:
    if metric == "equity":
        return equity / init_cash
    if metric == "returns":
        return (equity / init_cash - 1.0) * 100.0
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1.0) * 100.0


def load_run_series(workspace: Workspace, ref: str, metric: str = "equity") -> RunSeries:
    """The run ``ref`` names (an id, a unique prefix, ``@latest``, ``@latest~N``) as a
    normalised series, read from its committed ``results/backtest`` object.

    Raises:
        UsageError: no run matches ``ref``.
        ItaVcError: no snapshot of the run, or it recorded no backtest output.
        IntegrityError: its equity object is missing from the DVC cache or unreadable.
    """
    run_id = resolve_run_id(workspace, ref)
    snapshot = SnapshotStore(workspace).load_snapshot(run_id)
    results = workspace.config.store.kinds["results"]
    oid = _backtest_object(snapshot, results)
    equity_path, summary_path = _object_files(
        workspace, run_id, oid, ["equity.parquet", "summary.json"]
    )
    try:
        frame = pd.read_parquet(equity_path, columns=["ts_utc", "equity"])
        summary = json.loads(summary_path.read_bytes())
    except (OSError, ValueError, KeyError) as exc:
        raise IntegrityError(f"run {run_id}: cannot read its equity ({exc})") from exc
    init_cash = float(summary.get("init_cash") or frame["equity"].iloc[0])
    equity = frame["equity"].to_numpy(dtype=np.float64)
    return RunSeries(
        run_id,
        run_label(run_id, snapshot),
        frame["ts_utc"].to_numpy(dtype=np.int64),
        _normalised(equity, init_cash, metric),
    )


def plot_runs(
    workspace: Workspace,
    run_ids: Sequence[str],
    metric: str = "equity",
    out: str | Path | None = None,
) -> Path:
    """Overlay the runs ``run_ids`` name (see :func:`load_run_series`) on one time axis and
    write the chart to ``out`` (``.html``: interactive, ``.png``: an image; default
    ``dvc_plots/runs_plot.html`` in the workspace, which git ignores); returns the path.

    Raises:
        UsageError: no run, an unknown metric or output suffix, or no run matches a ref.
        ItaVcError: a run without a snapshot or backtest output.
        IntegrityError: a run's equity object is missing from the DVC cache.
        PersistentStoreError: the file cannot be written.
    """
    path = check_plot_args(run_ids, metric, out or default_plot_path(workspace, out_suffix=".html"))
    check_plot_target(workspace, path)
    series = [load_run_series(workspace, ref, metric) for ref in run_ids]
    if path.suffix.lower() == ".png":
        data = render_runs_png(series, metric)
    else:
        data = render_runs_html(series, metric)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise PersistentStoreError(f"write failed: {exc.strerror or exc}", path=str(path)) from exc
    return path
