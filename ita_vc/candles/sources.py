"""Opening candle files: regular files only, and zip archives of one member within limits.

A candle file is a regular file (a folder, a FIFO or a device is refused before anything is
read: a FIFO would block forever). A ``.zip`` (how data.binance.vision ships its dumps) must hold
exactly one plain member (no folder, no absolute or ``..`` name, not encrypted) whose declared
size stays within two limits, checked from the archive's directory before a byte is inflated:

* :data:`MAX_MEMBER_BYTES` (4 GiB) uncompressed;
* :data:`MAX_EXPANSION` (100x) uncompressed/compressed, for members over
  :data:`EXPANSION_CHECK_FROM` (1 MiB). Real kline dumps inflate about 3x (a market that never
  trades, every line the same price and zero volume, about 21x); a zip bomb inflates hundreds
  or thousands of times.

Python's reader never inflates past the declared size, so the checks bound the work. Other
compressed files (``.gz``, ``.bz2``, ``.xz``...) declare no trustworthy size: they are refused by
name, "decompress it first".
"""

from __future__ import annotations

import contextlib
import lzma
import os
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "EXPANSION_CHECK_FROM",
    "MAX_EXPANSION",
    "MAX_MEMBER_BYTES",
    "check_candle_path",
    "first_line",
    "is_zip",
    "open_candle_source",
]

MAX_MEMBER_BYTES = 4 * 1024**3
MAX_EXPANSION = 100
EXPANSION_CHECK_FROM = 1024**2
_FIRST_LINE_LIMIT = 64 * 1024
_UNREAD_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".lzma", ".zst", ".tar", ".7z", ".rar")
_READABLE_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# what a broken archive raises while it is inflated (CRC mismatch, truncated or corrupt data)
_CORRUPT = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError)


def is_zip(path: Path) -> bool:
    """True for a ``.zip`` file name."""
    return path.suffix.lower() == ".zip"


def check_candle_path(path: Path) -> None:
    """Refuse anything but an existing, readable regular file (symlinks to one are fine).

    Raises:
        DataValidationError: missing, a folder, a FIFO/device/socket, a compressed file other
            than a zip, or not readable.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataValidationError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise DataValidationError(
            f"{path}: is a directory, not a candle file; give the files in it "
            f"(e.g. {path / '*.csv'})"
        )
    if not stat.S_ISREG(mode):
        raise DataValidationError(f"{path}: not a regular file (a FIFO, device or socket)")
    if path.suffix.lower() in _UNREAD_SUFFIXES:
        raise DataValidationError(
            f"{path}: {path.suffix} files are not read (only .zip archives, whose sizes are "
            "checked first); decompress it first"
        )
    if not os.access(path, os.R_OK):
        raise DataValidationError(f"{path}: cannot read: permission denied")


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member cannot be read as a candle file (None: it can)."""
    name, size, packed = info.filename, info.file_size, info.compress_size
    parts = PurePosixPath(name.replace("\\", "/")).parts
    ratio = f"{size / packed:,.0f}x" if packed else "from 0 bytes"
    checks = (
        (info.is_dir(), "is a folder, not a CSV file"),
        (
            name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"),
            "has an absolute or '..' path",
        ),
        (bool(info.flag_bits & 0x1), "is encrypted"),
        (
            info.compress_type not in _READABLE_METHODS,
            f"uses compression method {info.compress_type}, which cannot be read",
        ),
        (
            size > MAX_MEMBER_BYTES,
            f"declares {size:,} bytes uncompressed, over the limit of {MAX_MEMBER_BYTES:,} bytes"
            + (f" ({MAX_MEMBER_BYTES / 1024**3:g} GiB)" if MAX_MEMBER_BYTES >= 1024**3 else ""),
        ),
        (
            size > EXPANSION_CHECK_FROM and size > MAX_EXPANSION * packed,
            f"expands {ratio} ({packed:,} -> {size:,} bytes), over the limit of {MAX_EXPANSION}x "
            "(a zip bomb?)",
        ),
    )
    return next((message for failed, message in checks if failed), None)


def _zip_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    members = archive.infolist()
    if len(members) != 1:
        shown = ", ".join(repr(m.filename) for m in members[:5])
        more = f" (and {len(members) - 5} more)" if len(members) > 5 else ""
        raise DataValidationError(
            f"{path}: a zip must hold exactly one CSV file, this one holds {len(members)}"
            + (f": {shown}{more}" if members else "")
        )
    info = members[0]
    problem = _member_problem(info)
    if problem:
        raise DataValidationError(f"{path}: member {info.filename!r} {problem}; nothing was read")
    return info


@contextlib.contextmanager
def open_candle_source(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream of the file's content: the file itself, or a zip's single member.

    Corrupt archive data met while reading the stream (a CRC mismatch, a truncated member)
    becomes a :class:`DataValidationError` naming the file.

    Raises:
        DataValidationError: see :func:`check_candle_path`; not a zip archive; a member refused
            by the rules above; corrupt data.
    """
    check_candle_path(path)
    try:
        if not is_zip(path):
            with open(path, "rb") as stream:
                yield stream
            return
        with zipfile.ZipFile(path) as archive:
            info = _zip_member(archive, path)
            try:
                member = archive.open(info)
            except (NotImplementedError, RuntimeError) as exc:  # unsupported zip features
                raise DataValidationError(
                    f"{path}: cannot read member {info.filename!r}: {exc}"
                ) from exc
            with member:
                yield member
    except _CORRUPT as exc:
        raise DataValidationError(f"{path}: not a readable zip archive: {exc}") from exc
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def first_line(path: Path) -> str:
    """The first line of the file (of the zip's member), at most 64 KiB of it, as text.

    Raises:
        DataValidationError: as :func:`open_candle_source`.
    """
    with open_candle_source(path) as stream:
        return stream.readline(_FIRST_LINE_LIMIT).decode("utf-8", errors="replace")
