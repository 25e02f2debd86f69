"""The Persistent Store: atomic, hashed, indexed artifact I/O.

Use :class:`PersistentStore` with an explicit :class:`~ita_vc.workspace.Workspace`, or the
module-level functions below, which use the workspace containing the current directory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ita_vc.store.artifacts import FORMATS, ArtifactRef, PersistentStore
from ita_vc.store.hashing import canonical_json, hash_bytes, hash_canonical, hash_file
from ita_vc.store.tablehash import hash_dataframe

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

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

Ref = ArtifactRef | str | os.PathLike[str]


def _store() -> PersistentStore:
    from ita_vc.workspace import Workspace

    return PersistentStore(Workspace.discover())


def save_dataframe(
    df: pd.DataFrame, kind: str, filename: str, subdir: str = "", fmt: str = "parquet",
    overwrite: bool = True, meta: Mapping[str, Any] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_dataframe` in the current workspace."""
    return _store().save_dataframe(df, kind, filename, subdir, fmt, overwrite, meta)


def load_dataframe(ref: Ref) -> pd.DataFrame:
    """:meth:`PersistentStore.load_dataframe` in the current workspace."""
    return _store().load_dataframe(ref)


def save_json(
    obj: Any, kind: str, filename: str, subdir: str = "", overwrite: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_json` in the current workspace."""
    return _store().save_json(obj, kind, filename, subdir, overwrite, meta)


def load_json(ref: Ref) -> Any:
    """:meth:`PersistentStore.load_json` in the current workspace."""
    return _store().load_json(ref)


def save_binary(
    data: bytes, kind: str, filename: str, subdir: str = "", overwrite: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> ArtifactRef:
    """:meth:`PersistentStore.save_binary` in the current workspace."""
    return _store().save_binary(data, kind, filename, subdir, overwrite, meta)


def load_binary(ref: Ref) -> bytes:
    """:meth:`PersistentStore.load_binary` in the current workspace."""
    return _store().load_binary(ref)


def file_exists(ref: Ref) -> bool:
    """:meth:`PersistentStore.file_exists` in the current workspace."""
    return _store().file_exists(ref)
