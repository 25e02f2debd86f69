"""Atomic file writes: a crash at any instant leaves the old file or the new one, never a part.

Protocol: write to a hidden temp file in the target's own folder (same filesystem), flush and
``fsync`` it, move it into place (``os.replace``, or ``os.link`` when replacing is refused so an
existing file is never clobbered, even by a racing writer), then ``fsync`` the folder so the rename
itself is durable. Temp files are named ``.<name>.<random>.ita-tmp``; readers and the index
ignore them, and :func:`remove_stale_temp_files` sweeps those a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ita_vc.utils.hashing import hash_bytes, hash_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "TEMP_SUFFIX",
    "AtomicWriteError",
    "atomic_write_bytes",
    "atomic_write_with",
    "fsync_dir",
    "is_temp_file",
    "remove_stale_temp_files",
]

TEMP_SUFFIX = ".ita-tmp"


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give; mkstemp's 0600 is too tight


class AtomicWriteError(OSError):
    """The target exists and replacing it was refused (``overwrite=False``)."""


def is_temp_file(name: str) -> bool:
    """True for the temp files this module creates."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temp_in(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, _FILE_MODE)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
    else:
        try:
            os.link(tmp, target)  # fails with EEXIST: never replaces, even under a race
        except FileExistsError as exc:
            raise AtomicWriteError(17, "exists and overwrite=False", str(target)) from exc
        tmp.unlink()
    fsync_dir(target.parent)


def atomic_write_bytes(target: Path, data: bytes, *, overwrite: bool = True) -> tuple[str, int]:
    """Atomically write ``data`` to ``target``; returns ``(sha256:..., size)``.

    Raises:
        AtomicWriteError: ``overwrite=False`` and ``target`` exists.
        OSError: the write failed (the target is untouched).
    """
    if not overwrite and target.exists():
        raise AtomicWriteError(17, "exists and overwrite=False", str(target))
    with _temp_in(target) as tmp:
        with open(tmp, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        _publish(tmp, target, overwrite=overwrite)
    return hash_bytes(data), len(data)


def atomic_write_with(
    target: Path,
    writer: Callable[[Path], None],
    *,
    overwrite: bool = True,
    before_publish: Callable[[str, int], None] | None = None,
) -> tuple[str, int]:
    """Atomically produce ``target`` with ``writer(temp_path)``; returns ``(sha256:..., size)``.

    ``before_publish(sha256, size)`` runs after the temp file is complete and durable and before
    it becomes visible (used to write a sidecar that names the new content's hash).

    Raises:
        AtomicWriteError: ``overwrite=False`` and ``target`` exists.
        OSError: the write failed (the target is untouched).
    """
    if not overwrite and target.exists():
        raise AtomicWriteError(17, "exists and overwrite=False", str(target))
    with _temp_in(target) as tmp:
        writer(tmp)
        _fsync_path(tmp)
        sha256, size = hash_file(tmp)
        if before_publish is not None:
            before_publish(sha256, size)
        _publish(tmp, target, overwrite=overwrite)
    return sha256, size


def remove_stale_temp_files(folder: Path, *, older_than_s: float = 3600.0) -> list[Path]:
    """Delete temp files under ``folder`` left by killed writers (older than ``older_than_s``)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    cutoff = time.time() - older_than_s
    for path in folder.rglob(f"*{TEMP_SUFFIX}"):
        if is_temp_file(path.name) and path.stat().st_mtime < cutoff:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
