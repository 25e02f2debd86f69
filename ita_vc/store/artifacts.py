"""The Persistent Store: one safe way to save and load artifacts by config-driven paths.

An artifact lives at ``<kinds[kind]>/<subdir>/<filename>`` (repo-relative). Every write is atomic
(:mod:`ita_vc.utils.atomic`), hashed (``sha256:`` of the file bytes) and indexed in SQLite.
Metadata (``meta``) travels with the artifact so ``index rebuild`` recovers it: inside parquet
files (schema metadata key ``ita_vc``), in a sidecar ``<filename>.ita-meta.json`` for the other
formats. A sidecar records the hash of the file it describes; one that does not match is ignored.
JSON payloads stay unwrapped so that tools such as ``dvc metrics`` read them as they are.
The store holds no business logic: it does not invent run ids or know rules.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ita_vc.errors import IntegrityError, PersistentStoreError, VcsError
from ita_vc.store.index import IndexRow, MetadataIndex, utc_now_iso
from ita_vc.utils.atomic import (
    AtomicWriteError,
    atomic_write_bytes,
    atomic_write_with,
    is_temp_file,
    remove_stale_temp_files,
)
from ita_vc.utils.hashing import canonical_json, hash_bytes, hash_file
from ita_vc.vcs.dvc import cache_dir

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.workspace import Workspace

__all__ = [
    "FORMATS",
    "INDEXED_META_KEYS",
    "SIDECAR_SUFFIX",
    "ArtifactRef",
    "PersistentStore",
    "RebuildReport",
]

_log = logging.getLogger(__name__)

FORMATS: Final = ("parquet", "csv", "json", "png", "binary")
_EXTENSIONS: Final = {"parquet": ".parquet", "csv": ".csv", "json": ".json", "png": ".png"}
SIDECAR_SUFFIX: Final = ".ita-meta.json"
_SIDECAR_SCHEMA: Final = "ita-vc/sidecar/1"
_PARQUET_META_KEY: Final = b"ita_vc"
INDEXED_META_KEYS: Final = ("symbol", "timeframe", "run_id", "rule_version")
_FORBIDDEN_NAMES: Final = {"", ".", ".."}
MAX_NAME_BYTES: Final = 255
"""Longest file or folder name (UTF-8 bytes): what Linux, macOS and Windows filesystems allow."""
MAX_SUBDIR_DEPTH: Final = 32
"""Deepest ``subdir`` (folders)."""
MAX_PATH_BYTES: Final = 1024
"""Longest repo-relative artifact path (UTF-8 bytes)."""
_LOCK_STRIPES: Final = 64
"""Artifact writes are serialised per path through one of this many lock files."""


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A stored artifact: where it is and what its bytes hash to."""

    id: str
    kind: str
    path: str
    format: str
    sha256: str
    size: int
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactRef:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            path=str(data["path"]),
            format=str(data["format"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            meta=dict(data.get("meta") or {}),
        )


_STORE_LOCK_WAIT_S: Final = 120.0


def _stripe_lock(path: str) -> str:
    stripe = int(hashlib.sha256(path.encode("utf-8")).hexdigest()[:8], 16) % _LOCK_STRIPES
    return f"locks/store-{stripe:02d}"


def file_id_for(path: str) -> str:
    """Stable artifact id of a repo-relative path (survives ``index rebuild``)."""
    return "f_" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]


def _format_of(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    for fmt, ext in _EXTENSIONS.items():
        if suffix == ext:
            return fmt
    return "binary"


def _json_default(value: object) -> NoReturn:
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def _dump_json(obj: object) -> bytes:
    """Pretty, deterministic JSON (sorted keys, 2-space indent, final newline)."""

    def check(value: object) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"JSON has no form for {value!r}; use null")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"JSON object keys must be strings, got {key!r}")
                check(item)
        elif isinstance(value, list | tuple):
            for item in value:
                check(item)

    check(obj)
    text = json.dumps(
        obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default
    )
    return (text + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What ``index rebuild`` indexed, and the files it skipped with the reason."""

    count: int
    skipped: tuple[tuple[str, str], ...] = ()


class PersistentStore:
    """Save and load artifacts of a workspace (atomic, hashed, indexed)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.index = MetadataIndex(workspace.index_path)
        self.log_file = workspace.setup_logging()

    # -- paths -----------------------------------------------------------------------------
    def _kind_root(self, kind: str) -> str:
        kinds = self.workspace.config.store.kinds
        if kind not in kinds:
            raise self._fail(
                f"unknown artifact kind {kind!r} (configured kinds: {', '.join(sorted(kinds))}; "
                "add one under store.kinds in configs/config.yaml)"
            )
        return kinds[kind]

    def _check_name(self, label: str, value: object) -> None:
        if not isinstance(value, str):
            raise self._fail(f"{label} must be a string, got {type(value).__name__}")
        if "\\" in value or any(ord(c) < 32 or c == "\x7f" for c in value):
            raise self._fail(f"{label} {value!r} may not contain '\\' or control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self._fail(
                f"{label} {value!r} is not valid Unicode text (a lone "
                "surrogate); names are stored as UTF-8"
            ) from None
        if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
            raise self._fail(f"{label} {value!r} must be relative, not absolute")
        parts = [p for p in PurePosixPath(value).parts if p != "."]
        if ".." in parts:
            raise self._fail(f"{label} {value!r} may not contain '..'")
        for part in parts:
            size = len(part.encode("utf-8"))
            if size > MAX_NAME_BYTES:
                raise self._fail(
                    f"{label}: the name {part[:40]!r}... is {size} bytes, the "
                    f"limit is {MAX_NAME_BYTES} (filesystems refuse longer names)"
                )

    def _target(self, kind: str, filename: str, subdir: str, fmt: str) -> str:
        root = self._kind_root(kind)
        self._check_name("filename", filename)
        self._check_name("subdir", subdir)
        sub_parts = [p for p in PurePosixPath(subdir).parts if p != "."]
        if len(sub_parts) > MAX_SUBDIR_DEPTH:
            raise self._fail(
                f"subdir is {len(sub_parts)} folders deep, the limit is {MAX_SUBDIR_DEPTH}"
            )
        hidden = [p for p in sub_parts if p.startswith(".")]
        if hidden:
            raise self._fail(
                f"subdir {subdir!r}: hidden folder {hidden[0]!r} (names starting "
                "with '.' are not indexed; use a plain name)"
            )
        if "/" in filename or filename in _FORBIDDEN_NAMES or filename.startswith("."):
            raise self._fail(f"filename {filename!r} must be a plain, non-hidden file name")
        if filename.endswith(SIDECAR_SUFFIX) or is_temp_file("." + filename):
            raise self._fail(f"filename {filename!r} uses a suffix reserved by the store")
        ext = _EXTENSIONS.get(fmt)
        suffix = PurePosixPath(filename).suffix.lower()
        if ext is not None and suffix != ext:
            if suffix in _EXTENSIONS.values():
                raise self._fail(f"filename {filename!r} does not match format {fmt!r}")
            filename += ext
        path = PurePosixPath(root, *sub_parts, filename).as_posix()
        if len(path.encode("utf-8")) > MAX_PATH_BYTES:
            raise self._fail(
                f"the path is {len(path.encode('utf-8'))} bytes, the limit is {MAX_PATH_BYTES}",
                path[:80] + "...",
            )
        return path

    def _check_not_reserved(self, path: str) -> None:
        """Canonical candles are written only by the candle importer (validated, merged)."""
        candles = self.workspace.config.store.kinds.get("candles")
        if candles and (path == candles or path.startswith(candles + "/")):
            raise self._fail(
                f"{candles}/ is the canonical candle store: candles are written only by "
                "`ita-vc data import` (ita_vc.candles.CandleStore.import_files), which validates "
                "and merges them; save other tables under another kind (e.g. 'raw')",
                path,
            )

    def _fail(
        self,
        message: str,
        path: str | None = None,
        cause: BaseException | None = None,
    ) -> PersistentStoreError:
        error = PersistentStoreError(message, path=path)
        _log.error("store error: %s", error, exc_info=cause)
        return error

    def _resolve(self, ref: ArtifactRef | str | os.PathLike[str]) -> tuple[str, ArtifactRef | None]:
        if isinstance(ref, ArtifactRef):
            return ref.path, ref
        path = Path(ref)
        rel = self.workspace.relpath(path if path.is_absolute() else self.workspace.root / path)
        return rel, None

    # -- writing ---------------------------------------------------------------------------
    def _check_meta(self, meta: Mapping[str, object] | None, path: str) -> dict[str, Any]:
        if meta is None:
            return {}
        if not isinstance(meta, Mapping):
            raise self._fail(f"meta must be a mapping, got {type(meta).__name__}", path)
        try:
            canonical_json(meta)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"meta is not JSON-serialisable: {exc}", path, exc) from exc
        return json.loads(canonical_json(meta))  # type: ignore[no-any-return]

    def _sidecar_path(self, path: str) -> Path:
        return self.workspace.path(path + SIDECAR_SUFFIX)

    def _sidecar_writer(self, path: str, record: dict[str, Any]) -> Any:
        """A ``before_publish`` hook that records ``record`` for the new content's hash.

        The sidecar keeps the entry of the file currently visible too, so whichever file a crash
        leaves in place still finds its metadata.
        """
        sidecar = self._sidecar_path(path)
        target = self.workspace.path(path)

        def write(sha256: str, size: int) -> None:
            entries: dict[str, Any] = {}
            old = self._read_sidecar_entries(sidecar)
            if target.exists() and old:
                current, _ = hash_file(target)
                if current in old:
                    entries[current] = old[current]
            entries[sha256] = {**record, "size": size}
            doc = {"schema": _SIDECAR_SCHEMA, "entries": entries}
            atomic_write_bytes(sidecar, _dump_json(doc))

        return write

    @staticmethod
    def _read_sidecar_entries(sidecar: Path) -> dict[str, Any]:
        try:
            doc = json.loads(sidecar.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("schema") != _SIDECAR_SCHEMA:
            return {}
        entries = doc.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _write(
        self,
        kind: str,
        path: str,
        fmt: str,
        meta: dict[str, Any],
        overwrite: bool,
        produce: Any,
        *,
        sidecar_record: dict[str, Any] | None = None,
        reserved_ok: bool = False,
    ) -> ArtifactRef:
        if not reserved_ok:
            self._check_not_reserved(path)
        target = self.workspace.contained(path)
        self.workspace.contained(path + SIDECAR_SUFFIX)
        # file, sidecar and index row of one artifact change together: one writer per path
        with self.workspace.lock(
            name=_stripe_lock(path), timeout=_STORE_LOCK_WAIT_S, purpose=f"writing {path}"
        ):
            return self._write_locked(
                kind, path, target, fmt, meta, overwrite, produce, sidecar_record
            )

    def _write_locked(
        self,
        kind: str,
        path: str,
        target: Path,
        fmt: str,
        meta: dict[str, Any],
        overwrite: bool,
        produce: Any,
        sidecar_record: dict[str, Any] | None,
    ) -> ArtifactRef:
        if not overwrite and target.exists():
            raise self._fail("already exists and overwrite=False", path)
        needs_sidecar = sidecar_record is not None or (
            fmt != "parquet" and (meta or self._sidecar_path(path).exists())
        )
        record = {"kind": kind, "meta": meta, **(sidecar_record or {})}
        hook = self._sidecar_writer(path, record) if needs_sidecar else None
        try:
            if isinstance(produce, bytes):
                if hook is not None:
                    hook(hash_bytes(produce), len(produce))
                sha256, size = atomic_write_bytes(target, produce, overwrite=overwrite)
            else:
                sha256, size = atomic_write_with(
                    target, produce, overwrite=overwrite, before_publish=hook
                )
        except AtomicWriteError as exc:
            raise self._fail("already exists and overwrite=False", path, exc) from exc
        except OSError as exc:
            raise self._fail(f"write failed: {exc.strerror or exc}", path, exc) from exc
        ref = ArtifactRef(file_id_for(path), kind, path, fmt, sha256, size, meta)
        self.index.upsert(self._row(ref, utc_now_iso()))
        dupes = [r.path for r in self.index.query(sha256=sha256) if r.path != path]
        if dupes:
            _log.info("duplicate content: %s has the same sha256 as %s", path, ", ".join(dupes))
        _log.info("saved %s (%s, %d bytes, %s)", path, fmt, size, sha256)
        return ref

    @staticmethod
    def _row(ref: ArtifactRef, created_at: str) -> IndexRow:
        def text(key: str) -> str | None:
            value = ref.meta.get(key)
            return None if value is None else str(value)

        return IndexRow(
            file_id=ref.id,
            path=ref.path,
            kind=ref.kind,
            format=ref.format,
            sha256=ref.sha256,
            size=ref.size,
            symbol=text("symbol"),
            timeframe=text("timeframe"),
            run_id=text("run_id"),
            rule_version=text("rule_version"),
            created_at=created_at,
            meta_json=canonical_json(dict(ref.meta)),
        )

    def save_dataframe(
        self,
        df: pd.DataFrame,
        kind: str,
        filename: str,
        subdir: str = "",
        fmt: str = "parquet",
        overwrite: bool = True,
        meta: Mapping[str, object] | None = None,
    ) -> ArtifactRef:
        """Save a table as parquet (default; zstd unless configured) or CSV.

        The index is not stored: a frame with a non-default index is saved with its columns only
        (call ``reset_index()`` first to keep it). CSV keeps dtypes in the sidecar and writes
        floats in shortest round-trip form, so ``load_dataframe`` gives back equal values.
        The canonical candle folder (kind ``candles``) is reserved for the candle importer.

        Raises:
            PersistentStoreError: bad kind/format/filename, a reserved path, unsupported data,
                or a failed write.
        """
        return self._save_dataframe(df, kind, filename, subdir, fmt, overwrite, meta)

    def _save_dataframe(
        self,
        df: pd.DataFrame,
        kind: str,
        filename: str,
        subdir: str = "",
        fmt: str = "parquet",
        overwrite: bool = True,
        meta: Mapping[str, object] | None = None,
        *,
        reserved_ok: bool = False,
    ) -> ArtifactRef:
        import pandas as pd  # lazy: pandas/pyarrow only for table artifacts (the store is light)

        if fmt not in ("parquet", "csv"):
            raise self._fail(f"unknown table format {fmt!r} (use 'parquet' or 'csv')")
        if not isinstance(df, pd.DataFrame):
            raise self._fail(f"save_dataframe needs a pandas DataFrame, got {type(df).__name__}")
        path = self._target(kind, filename, subdir, fmt)
        clean_meta = self._check_meta(meta, path)
        if any(not isinstance(c, str) for c in df.columns) or df.columns.has_duplicates:
            raise self._fail("column names must be unique strings", path)
        if not reserved_ok:
            self._check_not_reserved(path)
        if fmt == "parquet":
            writer = self._parquet_writer(df, kind, clean_meta, path)
            return self._write(
                kind, path, fmt, clean_meta, overwrite, writer, reserved_ok=reserved_ok
            )
        dtypes = {str(c): str(t) for c, t in df.dtypes.items()}

        def write_csv(tmp: Path) -> None:
            df.to_csv(tmp, index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S.%f")

        return self._write(
            kind,
            path,
            fmt,
            clean_meta,
            overwrite,
            write_csv,
            sidecar_record={"dtypes": dtypes},
            reserved_ok=reserved_ok,
        )

    def _parquet_writer(
        self,
        df: pd.DataFrame,
        kind: str,
        meta: dict[str, Any],
        path: str,
    ) -> Any:
        import pyarrow as pa  # lazy: table artifacts only
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise self._fail(f"cannot convert the frame to parquet: {exc}", path, exc) from exc
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_PARQUET_META_KEY] = canonical_json({"kind": kind, "meta": meta}).encode()
        table = table.replace_schema_metadata(schema_meta)
        compression = self.workspace.config.store.parquet_compression

        def write(tmp: Path) -> None:
            pq.write_table(table, tmp, compression=None if compression == "none" else compression)

        return write

    def save_json(
        self,
        obj: object,
        kind: str,
        filename: str,
        subdir: str = "",
        overwrite: bool = True,
        meta: Mapping[str, object] | None = None,
    ) -> ArtifactRef:
        """Save a JSON document (sorted keys, 2-space indent; NaN/inf refused).

        Raises:
            PersistentStoreError: not serialisable, bad path, or a failed write.
        """
        path = self._target(kind, filename, subdir, "json")
        clean_meta = self._check_meta(meta, path)
        try:
            payload = _dump_json(obj)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"not JSON-serialisable: {exc}", path, exc) from exc
        return self._write(kind, path, "json", clean_meta, overwrite, payload)

    def save_binary(
        self,
        data: bytes,
        kind: str,
        filename: str,
        subdir: str = "",
        overwrite: bool = True,
        meta: Mapping[str, object] | None = None,
    ) -> ArtifactRef:
        """Save raw bytes (PNG charts, screenshots, anything); the format is ``png`` or ``binary``.

        Raises:
            PersistentStoreError: not bytes, bad path, or a failed write.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise self._fail(f"save_binary needs bytes, got {type(data).__name__}")
        fmt = _format_of(filename)
        if fmt not in ("png", "binary"):
            method = "save_dataframe" if fmt in ("parquet", "csv") else f"save_{fmt}"
            raise self._fail(f"{filename!r} is a {fmt} name: use {method}")
        path = self._target(kind, filename, subdir, fmt)
        clean_meta = self._check_meta(meta, path)
        return self._write(kind, path, fmt, clean_meta, overwrite, bytes(data))

    # -- reading ---------------------------------------------------------------------------
    def _read_verified(self, ref: ArtifactRef | str | os.PathLike[str]) -> tuple[str, bytes]:
        path, known = self._resolve(ref)
        try:
            data = self.workspace.path(path).read_bytes()
        except FileNotFoundError as exc:
            raise self._fail("no such artifact", path, exc) from exc
        except OSError as exc:
            raise self._fail(f"read failed: {exc.strerror or exc}", path, exc) from exc
        if known is not None and hash_bytes(data) != known.sha256:
            _log.error("integrity error: %s does not match %s", path, known.sha256)
            raise IntegrityError(
                f"{path}: content does not match the recorded {known.sha256} "
                "(changed or corrupted since it was saved)"
            )
        return path, data

    def load_dataframe(self, ref: ArtifactRef | str | os.PathLike[str]) -> pd.DataFrame:
        """Load a parquet or CSV artifact (verified against ``ref.sha256`` when given a ref).

        Raises:
            PersistentStoreError: missing or unreadable. IntegrityError: hash mismatch.
        """
        import pandas as pd  # lazy: table artifacts only
        import pyarrow as pa
        import pyarrow.parquet as pq

        path, data = self._read_verified(ref)
        fmt = _format_of(path)
        try:
            if fmt == "parquet":
                frame: pd.DataFrame = pq.read_table(pa.BufferReader(data)).to_pandas()
                return frame
            if fmt == "csv":
                entry = self._read_sidecar_entries(self._sidecar_path(path)).get(hash_bytes(data))
                return _read_csv(io.BytesIO(data), (entry or {}).get("dtypes") or {})
        except (pa.ArrowException, ValueError, pd.errors.ParserError) as exc:
            raise self._fail(f"cannot read {fmt}: {exc}", path, exc) from exc
        raise self._fail(f"not a table artifact (format {fmt})", path)

    def load_json(self, ref: ArtifactRef | str | os.PathLike[str]) -> Any:
        """Load a JSON artifact.

        Raises:
            PersistentStoreError: missing or invalid JSON. IntegrityError: hash mismatch.
        """
        path, data = self._read_verified(ref)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise self._fail(f"invalid JSON: {exc}", path, exc) from exc

    def load_binary(self, ref: ArtifactRef | str | os.PathLike[str]) -> bytes:
        """Load an artifact's raw bytes.

        Raises:
            PersistentStoreError: missing. IntegrityError: hash mismatch.
        """
        return self._read_verified(ref)[1]

    def file_exists(self, ref: ArtifactRef | str | os.PathLike[str]) -> bool:
        """True if the artifact's file is present in the workspace."""
        path, _ = self._resolve(ref)
        return self.workspace.path(path).is_file()

    def ref_for(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """The :class:`ArtifactRef` of a stored file, from the index (or the file if unindexed).

        Raises:
            PersistentStoreError: no such file.
        """
        rel, _ = self._resolve(path)
        row = self.index.get(rel)
        if row is not None:
            return ArtifactRef(
                row.file_id,
                row.kind,
                row.path,
                row.format,
                row.sha256,
                row.size,
                json.loads(row.meta_json),
            )
        scanned = self._scan_file(rel)
        if scanned is None:
            raise self._fail("no such artifact", rel)
        return scanned[0]

    # -- the index as a derived cache ------------------------------------------------------
    def _kind_of(self, path: str) -> str | None:
        best: tuple[int, str] | None = None
        for kind, root in self.workspace.config.store.kinds.items():
            if path.startswith(root + "/"):
                depth = len(PurePosixPath(root).parts)
                if best is None or depth > best[0]:
                    best = (depth, kind)
        return None if best is None else best[1]

    def _scan_file(self, path: str) -> tuple[ArtifactRef, str] | None:
        kind = self._kind_of(path)
        absolute = self.workspace.path(path)
        if kind is None or not absolute.is_file():
            return None
        fmt = _format_of(path)
        sha256, size = hash_file(absolute)
        meta: dict[str, Any] = {}
        created_at = None
        if fmt == "parquet":
            meta, kind = _parquet_meta(absolute, kind)
        entry = self._read_sidecar_entries(self._sidecar_path(path)).get(sha256)
        if isinstance(entry, dict):
            meta = dict(entry.get("meta") or meta)
            kind = str(entry.get("kind") or kind)
        if created_at is None:
            mtime = datetime.fromtimestamp(absolute.stat().st_mtime, UTC)
            created_at = mtime.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ref = ArtifactRef(file_id_for(path), kind, path, fmt, sha256, size, meta)
        return ref, created_at

    def iter_files(self, skipped: list[tuple[str, str]] | None = None) -> Iterator[str]:
        """Repo-relative paths of every artifact file below the configured kind folders.

        Paths are taken as they are (a symlink is not resolved: a DVC checkout with
        ``cache.type symlink`` links files into the cache). A name that is not valid UTF-8 or a
        symlink leading outside the workspace and the DVC cache is not an artifact: it is
        appended to ``skipped`` as ``(path, reason)``.
        """
        seen: set[str] = set()
        roots = sorted(set(self.workspace.config.store.kinds.values()))
        cache: list[Path | None] = []
        for root in roots:
            base = self.workspace.path(root)
            if not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                        continue
                    absolute = Path(dirpath) / name
                    rel = absolute.relative_to(self.workspace.root).as_posix()
                    reason = self._unindexable(absolute, name, cache)
                    if reason is not None:
                        if skipped is not None:
                            skipped.append((rel.encode("utf-8", "replace").decode(), reason))
                        continue
                    if rel not in seen:
                        seen.add(rel)
                        yield rel

    def _unindexable(self, absolute: Path, name: str, cache: list[Path | None]) -> str | None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return "the file name is not valid UTF-8"
        if not absolute.is_symlink():
            return None
        target = absolute.resolve()
        if not target.is_file():
            return "a broken symbolic link"
        if target.is_relative_to(self.workspace.root):
            return None
        if not cache:
            try:
                cache.append(cache_dir(self.workspace.root).resolve())
            except VcsError:
                cache.append(None)
        if cache[0] is not None and target.is_relative_to(cache[0]):
            return None  # a DVC checkout with cache.type symlink
        return f"a symbolic link to {target}, outside the workspace and the DVC cache"

    def rebuild(self) -> RebuildReport:
        """Recreate the index from the files in the workspace.

        Also removes temp files that killed writers left behind (older than one hour). Files
        that cannot be artifacts (see :meth:`iter_files`) are skipped and reported.

        Raises:
            PersistentStoreError: the index cannot be written.
        """
        for root in set(self.workspace.config.store.kinds.values()):
            remove_stale_temp_files(self.workspace.path(root))
        skipped: list[tuple[str, str]] = []

        def rows() -> Iterator[IndexRow]:
            for rel in self.iter_files(skipped):
                scanned = self._scan_file(rel)
                if scanned is not None:
                    yield self._row(*scanned)

        try:
            count = self.index.replace_all(rows())
        except OSError as exc:
            raise self._fail(f"cannot rebuild the index: {exc}", str(self.index.path), exc) from exc
        _log.info("index rebuilt: %d artifacts, %d skipped", count, len(skipped))
        for rel, reason in skipped:
            _log.warning("index rebuild skipped %s: %s", rel, reason)
        return RebuildReport(count, tuple(skipped))

    def rebuild_index(self) -> int:
        """:meth:`rebuild`, returning the number of indexed artifacts."""
        return self.rebuild().count

    def list(
        self, *, kind: str | None = None, symbol: str | None = None, run_id: str | None = None
    ) -> list[ArtifactRef]:
        """Indexed artifacts matching the filters, by path."""
        return [
            ArtifactRef(
                r.file_id, r.kind, r.path, r.format, r.sha256, r.size, json.loads(r.meta_json)
            )
            for r in self.index.query(kind=kind, symbol=symbol, run_id=run_id)
        ]


def _parquet_meta(path: Path, default_kind: str) -> tuple[dict[str, Any], str]:
    import pyarrow.parquet as pq  # lazy: table artifacts only

    try:
        schema_meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable parquet file is still an artifact
        return {}, default_kind
    raw = schema_meta.get(_PARQUET_META_KEY)
    if raw is None:
        return {}, default_kind
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}, default_kind
    return dict(doc.get("meta") or {}), str(doc.get("kind") or default_kind)


def _read_csv(stream: io.BytesIO, dtypes: Mapping[str, str]) -> pd.DataFrame:
    import pandas as pd  # lazy: table artifacts only

    parse_dates = [c for c, t in dtypes.items() if t.startswith("datetime64")]
    simple = {
        c: t
        for c, t in dtypes.items()
        if not t.startswith(("datetime64", "timedelta64")) and t not in ("str", "string", "object")
    }
    text_cols = {c: "string" for c, t in dtypes.items() if t in ("str", "string", "object")}
    # pandas >= 3 parses floats exactly by default (and deprecates the option)
    exact: dict[str, Any] = (
        {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    )
    reader: Any = pd.read_csv
    df: Any = reader(
        stream,
        dtype={**simple, **text_cols} or None,
        keep_default_na=False,
        na_values=[""],
        **exact,
    )
    for col in parse_dates:
        df[col] = pd.to_datetime(df[col], utc="UTC" in dtypes[col], format="ISO8601")
        if "UTC" not in dtypes[col]:
            df[col] = df[col].astype(dtypes[col])
        else:
            unit = dtypes[col].split("[", 1)[1].split(",", 1)[0]
            df[col] = df[col].dt.as_unit(unit)
    for col, t in dtypes.items():
        if t.startswith("timedelta64"):
            df[col] = pd.to_timedelta(df[col]).astype(t)
        elif t in ("str", "object"):
            df[col] = df[col].astype(t)
    result: pd.DataFrame = df
    return result
