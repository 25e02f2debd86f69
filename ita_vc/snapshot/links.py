"""Run links: which files a run wrote or was given, and which rule, data and deps it used.

The index tables ``run_artifacts`` and ``run_inputs`` are a cache rebuilt from committed files:

* ``run_artifacts`` (run_id, path, name, sha256, size, mime, source): the files of the run's
  manifest ``provenance/<run_id>.manifest.json`` (source ``manifest``); for a run without one
  (runs before 0.5) each output of its snapshot, with DVC's md5 as ``md5:<hex>`` (a folder:
  ``md5:<hex>.dir``; source ``snapshot``); and the artifacts attached to it with
  :func:`attach_artifact` (source ``attached``), listed in ``provenance/<run_id>.attached.json``.
* ``run_inputs`` (run_id, kind, ref): kind ``rule`` (``SETUP@vX.Y``), ``data`` (the data hash),
  ``params_hash``, ``commit``, ``dep`` (each dvc.lock dep path) and ``dep_md5`` (its md5),
  ``preset`` (``name@sha256`` when the run's params came from a preset).

:func:`lineage` answers "which runs produced this file (or hash), and which used it".
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from ita_vc.errors import (
    IntegrityError,
    ItaVcError,
    PersistentStoreError,
    UsageError,
    VcsError,
)
from ita_vc.rules.model import RuleVersion
from ita_vc.rules.validate import check_setup_id
from ita_vc.snapshot.capture import SnapshotStore, check_run_id
from ita_vc.snapshot.manifest import load_manifest, manifest_relpath, manifest_sha, mime_of
from ita_vc.store.artifacts import PersistentStore
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import hash_file, hash_file_md5
from ita_vc.vcs.dvc import cache_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ita_vc.store.artifacts import ArtifactRef
    from ita_vc.workspace import Workspace

__all__ = [
    "ATTACHED_SUFFIX",
    "Lineage",
    "LineageHit",
    "attach_artifact",
    "attached_relpath",
    "filter_runs",
    "lineage",
    "link_rows",
    "link_run",
    "linked_artifacts",
    "load_attached",
    "parse_data_prefix",
    "parse_rule_ref",
    "sync_run_links",
]

ATTACHED_SUFFIX = ".attached.json"
_ATTACHED_SCHEMA = 1
_DIR_MIME = "inode/directory"
_HEX = re.compile(r"[0-9a-f]+")
_MIN_PREFIX = 6
_log = logging.getLogger(__name__)
_Row = TypeVar("_Row", bound="Mapping[str, Any]")
_T = TypeVar("_T")


# -- building the rows --------------------------------------------------------------------------
def _artifact(
    run_id: str, path: str, sha: str, size: object, mime: str, source: str
) -> dict[str, object]:
    return {
        "run_id": run_id,
        "path": path,
        "name": PurePosixPath(path).name,
        "sha256": sha,
        "size": size if isinstance(size, int) and not isinstance(size, bool) else 0,
        "mime": mime,
        "source": source,
    }


def _snapshot_outputs(run_id: str, snapshot: Mapping[str, Any]) -> list[dict[str, object]]:
    """One row per output of the snapshot (DVC's md5: no per-file hashes before manifests)."""
    rows = []
    for out in snapshot.get("outputs") or []:
        path, md5 = out.get("path"), out.get("md5")
        if not isinstance(path, str) or not isinstance(md5, str):
            continue
        mime = _DIR_MIME if md5.endswith(".dir") else mime_of(path)
        rows.append(_artifact(run_id, path, f"md5:{md5}", out.get("size"), mime, "snapshot"))
    return rows


def _inputs(run_id: str, snapshot: Mapping[str, Any]) -> list[dict[str, object]]:
    refs: set[tuple[str, str]] = set()
    setup, version = snapshot.get("setup_id"), snapshot.get("rule_version")
    if setup and version:
        refs.add(("rule", f"{setup}@v{str(version).lstrip('v')}"))
    for kind, key in (("data", "data_hash"), ("params_hash", "params_hash")):
        if snapshot.get(key):
            refs.add((kind, str(snapshot[key])))
    if snapshot.get("git_commit_hash"):
        refs.add(("commit", str(snapshot["git_commit_hash"])))
    stages = (snapshot.get("dvc_lock") or {}).get("stages") or {}
    for body in stages.values():
        for dep in (body or {}).get("deps") or []:
            if dep.get("path"):
                refs.add(("dep", str(dep["path"])))
            if dep.get("md5"):
                refs.add(("dep_md5", str(dep["md5"])))
    preset = snapshot.get("preset_ref")
    if isinstance(preset, dict) and preset.get("name") and preset.get("sha256"):
        refs.add(("preset", f"{preset['name']}@{preset['sha256']}"))
    return [{"run_id": run_id, "kind": k, "ref": r} for k, r in sorted(refs)]


def _loaded(
    load: Callable[[Workspace, str], _T], workspace: Workspace, run_id: str, strict: bool
) -> _T | None:
    """``load(workspace, run_id)``; when not ``strict``, None (logged) if the file is bad."""
    try:
        return load(workspace, run_id)
    except IntegrityError as exc:
        if strict:
            raise
        _log.warning("run links of %s: %s", run_id, exc)
        return None


def link_rows(
    workspace: Workspace, snapshot: Mapping[str, Any], *, strict: bool = True
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The ``run_artifacts`` and ``run_inputs`` rows of one run, from its snapshot, its
    manifest (when it has one) and its attached artifacts. ``strict=False`` skips a malformed
    manifest (the snapshot's outputs stand in) or attachment file (logged).

    Raises:
        UsageError: the snapshot's run id is malformed.
        IntegrityError: (strict) the manifest or the attachment file is malformed.
    """
    run_id = check_run_id(str(snapshot.get("run_id")))
    manifest = _loaded(load_manifest, workspace, run_id, strict)
    expected = snapshot.get("artifacts_manifest_sha")
    if manifest is not None and expected is not None and manifest_sha(manifest) != expected:
        # an edited manifest is not the run's: links come from the snapshot's outputs then
        # (`snapshot verify` reports the edit)
        _log.warning(
            "%s: does not hash to the snapshot's artifacts_manifest_sha; linked from "
            "the snapshot's outputs",
            manifest_relpath(workspace, run_id),
        )
        if strict:
            raise IntegrityError(
                f"{manifest_relpath(workspace, run_id)}: does not hash to the snapshot's "
                f"artifacts_manifest_sha {expected} (edited?): `ita-vc snapshot verify {run_id}`"
            )
        manifest = None
    if manifest is not None:
        artifacts = [
            _artifact(run_id, f["path"], f["sha256"], f["size"], str(f["mime"]), "manifest")
            for f in manifest["files"]
        ]
    else:
        artifacts = _snapshot_outputs(run_id, snapshot)
    taken = {row["path"] for row in artifacts}
    for entry in _loaded(load_attached, workspace, run_id, strict) or []:
        if entry["path"] not in taken:
            artifacts.append(
                _artifact(
                    run_id,
                    entry["path"],
                    entry["sha256"],
                    entry["size"],
                    mime_of(entry["path"]),
                    "attached",
                )
            )
    return artifacts, _inputs(run_id, snapshot)


def _index(workspace: Workspace) -> MetadataIndex:
    return MetadataIndex(workspace.index_path)


def link_run(workspace: Workspace, snapshot: Mapping[str, Any]) -> None:
    """Replace the link rows of one run (call it after recording the run).

    Raises:
        UsageError, IntegrityError: see :func:`link_rows`.
    """
    artifacts, inputs = link_rows(workspace, snapshot)
    run_id = str(snapshot["run_id"])
    index = _index(workspace)
    index.replace_rows("run_artifacts", artifacts, where={"run_id": run_id})
    index.replace_rows("run_inputs", inputs, where={"run_id": run_id})


def sync_run_links(workspace: Workspace) -> int:
    """Recreate both link tables for every run with a snapshot in the workspace (the runs
    ``runs list`` shows); the number of runs linked. A malformed manifest or attachment file
    is skipped (logged): the run keeps its other links."""
    provenance = SnapshotStore(workspace)
    artifacts: list[dict[str, object]] = []
    inputs: list[dict[str, object]] = []
    count = 0
    for run_id in provenance.run_ids():
        try:
            snapshot = provenance.load_snapshot(run_id)
        except ItaVcError as exc:
            _log.warning("run links: %s skipped: %s", run_id, exc)
            continue
        rows, used = link_rows(workspace, snapshot, strict=False)
        artifacts += rows
        inputs += used
        count += 1
    index = _index(workspace)
    index.replace_rows("run_artifacts", artifacts)
    index.replace_rows("run_inputs", inputs)
    return count


def _ensure_linked(workspace: Workspace, run_ids: Iterable[str] | None = None) -> None:
    """Link the workspace's runs the index has no links of yet (recorded before the links
    existed, pulled from elsewhere, or indexed before the last ``index rebuild``)."""
    index = _index(workspace)
    linked = {row["run_id"] for row in index.rows("run_inputs", kind="rule")}
    provenance = SnapshotStore(workspace)
    for run_id in provenance.run_ids() if run_ids is None else run_ids:
        if run_id not in linked:
            try:
                link_run(workspace, provenance.load_snapshot(run_id))
            except ItaVcError as exc:
                _log.warning("run links: %s skipped: %s", run_id, exc)


def linked_artifacts(workspace: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The ``run_artifacts`` rows of a run (linking it first when needed), by path.

    Raises:
        UsageError: a malformed run id.
        ItaVcError: no snapshot of that run in the workspace.
    """
    check_run_id(run_id)
    provenance = SnapshotStore(workspace)
    if run_id not in provenance.run_ids():
        raise ItaVcError(f"no run {run_id} in this checkout (`ita-vc runs list` shows the runs)")
    _ensure_linked(workspace, [run_id])
    return _index(workspace).rows("run_artifacts", order="path", run_id=run_id)


# -- attached artifacts (seed 002 attach_artifact) ----------------------------------------------
def attached_relpath(workspace: Workspace, run_id: str) -> str:
    """``provenance/<run_id>.attached.json``."""
    folder = workspace.config.store.kinds["provenance"]
    return PurePosixPath(folder, f"{check_run_id(run_id)}{ATTACHED_SUFFIX}").as_posix()


def _check_entry(entry: object, where: str, i: int) -> dict[str, Any]:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("path"), str)
        or not isinstance(entry.get("sha256"), str)
        or not isinstance(entry.get("size"), int)
    ):
        raise IntegrityError(f"{where}: artifacts[{i}] is not an attachment ({entry!r:.200})")
    return {"path": entry["path"], "sha256": entry["sha256"], "size": entry["size"]}


def load_attached(workspace: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The artifacts attached to ``run_id`` (``{path, sha256, size}``, by path; empty when
    none).

    Raises:
        IntegrityError: the attachment file is malformed.
    """
    rel = attached_relpath(workspace, run_id)
    absolute = workspace.path(rel)
    if not absolute.is_file():
        return []
    try:
        doc = json.loads(absolute.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{rel}: cannot be read as JSON: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("run_id") != run_id
        or not isinstance(doc.get("artifacts"), list)
    ):
        raise IntegrityError(f"{rel}: not the attachment list of run {run_id}")
    return [_check_entry(e, rel, i) for i, e in enumerate(doc["artifacts"])]


def _inside(workspace: Workspace, absolute: Path, what: str) -> str:
    """The workspace-relative path of ``absolute``: no folder on the way may lead outside the
    workspace, and a symbolic link as the file must point inside it or into the DVC cache (a
    checkout with ``cache.type symlink``).

    Raises:
        UsageError: it leads outside (``what`` names it in the message).
    """
    outside = UsageError(f"{what} leads outside the workspace {workspace.root}")
    try:
        workspace.contained(absolute)
        rel = workspace.relpath(absolute)
    except PersistentStoreError:
        raise outside from None
    if absolute.is_symlink():
        target = absolute.resolve()
        if not target.is_relative_to(workspace.root):
            try:
                cache = cache_dir(workspace.root).resolve()
            except VcsError:
                raise outside from None
            if not target.is_relative_to(cache):
                raise outside
    return rel


def _attach_target(workspace: Workspace, ref: ArtifactRef | str | os.PathLike[str]) -> str:
    """The workspace-relative path of ``ref``, refusing traversal and escapes."""
    raw = getattr(ref, "path", ref)
    text = os.fspath(raw)  # type: ignore[arg-type]
    if not text or "\0" in text:
        raise UsageError(f"not an artifact path: {text!r}")
    path = Path(text)
    if ".." in path.parts:
        raise UsageError(f"artifact path {text!r} may not contain '..'")
    absolute = path if path.is_absolute() else workspace.root / path
    try:
        rel = _inside(workspace, absolute, f"artifact path {text!r}")
        target = absolute.resolve()
    except OSError as exc:  # a name too long for the file system
        raise UsageError(f"not an artifact path: {text[:80]!r}...: {exc.strerror}") from None
    if absolute.is_symlink() and target.is_relative_to(workspace.root.resolve()):
        # a link to another workspace file would attach that file under a stored name
        raise UsageError(
            f"artifact path {text!r} is a symbolic link to "
            f"{target.relative_to(workspace.root.resolve()).as_posix()}: attach that file"
        )
    return rel


def attach_artifact(
    workspace: Workspace, run_id: str, ref: ArtifactRef | str | os.PathLike[str]
) -> dict[str, Any]:
    """Link an existing stored artifact to a recorded run (seed 002 ``attach_artifact``).

    ``ref`` is an :class:`~ita_vc.store.artifacts.ArtifactRef` or the path of a stored
    artifact (relative to the workspace root, or absolute inside it). The link is recorded in
    ``provenance/<run_id>.attached.json`` (commit it: ``index rebuild`` on any clone reads it)
    and in the index (source ``attached``). Attaching the same file again is a no-op; the
    file's current sha256 is recorded. Returns the ``run_artifacts`` row.

    Raises:
        UsageError: a malformed run id, or a path with ``..`` or leading outside the workspace.
        ItaVcError: no snapshot of that run in the workspace.
        PersistentStoreError: no such artifact (not a file under a store folder).
        IntegrityError: an ``ArtifactRef`` whose sha256 no longer matches the file.
    """
    check_run_id(run_id)
    provenance = SnapshotStore(workspace)
    if run_id not in provenance.run_ids():
        raise ItaVcError(f"no run {run_id} in this checkout (`ita-vc runs list` shows the runs)")
    rel = _attach_target(workspace, ref)
    stored = PersistentStore(workspace).ref_for(rel)  # PersistentStoreError when missing
    sha256, size = hash_file(workspace.path(rel))
    given = getattr(ref, "sha256", None)
    if given is not None and given != sha256:
        raise IntegrityError(f"{rel}: the file hashes to {sha256}, not the given {given}")
    target = attached_relpath(workspace, run_id)
    with workspace.lock(timeout=60, name="links", purpose=f"attach an artifact to {run_id}"):
        entries = {e["path"]: e for e in load_attached(workspace, run_id)}
        entries[stored.path] = {"path": stored.path, "sha256": sha256, "size": size}
        doc = {
            "schema_version": _ATTACHED_SCHEMA,
            "run_id": run_id,
            "artifacts": [entries[p] for p in sorted(entries)],
        }
        payload = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(workspace.contained(target), payload.encode("utf-8"))
    link_run(workspace, provenance.load_snapshot(run_id))
    return _artifact(run_id, stored.path, sha256, size, mime_of(stored.path), "attached")


# -- run filters ---------------------------------------------------------------------------------
def parse_rule_ref(text: str) -> str:
    """``SETUP@vX.Y`` (also ``SETUP@X.Y``) in its canonical form ``SETUP@vX.Y``.

    Raises:
        UsageError: not of that form (the value is named).
    """
    setup, sep, version = text.strip().partition("@")
    reason = check_setup_id(setup) if setup else "it is empty"
    if not sep or reason:
        raise UsageError(
            f"--rule {text!r}: expected SETUP@vX.Y, e.g. example_ma_cross@v1.0"
            + (f" (setup id: {reason})" if sep and reason else "")
        )
    try:
        parsed = RuleVersion.parse(version.removeprefix("v"))
    except ValueError:
        raise UsageError(
            f"--rule {text!r}: {version!r} is not a version vX.Y (e.g. v1.0)"
        ) from None
    return f"{setup}@{parsed.tag}"


def parse_data_prefix(text: str) -> str:
    """A data-hash prefix as ``sha256:<hex>`` (given with or without ``sha256:``, at least 6
    hex digits, any case).

    Raises:
        UsageError: too short or not hex (the value is named).
    """
    digits = text.strip().lower().removeprefix("sha256:")
    if len(digits) < _MIN_PREFIX or len(digits) > 64 or not _HEX.fullmatch(digits):
        raise UsageError(
            f"--data {text!r}: expected a data hash or a prefix of one (sha256:<hex> or <hex>, "
            f"{_MIN_PREFIX} to 64 hex digits; `ita-vc runs show RUN` shows a run's data hash)"
        )
    return f"sha256:{digits}"


def filter_runs(
    workspace: Workspace,
    rows: Iterable[_Row],
    *,
    rule: str | None = None,
    data: str | None = None,
) -> list[_Row]:
    """The ``runs list`` rows of runs that used rule ``rule`` (``SETUP@vX.Y``) and data whose
    hash starts with ``data`` (see :func:`parse_rule_ref`, :func:`parse_data_prefix`).

    Raises:
        UsageError: a malformed ``rule`` or ``data``.
    """
    if rule is None and data is None:
        return list(rows)
    want_rule = parse_rule_ref(rule) if rule is not None else None
    want_data = parse_data_prefix(data) if data is not None else None
    provenance = SnapshotStore(workspace)
    kept = []
    for row in rows:
        if want_rule is not None:
            version = str(row.get("rule_version") or "").lstrip("v")
            if f"{row.get('setup_id')}@v{version}" != want_rule:
                continue
        if want_data is not None:
            data_hash = row.get("data_hash") if "data_hash" in row else None
            if data_hash is None and row.get("snapshot_path"):
                data_hash = provenance.load_snapshot(str(row["run_id"])).get("data_hash")
            if not str(data_hash or "").startswith(want_data):
                continue
        kept.append(row)
    return kept


# -- lineage -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineageHit:
    """One run that produced (or was given) or used the thing asked about."""

    run_id: str
    rule: str | None  # SETUP@vX.Y
    commit: str | None
    via: str  # "manifest results/x.parquet", "dep data/...", "data", ...

    def to_dict(self) -> dict[str, str | None]:
        """Plain-data form."""
        return {"run_id": self.run_id, "rule": self.rule, "commit": self.commit, "via": self.via}


@dataclass
class Lineage:
    """Which runs produced and which used a file or a hash."""

    query: str
    hashes: list[str] = field(default_factory=list)  # what was matched (sha256:, md5:)
    produced: list[LineageHit] = field(default_factory=list)
    used: list[LineageHit] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """True when some run produced or used it."""
        return bool(self.produced or self.used)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what ``lineage --json`` prints)."""
        return {
            "query": self.query,
            "hashes": list(self.hashes),
            "produced": [h.to_dict() for h in self.produced],
            "used": [h.to_dict() for h in self.used],
        }


@dataclass(frozen=True, slots=True)
class _Matcher:
    """Hash forms to match: exact values and prefixes (``sha256:`` or ``md5:``)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def __call__(self, value: str) -> bool:
        return value in self.exact or any(value.startswith(p) for p in self.prefixes)


def _file_matcher(workspace: Workspace, text: str) -> tuple[_Matcher, list[str]]:
    path = Path(text)
    if ".." in path.parts:
        raise UsageError(f"lineage: the path {text!r} may not contain '..'")
    absolute = path if path.is_absolute() else Path.cwd() / path
    _inside(workspace, absolute, f"lineage: {text!r}")
    if absolute.is_dir():
        raise UsageError(
            f"lineage: {text!r} is a folder; give one of its files or a hash (a run's files "
            "are listed by `ita-vc store ls --run-id RUN`)"
        )
    if not absolute.is_file():  # a FIFO, a socket, a device: reading it could block forever
        raise UsageError(f"lineage: {text!r} is not a regular file")
    sha256, md5, _size = hash_file_md5(absolute)
    return _Matcher(frozenset({sha256, f"md5:{md5}", md5})), [sha256, f"md5:{md5}"]


def _hash_matcher(text: str) -> tuple[_Matcher, list[str]] | None:
    """A hash or hash prefix: ``sha256:<hex>``, ``md5:<hex>``, or bare hex (>= 6 digits)."""
    lowered = text.strip().lower()
    scheme, sep, digits = lowered.partition(":")
    if not sep:
        scheme, digits = "", lowered
    digits = digits.removesuffix(".dir")
    longest = 32 if scheme == "md5" else 64
    if scheme not in ("", "sha256", "md5") or not _MIN_PREFIX <= len(digits) <= longest:
        return None
    if not _HEX.fullmatch(digits):
        return None
    schemes = [scheme] if scheme else ["sha256", "md5"]
    prefixes = tuple(f"{s}:{digits}" for s in schemes)
    if "md5" in schemes:
        prefixes += (digits,)  # dep_md5 rows hold DVC's bare md5
    return _Matcher(frozenset(), prefixes), [f"{p}..." for p in prefixes if ":" in p]


def _target_matcher(workspace: Workspace, target: str) -> tuple[_Matcher, list[str]]:
    """What ``target`` matches: a file's hashes (a path is tried first), or a hash (prefix)."""
    candidate = Path(target)
    try:
        is_path = bool(target) and (candidate.is_absolute() or (Path.cwd() / candidate).exists())
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        is_path = False
    if is_path:
        return _file_matcher(workspace, target)
    by_hash = _hash_matcher(target)
    if by_hash is None:
        raise UsageError(
            f"lineage: {target!r} is neither a file in the workspace nor a hash "
            "(sha256:<hex>, md5:<hex> or at least 6 hex digits)"
        )
    return by_hash


def lineage(workspace: Workspace, target: str) -> Lineage:
    """Which runs produced ``target`` (in their manifest, outputs or attached artifacts) and
    which used it (as data, a dvc.lock dep, a rule's params hash or a preset), each with its
    rule version and commit.

    ``target``: a file in the workspace (hashed now: sha256 and DVC's md5; relative paths are
    taken from the current folder), or a hash or prefix of one (``sha256:<hex>``,
    ``md5:<hex>``, bare hex of at least 6 digits, a data hash). A path is tried first.
    Matching is by content: a file that changed since the run no longer matches. Runs without
    a manifest list whole outputs only (a folder output by DVC's ``.dir`` hash); a run with a
    manifest matches its whole dvc.lock outputs by DVC's md5 too.

    Raises:
        UsageError: neither an existing file nor a hash, a folder, or a path leading outside
            the workspace.
    """
    matcher, hashes = _target_matcher(workspace, target)
    _ensure_linked(workspace)
    index = _index(workspace)
    inputs = index.rows("run_inputs")
    about: dict[str, dict[str, str]] = {}
    for row in inputs:
        about.setdefault(row["run_id"], {})[row["kind"]] = row["ref"]

    def hit(run_id: str, via: str) -> LineageHit:
        info = about.get(run_id, {})
        return LineageHit(run_id, info.get("rule"), info.get("commit"), via)

    result = Lineage(target, hashes)
    provenance = SnapshotStore(workspace)
    artifacts = index.rows("run_artifacts", order="run_id")
    seen: set[tuple[str, str]] = set()
    for row in artifacts:
        if matcher(row["sha256"]):
            seen.add((row["run_id"], row["path"]))
            result.produced.append(hit(row["run_id"], f"{row['source']} {row['path']}"))
    # a run with a manifest lists files; its dvc.lock outputs (a folder's .dir hash) too
    for run_id in sorted({r["run_id"] for r in artifacts if r["source"] == "manifest"}):
        for path, md5 in _outputs_of(provenance, run_id):
            if (run_id, path) not in seen and matcher(f"md5:{md5}"):
                result.produced.append(hit(run_id, f"output {path}"))
    for row in sorted(inputs, key=lambda r: (r["run_id"], r["kind"], r["ref"])):
        kind, ref = row["kind"], row["ref"]
        if kind == "dep_md5" and matcher(ref):
            for path in _deps_with(provenance, row["run_id"], ref):
                result.used.append(hit(row["run_id"], f"dep {path}"))
        elif kind in ("data", "params_hash", "preset") and matcher(ref.rpartition("@")[2]):
            result.used.append(hit(row["run_id"], f"{kind} {ref}"))
    result.produced = _unique(result.produced)
    result.used = _unique(result.used)
    return result


def _outputs_of(provenance: SnapshotStore, run_id: str) -> list[tuple[str, str]]:
    """``(path, md5)`` of the dvc.lock outputs a run's snapshot records."""
    try:
        outputs = provenance.load_snapshot(run_id).get("outputs") or []
    except ItaVcError:
        return []
    return [(str(o["path"]), str(o["md5"])) for o in outputs if o.get("path") and o.get("md5")]


def _deps_with(provenance: SnapshotStore, run_id: str, md5: str) -> list[str]:
    """The dvc.lock deps of a run whose md5 is ``md5`` (``["?"]`` when its snapshot is gone)."""
    try:
        stages = (provenance.load_snapshot(run_id).get("dvc_lock") or {}).get("stages") or {}
    except ItaVcError:
        return ["?"]
    return sorted(
        {
            str(dep.get("path"))
            for body in stages.values()
            for dep in (body or {}).get("deps") or []
            if dep.get("md5") == md5
        }
    ) or ["?"]


def _unique(hits: list[LineageHit]) -> list[LineageHit]:
    """One hit per (run, via), oldest run first (run ids sort by date)."""
    seen = {(h.run_id, h.via): h for h in hits}
    return [seen[k] for k in sorted(seen)]
