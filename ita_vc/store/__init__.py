"""The Persistent Store: atomic, hashed, indexed artifact I/O.

Use :class:`PersistentStore` with an explicit :class:`~ita_vc.workspace.Workspace`, or the
module-level functions below, which use the workspace containing the current directory.
Names are loaded on first use, so importing the hashing helpers does not import pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    import pandas as pd

    from ita_vc.store.artifacts import FORMATS, ArtifactRef, PersistentStore
    from ita_vc.utils.hashing import canonical_json, hash_bytes, hash_canonical, hash_file
    from ita_vc.utils.tablehash import hash_dataframe

_EXPORTS = {
    "FORMATS": "ita_vc.store.artifacts",
    "ArtifactRef": "ita_vc.store.artifacts",
    "PersistentStore": "ita_vc.store.artifacts",
    "canonical_json": "ita_vc.utils.hashing",
    "hash_bytes": "ita_vc.utils.hashing",
    "hash_canonical": "ita_vc.utils.hashing",
    "hash_file": "ita_vc.utils.hashing",
    "hash_dataframe": "ita_vc.utils.tablehash",
}

__all__ = [
    "FORMATS",
    "ArtifactRef",
    "PersistentStore",
    "canonical_json",
    "file_exists",
    "hash_bytes",
    "hash_canonical",
    "hash_dataframe",
    "hash_file",
    "load_binary",
    "load_dataframe",
    "load_json",
    "save_binary",
    "save_dataframe",
    "save_json",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


def _store() -> PersistentStore:
    # lazy: the package's names load on first use (PEP 562), so it imports nothing here
    from ita_vc.store.artifacts import PersistentStore
    from ita_vc.workspace import Workspace

    return PersistentStore(Workspace.discover())


def save_dataframe(
    df: pd.DataFrame,
    kind: str,
    filename: str,
    subdir: str = "",
    fmt: str = "parquet",
    overwrite: bool = True,
    meta: Mapping[str, object] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_dataframe` in the current workspace."""
    return _store().save_dataframe(df, kind, filename, subdir, fmt, overwrite, meta)


def load_dataframe(ref: ArtifactRef | str | os.PathLike[str]) -> pd.DataFrame:
    """:meth:`PersistentStore.load_dataframe` in the current workspace."""
    return _store().load_dataframe(ref)


def save_json(
    obj: object,
    kind: str,
    filename: str,
    subdir: str = "",
    overwrite: bool = True,
    meta: Mapping[str, object] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_json` in the current workspace."""
    return _store().save_json(obj, kind, filename, subdir, overwrite, meta)


def load_json(ref: ArtifactRef | str | os.PathLike[str]) -> Any:
    """:meth:`PersistentStore.load_json` in the current workspace."""
    return _store().load_json(ref)


def save_binary(
    data: bytes,
    kind: str,
    filename: str,
    subdir: str = "",
    overwrite: bool = True,
    meta: Mapping[str, object] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_binary` in the current workspace."""
    return _store().save_binary(data, kind, filename, subdir, overwrite, meta)


def load_binary(ref: ArtifactRef | str | os.PathLike[str]) -> bytes:
    """:meth:`PersistentStore.load_binary` in the current workspace."""
    return _store().load_binary(ref)


def file_exists(ref: ArtifactRef | str | os.PathLike[str]) -> bool:
    """:meth:`PersistentStore.file_exists` in the current workspace."""
    return _store().file_exists(ref)
