"""Run snapshots: the provenance JSON of a pipeline run, built from ``dvc.lock`` plus git.

Contract (``schema_version`` 1; every field always present)::

    schema_version, run_id,
    setup_id, rule_version ("v1.3"), params_hash      # the rule file used, checked vs registry
    data_hash                                          # read from the pipeline's summary.json
    data_range [first bar, last bar] (inclusive, ISO-8601 UTC), market, symbol, timeframe,
    config_hash, engine_version                        # from summary.json
    git_commit_hash, git_branch, git_dirty, dirty_paths  # the code commit the run started from
    dvc_lock {stages}, dvc_lock_sha256                 # the lock as written by this run
    params                                             # params.yaml as the stages used it
    metrics                                            # copy of metrics.json
    validation                                         # validation_summary.json (schema 3;
                                                       # null unless the validate stage ran)
    artifacts_manifest_sha                             # schema 4: sha256 of the run's
                                                       # provenance/<run_id>.manifest.json
    preset_ref {name, sha256} | null                   # schema 4: the preset params came from
    outputs [{path, md5, size, nfiles}]                # every out of every stage
    env {python, os, cpu, gpu, packages {dist: version}, packages_sha256}
    timestamp                                          # UTC, seconds
    meta {author, run_mode, flow, note}
    snapshot_sha256                                    # canonical JSON of all the rest

**Run ids** are ``<flow>_<YYYY>_<MM>_<DD>_<NNN>_<xxx>``: ``bt`` for backtests (``ita-vc run``
and ``backtest run``), ``gr`` for ``grid run``, ``va`` for ``validate``, ``lv`` live, ``tr`` train
(:data:`RUN_ID_PREFIXES`), the UTC date, a per-clone sequence number for that day, and three
hex digits of the sha256 of (author e-mail, host name, nanosecond timestamp, code commit). Two
people running on the same day get the same ``NNN`` but (with probability 4095/4096)
different suffixes; a snapshot file is never overwritten, so a collision is an error, never a
silent replacement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from ita_vc._version import __version__
from ita_vc.backtest.params import parse_params
from ita_vc.backtest.params import preset_ref as run_preset_ref
from ita_vc.errors import (
    DataValidationError,
    IntegrityError,
    ItaVcError,
    PersistentStoreError,
    UsageError,
)
from ita_vc.rules.registry import RuleRegistry, default_author
from ita_vc.snapshot.manifest import build_manifest, manifest_sha, save_manifest
from ita_vc.snapshot.pipeline_files import pipeline_stage_names, run_hash_of
from ita_vc.store.artifacts import PersistentStore
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import canonical_json, hash_canonical
from ita_vc.utils.tablehash import hash_dataframe
from ita_vc.validation.verdict import headline_values
from ita_vc.vcs import gitcli
from ita_vc.yaml_read import YamlError, load_lockfile, load_yaml_file

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from ita_vc.rules.model import Rule
    from ita_vc.store.artifacts import ArtifactRef
    from ita_vc.workspace import Workspace

__all__ = [
    "RUN_ID_PREFIXES",
    "RUN_MODES",
    "SNAPSHOT_SCHEMA_VERSION",
    "RunProvenance",
    "SnapshotStore",
    "check_run_id",
    "environment",
    "new_run_id",
    "next_run_id",
    "run_row",
    "seal",
    "snapshot_hash",
]

SNAPSHOT_SCHEMA_VERSION = 4
#: the modes of ``ita-vc run`` and their run-id prefixes
RUN_MODES = {"backtest": "bt", "live": "lv", "train": "tr"}
#: every flow's run-id prefix (``ita-vc run`` and ``backtest run``: bt; ``grid run``: gr;
#: ``validate``: va)
RUN_ID_PREFIXES = {**RUN_MODES, "grid": "gr", "validate": "va"}
_RUN_ID_RE = re.compile(r"(bt|gr|va|lv|tr)_(\d{4})_(\d{2})_(\d{2})_(\d{3,})_([0-9a-f]{3})")
#: a snapshot file name (runs of ``ita-vc run``: bt, lv, tr)
RUN_FILE_RE = re.compile(r"(bt|lv|tr)_\d{4}_\d{2}_\d{2}_\d{3,}_[0-9a-f]{3}\.json")
#: files a run itself writes: they never make the tree "dirty"
RUN_WRITTEN = ("params.yaml", "dvc.lock")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if well formed.

    Raises:
        UsageError: malformed (it is also a file name, so no paths): exit 2.
    """
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise UsageError(f"not a run id: {run_id!r} (expected e.g. bt_2025_11_10_001_a3f)")
    return run_id


def snapshot_hash(snapshot: Mapping[str, object]) -> str:
    """``sha256:`` of the canonical JSON of the snapshot without ``snapshot_sha256``."""
    return hash_canonical({k: v for k, v in snapshot.items() if k != "snapshot_sha256"})


def seal(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Set ``snapshot_sha256`` (tamper evidence)."""
    snapshot["snapshot_sha256"] = snapshot_hash(snapshot)
    return snapshot


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return ", ".join(names) or None


def _installed_packages() -> dict[str, str]:
    """``{normalised name: version}`` of every installed distribution.

    Read from the ``<name>-<version>.dist-info`` folder names where possible (parsing every
    METADATA file costs ~0.5 s), from the metadata otherwise.
    """
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        folder = getattr(dist, "_path", None)
        stem = Path(str(folder)).name if folder is not None else ""
        match = re.fullmatch(r"(.+?)-([^-]+)\.dist-info", stem)
        if match:
            name, version = match.group(1), match.group(2)
        else:
            name = dist.metadata["Name"] if "Name" in dist.metadata else None  # noqa: SIM401
            version = dist.version
        if name:
            packages[re.sub(r"[-_.]+", "-", name).lower()] = version
    return dict(sorted(packages.items()))


def environment() -> dict[str, Any]:
    """Python, OS, CPU, GPU and every installed distribution with its version."""
    packages = _installed_packages()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "cpu": _cpu(),
        "gpu": _gpu(),
        "packages": packages,
        "packages_sha256": hash_canonical(packages),
    }


def new_run_id(
    provenance_dir: Path,
    mode: str,
    when: dt.datetime,
    identity: str,
    taken: set[str] | None = None,
    floor: int = 0,
) -> str:
    """The next run id of the day: one more than every sequence number of that day in
    ``provenance_dir``, in ``taken`` (run ids known elsewhere) and ``floor`` (see the module
    docstring; :func:`next_run_id` gathers them for a workspace)."""
    prefix = f"{RUN_ID_PREFIXES[mode]}_{when:%Y_%m_%d}_"
    seq = floor
    names = set(taken or ())
    if provenance_dir.is_dir():
        names |= {path.stem for path in provenance_dir.glob(f"{prefix}*.json")}
    for name in names:
        match = _RUN_ID_RE.fullmatch(name)
        if match and name.startswith(prefix):
            seq = max(seq, int(match.group(5)))
    suffix = hashlib.sha256(
        f"{identity}|{when.isoformat()}|{os.getpid()}|"
        f"{dt.datetime.now(dt.UTC).timestamp()}".encode()
    ).hexdigest()[:3]
    return f"{prefix}{seq + 1:03d}_{suffix}"


def _committed_run_ids(root: Path, folder: str) -> set[str]:
    """Run ids of every snapshot any commit of any ref ever added (one ``git log``)."""
    raw = gitcli.git(
        ["log", "--all", "--format=", "--name-only", "--diff-filter=A", "-z", "--", f"{folder}/"],
        root,
        check=False,
    )
    return {
        PurePosixPath(p).stem
        for p in raw.decode("utf-8", "replace").split("\0")
        if p.endswith(".json")
    }


def _logged_run_ids(workspace: Workspace) -> set[str]:
    """Run ids in the clone's run log (failed runs and runs that commit nothing)."""
    from ita_vc.snapshot.runlog import RunLog  # lazy: the run log imports this module's peers

    try:
        return {
            str(e["run_id"])
            for e in RunLog(workspace.state_dir).events()
            if e.get("event") in ("start", "record") and isinstance(e.get("run_id"), str)
        }
    except ItaVcError:
        return set()  # an unreadable log: the counter and the snapshots still count


def next_run_id(workspace: Workspace, mode: str, when: dt.datetime, identity: str) -> str:
    """A run id unique in this clone whatever the branch: the day's sequence continues from
    the snapshots in the workspace, every snapshot committed on any ref, and a per-clone
    counter (``.ita/run-ids.json``, which also remembers runs whose snapshots were set aside,
    and the ids of runs that commit nothing: ``grid run``, ``validate``, failed runs). The
    counter is read and advanced under its own file lock, so commands that do not hold the
    workspace lock (``grid run``, ``validate``) never get the same id.
    """
    counter_path = workspace.contained(workspace.state_dir / "run-ids.json", follow=True)
    counter_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(os.fspath(counter_path) + ".lock", timeout=60):
        return _next_run_id_locked(workspace, counter_path, mode, when, identity)


def _next_run_id_locked(
    workspace: Workspace, counter_path: Path, mode: str, when: dt.datetime, identity: str
) -> str:
    folder = workspace.config.store.kinds["provenance"]
    try:
        counters = json.loads(counter_path.read_text("utf-8"))
    except (OSError, ValueError):
        counters = {}
    if not isinstance(counters, dict):
        counters = {}
    day = f"{RUN_ID_PREFIXES[mode]}_{when:%Y_%m_%d}"
    stored = counters.get(day)
    # a hand-edited or damaged counter is ignored (the run log and the snapshots still count)
    floor = stored if isinstance(stored, int) and 0 <= stored < 10**6 else 0
    run_id = new_run_id(
        workspace.path(folder),
        mode,
        when,
        identity,
        _committed_run_ids(workspace.root, folder) | _logged_run_ids(workspace),
        floor,
    )
    counters[day] = int(str(_RUN_ID_RE.fullmatch(run_id).group(5)))  # type: ignore[union-attr]
    atomic_write_bytes(counter_path, (json.dumps(counters, sort_keys=True) + "\n").encode())
    return run_id


def _outputs(stages: Mapping[str, Any]) -> list[dict[str, Any]]:
    outs = []
    for body in stages.values():
        for out in (body or {}).get("outs") or []:
            outs.append(
                {
                    "path": out.get("path"),
                    "md5": out.get("md5"),
                    "size": out.get("size"),
                    "nfiles": out.get("nfiles"),
                }
            )
    return sorted(outs, key=lambda o: str(o["path"]))


def _check_asked_rule(
    summary: dict[str, Any], setup_id: str | None, rule_version: str | None
) -> None:
    """The pipeline ran the rule asked for (when one was).

    Raises:
        ItaVcError: it ran another setup or version.
    """
    for given, key in ((setup_id, "setup_id"), (rule_version, "rule_version")):
        if given is not None and str(given).lstrip("v") != str(summary.get(key)).lstrip("v"):
            raise ItaVcError(f"the pipeline ran {key} {summary.get(key)}, not {given}")


def _all_stages(root: Path, recorded: dict[str, Any]) -> list[str]:
    """Every stage of ``dvc.yaml`` (those of ``dvc.lock`` when DVC cannot read it)."""
    try:
        return pipeline_stage_names(root)
    except ItaVcError:
        return list(recorded)


class SnapshotStore:
    """Create, load and check run snapshots of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = PersistentStore(workspace)
        self.folder = workspace.path(workspace.config.store.kinds["provenance"])
        self._manifests: dict[str, dict[str, Any]] = {}

    def snapshot_relpath(self, run_id: str) -> str:
        """``provenance/<run_id>.json``."""
        return PurePosixPath(
            self.workspace.config.store.kinds["provenance"], f"{check_run_id(run_id)}.json"
        ).as_posix()

    def run_ids(self) -> list[str]:
        """Every run with a snapshot file in the workspace, oldest first."""
        if not self.folder.is_dir():
            return []
        ids = [p.stem for p in self.folder.glob("*.json") if _RUN_ID_RE.fullmatch(p.stem)]
        return sorted(ids, key=lambda r: (r.split("_")[1:5], r))

    def load_snapshot(self, run_id: str) -> dict[str, Any]:
        """The snapshot of ``run_id``.

        Raises:
            ItaVcError: no such run. PersistentStoreError: unreadable.
        """
        rel = self.snapshot_relpath(run_id)
        if not self.workspace.path(rel).is_file():
            raise ItaVcError(f"no snapshot for run {run_id} ({rel} does not exist)")
        data = self.store.load_json(rel)
        if not isinstance(data, dict):
            raise IntegrityError(f"{rel}: not a snapshot object")
        return data

    def _summary(self) -> dict[str, Any]:
        results = self.workspace.config.store.kinds["results"]
        path = f"{results}/backtest/summary.json"
        if not self.workspace.path(path).is_file():
            raise ItaVcError(f"{path} is missing: run the pipeline (`dvc repro`) first")
        summary = self.store.load_json(path)
        return dict(summary)

    def _lock(self) -> tuple[bytes, dict[str, Any]]:
        """``dvc.lock``: its bytes and its recorded stages.

        Raises:
            ItaVcError: no dvc.lock. IntegrityError: an unreadable one.
        """
        lock_path = self.workspace.root / "dvc.lock"
        if not lock_path.is_file():
            raise ItaVcError("dvc.lock is missing: run the pipeline (`dvc repro`) first")
        lock_bytes = lock_path.read_bytes()
        try:
            lock = load_lockfile(lock_path) or {}
        except YamlError as exc:
            raise IntegrityError(f"dvc.lock: {exc}") from exc
        return lock_bytes, dict(lock.get("stages") or {})

    def _rule(self, summary: dict[str, Any], rule_status: str | None) -> tuple[Rule, str]:
        """The rule the pipeline ran, verified against the registry, and its status."""
        registry = RuleRegistry(self.workspace)
        rule = registry.verify(
            str(summary["setup_id"]),
            str(summary["rule_version"]),
            params_hash=str(summary["params_hash"]),
        )
        if rule_status is None:
            rule_status = registry.status(rule.setup_id, rule.version).status
        return rule, rule_status

    def _params_and_metrics(self) -> tuple[Any, dict[str, Any]]:
        """``params.yaml`` (empty when missing) and the run's metrics."""
        params_file = self.workspace.root / "params.yaml"
        params = load_yaml_file(params_file, allow_aliases=True) if params_file.is_file() else {}
        results = self.workspace.config.store.kinds["results"]
        metrics = dict(self.store.load_json(f"{results}/metrics.json"))
        return params, metrics

    def _validation(self) -> dict[str, Any] | None:
        """The validate stage's ``validation_summary.json`` (None when it wrote none)."""
        results = self.workspace.config.store.kinds["results"]
        path = f"{results}/validation/validation_summary.json"
        if not self.workspace.path(path).is_file():
            return None
        return dict(self.store.load_json(path))

    def build(
        self,
        run_id: str,
        *,
        setup_id: str | None = None,
        rule_version: str | None = None,
        code_commit: str | None = None,
        dirty_paths: list[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        stages_run: list[str] | None = None,
        rule_status: str | None = None,
        preset_ref: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The sealed snapshot of the pipeline state now (after ``dvc repro``), and the run's
        manifest (every output file hashed now: :mod:`ita_vc.snapshot.manifest`), which
        :meth:`save` writes next to it.

        ``stages_run``: the ``dvc.yaml`` stages this run reproduced (default: every stage in
        ``dvc.lock``); only their ``dvc.lock`` entries and outputs are recorded, the other
        stages are listed as ``not_run``.

        Raises:
            ItaVcError: no dvc.lock or summary, or the run is not the rule asked for.
            RuleValidationError: the rule file does not match the registry.
        """
        root = self.workspace.root
        check_run_id(run_id)
        lock_bytes, recorded = self._lock()
        ran = list(recorded) if stages_run is None else list(stages_run)
        stages = {name: recorded[name] for name in ran if name in recorded}
        summary = self._summary()
        _check_asked_rule(summary, setup_id, rule_version)
        rule, rule_status = self._rule(summary, rule_status)
        params, metrics = self._params_and_metrics()
        commit = code_commit or gitcli.head(root)
        if dirty_paths is None:
            dirty_paths = [p for p in gitcli.status_paths(root) if p not in RUN_WRITTEN]
        meta = dict(meta or {})
        mode = str(meta.get("run_mode", "backtest"))
        all_stages = _all_stages(root, recorded)
        now = dt.datetime.now(dt.UTC)
        rng = summary.get("range") or {}
        outputs = _outputs(stages)
        manifest = build_manifest(self.workspace, run_id, [str(o["path"]) for o in outputs])
        self._manifests[run_id] = manifest
        snapshot: dict[str, Any] = {
            "schema_version": SNAPSHOT_SCHEMA_VERSION,
            "run_id": run_id,
            "setup_id": rule.setup_id,
            "rule_version": rule.version.tag,
            "params_hash": rule.params_hash,
            "rule_status": rule_status,
            "data_hash": summary.get("data_hash"),
            "data_range": [rng.get("first_bar"), rng.get("last_bar")],
            "market": summary.get("market"),
            "symbol": summary.get("symbol"),
            "timeframe": summary.get("timeframe"),
            "config_hash": summary.get("config_hash"),
            "engine_version": summary.get("engine_version"),
            "ita_vc_version": __version__,
            "git_commit_hash": commit,
            "git_branch": gitcli.branch(root),
            "git_dirty": bool(dirty_paths),
            "dirty_paths": sorted(dirty_paths),
            "stages": {
                name: "run" if name in stages else "not_run"
                for name in dict.fromkeys([*all_stages, *stages])
            },
            "run_hash": run_hash_of(root, list(stages), mode),
            "dvc_lock": {"stages": stages},
            "dvc_lock_sha256": "sha256:" + hashlib.sha256(lock_bytes).hexdigest(),
            "params": params,
            "metrics": metrics,
            "validation": self._validation() if "validate" in stages else None,
            "outputs": outputs,
            "artifacts_manifest_sha": manifest_sha(manifest),
            "preset_ref": dict(preset_ref)
            if preset_ref
            else (run_preset_ref(params) if isinstance(params, dict) else None),
            "env": environment(),
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "meta": {
                "author": meta.get("author") or default_author(root),
                "run_mode": mode,
                "flow": meta.get("flow", "dvc repro: " + " -> ".join(stages)),
                "note": meta.get("note"),
            },
        }
        return seal(snapshot)

    def save(self, snapshot: dict[str, Any]) -> ArtifactRef:
        """Write a sealed snapshot and its manifest (never overwriting) and index it.

        Raises:
            PersistentStoreError: a snapshot of that run id exists already.
            IntegrityError: the manifest :meth:`build` made no longer matches the snapshot.
        """
        run_id = check_run_id(snapshot["run_id"])
        rel = self.snapshot_relpath(run_id)
        if self.workspace.path(rel).exists():
            raise PersistentStoreError(
                f"a snapshot of run {run_id} exists already; snapshots are never overwritten",
                path=rel,
            )
        manifest = self._manifests.pop(run_id, None)
        if snapshot.get("artifacts_manifest_sha") is not None:
            if manifest is None or manifest_sha(manifest) != snapshot["artifacts_manifest_sha"]:
                raise IntegrityError(
                    f"run {run_id}: the snapshot's artifacts_manifest_sha does not match the "
                    "manifest built with it (build and save the snapshot with one SnapshotStore)"
                )
            save_manifest(self.workspace, manifest)
        ref = self.store.save_json(snapshot, "provenance", f"{run_id}.json", overwrite=False)
        self.store.index.upsert_run(run_row(snapshot, rel))
        logging.getLogger("ita_vc.snapshot").info("Run snapshot saved: %s -> %s", run_id, rel)
        json.loads(canonical_json(snapshot))  # it is plain JSON, nothing else
        return ref

    def create_snapshot(
        self,
        run_id: str,
        setup_id: str,
        rule_version: str,
        data_path: str | Path | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Build, seal and save the snapshot of the current pipeline state as ``run_id``.

        ``data_path`` (the candles file the run used), when given, is checked against the
        snapshot's data hash.

        Raises:
            ItaVcError: see :meth:`build`; IntegrityError: ``data_path`` does not match.
        """
        snapshot = self.build(run_id, setup_id=setup_id, rule_version=rule_version, meta=meta)
        if data_path is not None and not self._data_matches(snapshot, data_path):
            raise IntegrityError(
                f"{data_path} does not hash to the run's data_hash {snapshot['data_hash']}"
            )
        return self.save(snapshot)

    def _data_matches(self, snapshot: Mapping[str, Any], data: str | Path | pd.DataFrame) -> bool:
        import pandas as pd  # lazy: pandas and numpy, for a data check only

        from ita_vc.backtest.run import prepare_candles  # lazy: as pandas

        is_frame = isinstance(data, pd.DataFrame)
        frame: pd.DataFrame = data if isinstance(data, pd.DataFrame) else _read_candles(Path(data))
        missing = [
            c for c in ("ts_utc", "open", "high", "low", "close", "volume") if c not in frame
        ]
        if missing:
            where = "the DataFrame" if is_frame else str(data)
            raise DataValidationError(f"{where}: no candle column(s) {', '.join(missing)}")
        if "warmup" not in frame:
            frame, _ = prepare_candles(frame, parse_params(snapshot.get("params") or {}))
        used = frame[["ts_utc", "open", "high", "low", "close", "volume"]].astype(
            {
                "ts_utc": "int64",
                "open": "float64",
                "high": "float64",
                "low": "float64",
                "close": "float64",
                "volume": "float64",
            }
        )
        return bool(hash_dataframe(used) == snapshot.get("data_hash"))

    def verify_data_hash(self, run_id: str, file_path: str | Path | pd.DataFrame) -> bool:
        """True if ``file_path`` holds the run's candles: the prepared candles, or canonical
        candles - a parquet file, any CSV/zip `ita-vc data import` reads, or a DataFrame - that
        the run's params turn into them (rollup, range, warm-up).

        Raises:
            DataValidationError: the file cannot be read as candles.
        """
        return self._data_matches(self.load_snapshot(run_id), file_path)


def _read_candles(path: Path) -> pd.DataFrame:
    """A candle table from a parquet file as stored (prepared or canonical), else through the
    importer's readers (CSV, zip, foreign parquet)."""
    import pandas as pd  # lazy: pandas and pyarrow, for a data check only

    from ita_vc.candles.importers import read_candle_file  # lazy: imports pandas

    if path.suffix.lower() == ".parquet" and path.is_file():
        import pyarrow as pa  # lazy: as pandas above

        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataValidationError(f"{path}: cannot read parquet: {exc}") from exc
        if "ts_utc" in frame:
            return frame
    return read_candle_file(path)


def run_row(snapshot: Mapping[str, Any], rel: str) -> dict[str, object]:
    """The index row (runs table) of a snapshot."""
    keys = ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Num. Trades")
    metrics = snapshot.get("metrics") or {}
    return {
        "run_id": snapshot.get("run_id"),
        "status": "ok",
        "created_at": snapshot.get("timestamp"),
        "setup_id": snapshot.get("setup_id"),
        "rule_version": snapshot.get("rule_version"),
        "config_hash": snapshot.get("config_hash"),
        "git_commit": snapshot.get("git_commit_hash"),
        "run_mode": (snapshot.get("meta") or {}).get("run_mode"),
        "snapshot_path": rel,
        "snapshot_sha256": snapshot.get("snapshot_sha256"),
        "metrics_json": canonical_json(
            {
                **{k: metrics.get(k) for k in keys},
                **{
                    k: v
                    for k, v in headline_values(snapshot.get("validation")).items()
                    if v is not None
                },
            }
        ),
    }


#: The 0.2 name of :class:`SnapshotStore` (a service, not a record), kept for existing scripts.
RunProvenance = SnapshotStore
