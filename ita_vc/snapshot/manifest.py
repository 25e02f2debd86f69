"""Run manifests: every file a run wrote, with its sha256 (seed 004 section 11).

``provenance/<run_id>.manifest.json`` (committed next to the run's snapshot)::

    {"schema_version": 1, "run_id": "bt_...",
     "files": [{"name": "trades.parquet", "path": "results/backtest/trades.parquet",
                "sha256": "sha256:<hex>", "size": 1234, "mime": "application/vnd.apache.parquet"},
               ...]}                                  # sorted by path

``files`` lists each file of each output the run's stages wrote (a directory output file by
file). The snapshot records ``artifacts_manifest_sha``: :func:`manifest_sha`, the ``sha256:`` of
the manifest's canonical JSON (so the file's indentation does not matter). ``mime`` comes from a
fixed table (never from the machine's ``/etc/mime.types``, so two machines write the same bytes).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.errors import IntegrityError, ItaVcError
from ita_vc.utils.hashing import hash_canonical, hash_file, is_hash

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ita_vc.store.artifacts import ArtifactRef
    from ita_vc.workspace import Workspace

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "MANIFEST_SUFFIX",
    "build_manifest",
    "check_manifest",
    "load_manifest",
    "manifest_relpath",
    "manifest_sha",
    "mime_of",
    "save_manifest",
]

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
_MIME = {
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown",
    ".html": "text/html",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".zip": "application/zip",
    ".npy": "application/octet-stream",
}
_FILE_KEYS = ("name", "path", "sha256", "size", "mime")


def mime_of(path: str) -> str:
    """The media type of ``path`` by its suffix (a fixed table; unknown: octet-stream)."""
    return _MIME.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


def manifest_relpath(workspace: Workspace, run_id: str) -> str:
    """``provenance/<run_id>.manifest.json`` (the run id is checked by the caller)."""
    folder = workspace.config.store.kinds["provenance"]
    return PurePosixPath(folder, f"{run_id}{MANIFEST_SUFFIX}").as_posix()


def _label(workspace: Workspace, path: Path) -> str:
    """``path`` relative to the workspace (POSIX), or absolute when outside it."""
    try:
        return path.relative_to(workspace.root).as_posix()
    except ValueError:
        return path.as_posix()


def _files_of(workspace: Workspace, out: str | Path) -> list[Path]:
    """The files of an output (itself when a file): a workspace-relative path or an absolute
    one (``backtest run --out`` may write anywhere)."""
    absolute = Path(out) if Path(out).is_absolute() else workspace.path(str(out))
    if absolute.is_file():
        return [absolute]
    if not absolute.is_dir():
        raise ItaVcError(f"output {out} is missing: the run cannot list its files")
    found: list[Path] = []
    for folder, dirs, names in os.walk(absolute):
        dirs.sort()
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def build_manifest(
    workspace: Workspace, run_id: str, outputs: Iterable[str | Path]
) -> dict[str, Any]:
    """The manifest of ``run_id`` whose stages wrote ``outputs`` (files or folders: relative to
    the workspace, or absolute), hashing each file now. Paths are recorded relative to the
    workspace (absolute for files outside it).

    Raises:
        ItaVcError: an output is missing.
    """
    files = {}
    for out in outputs:
        for path in _files_of(workspace, out):
            rel = _label(workspace, path)
            sha256, size = hash_file(path)
            files[rel] = {
                "name": path.name,
                "path": rel,
                "sha256": sha256,
                "size": size,
                "mime": mime_of(rel),
            }
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "run_id": run_id,
        "files": [files[k] for k in sorted(files)],
    }


def manifest_sha(manifest: Mapping[str, Any]) -> str:
    """``artifacts_manifest_sha``: ``sha256:`` of the manifest's canonical JSON."""
    return hash_canonical(manifest)


def save_manifest(workspace: Workspace, manifest: Mapping[str, Any]) -> ArtifactRef:
    """Write ``provenance/<run_id>.manifest.json`` (never overwriting) through the store."""
    from ita_vc.store.artifacts import PersistentStore  # lazy: the store imports pandas

    run_id = str(manifest["run_id"])
    return PersistentStore(workspace).save_json(
        dict(manifest), "provenance", f"{run_id}{MANIFEST_SUFFIX}", overwrite=False
    )


def check_manifest(manifest: object, run_id: str, where: str) -> dict[str, Any]:
    """``manifest`` if it is a well-formed manifest of ``run_id``.

    Raises:
        IntegrityError: it is not (``where`` names the file in the message).
    """
    if not isinstance(manifest, dict) or manifest.get("run_id") != run_id:
        raise IntegrityError(f"{where}: not the manifest of run {run_id}")
    files = manifest.get("files")
    if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION or not isinstance(files, list):
        raise IntegrityError(f"{where}: unknown manifest schema (schema_version, files)")
    for i, entry in enumerate(files):
        if (
            not isinstance(entry, dict)
            or set(entry) != set(_FILE_KEYS)
            or not isinstance(entry["path"], str)
            or not is_hash(entry["sha256"])
            or not isinstance(entry["size"], int)
        ):
            raise IntegrityError(f"{where}: files[{i}] is not a manifest entry ({entry!r:.200})")
    return manifest


def load_manifest(workspace: Workspace, run_id: str) -> dict[str, Any] | None:
    """The manifest of ``run_id`` (None when the run has none: runs before 0.5).

    Raises:
        IntegrityError: the file exists but is not a manifest of that run.
    """
    rel = manifest_relpath(workspace, run_id)
    if not workspace.path(rel).is_file():
        return None
    from ita_vc.store.artifacts import PersistentStore  # lazy: the store imports pandas

    try:
        data = PersistentStore(workspace).load_json(rel)
    except ItaVcError as exc:
        raise IntegrityError(f"{rel}: {exc}") from exc
    return check_manifest(data, run_id, rel)
