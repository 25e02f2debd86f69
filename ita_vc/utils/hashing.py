"""The one canonical-JSON and hashing helper.

Every hash ita-vc writes (artifact hashes, rule ``params_hash``, config hashes, snapshot hashes,
table content hashes) comes from this module, and is written ``sha256:<64 lowercase hex>``.

Canonical JSON (``canonical_json``)
    * objects: keys must be strings, sorted by their Unicode code points; no duplicate keys;
    * no whitespace: separators are ``,`` and ``:``;
    * strings: JSON escapes only where JSON requires them (``"``, ``\\``, control characters),
      every other character as UTF-8 (no ``\\uXXXX`` for non-ASCII);
    * numbers, one format: ``bool`` is ``true``/``false``; integers in decimal; a finite float
      that is integral and below 2**53 in magnitude is written as that integer (``2.0`` -> ``2``,
      so YAML's ``2`` and ``2.0`` hash the same); any other finite float uses Python's shortest
      round-trip ``repr`` (``0.1``, ``1e-07``); NaN and infinities are refused;
    * ``None`` is ``null``; tuples are lists; any other type is refused.
    The result is encoded as UTF-8 before hashing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "HASH_PREFIX",
    "canonical_json",
    "format_hash",
    "hash_bytes",
    "hash_canonical",
    "hash_file",
    "hash_file_md5",
    "hash_stream",
    "is_hash",
    "md5_file",
    "parse_hash",
]

HASH_PREFIX = "sha256:"
_CHUNK = 1 << 20
_MAX_EXACT_INT = 2**53


def _encode_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"canonical JSON refuses non-finite number {value!r}")
    if value.is_integer() and abs(value) < _MAX_EXACT_INT:
        return str(int(value))
    return repr(value)


def _encode(value: Any, out: list[str]) -> None:  # noqa: PLR0912 - one branch per JSON type
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_encode_float(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        keys = list(value.keys())
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs string keys, got {key!r}")
        out.append("{")
        for i, key in enumerate(sorted(keys)):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"canonical JSON cannot encode {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (see the module docstring).

    Raises:
        TypeError: a value or key of a type JSON has no form for.
        ValueError: NaN or an infinity.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def format_hash(hexdigest: str) -> str:
    """``sha256:`` + the lowercase hex digest."""
    return HASH_PREFIX + hexdigest.lower()


def is_hash(text: object) -> bool:
    """True if ``text`` is a well-formed ``sha256:<64 lowercase hex>`` string."""
    if not isinstance(text, str) or not text.startswith(HASH_PREFIX):
        return False
    digest = text[len(HASH_PREFIX) :]
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def parse_hash(text: str) -> str:
    """Return the hex digest of a ``sha256:...`` string.

    Raises:
        ValueError: ``text`` is not a well-formed hash.
    """
    if not is_hash(text):
        raise ValueError(f"not a sha256 hash (expected 'sha256:<64 lowercase hex>'): {text!r}")
    return text[len(HASH_PREFIX) :]


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """``sha256:`` hash of raw bytes."""
    return format_hash(hashlib.sha256(data).hexdigest())


def hash_canonical(value: Any) -> str:
    """``sha256:`` hash of the canonical JSON of ``value``."""
    return hash_bytes(canonical_json(value).encode("utf-8"))


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hash a binary stream to its end; returns ``(sha256:..., size_in_bytes)``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return format_hash(digest.hexdigest()), size


def hash_file(path: str | Path) -> tuple[str, int]:
    """Hash a file's bytes; returns ``(sha256:..., size_in_bytes)``."""
    with open(path, "rb") as stream:
        return hash_stream(stream)


def md5_file(path: str | Path, progress: Callable[[int], None] | None = None) -> str:
    """DVC's md5 of a file's bytes (hex): the id of its DVC object. ``progress`` hears the
    size of each chunk read."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def hash_file_md5(path: str | Path) -> tuple[str, str, int]:
    """``(sha256:..., DVC md5 hex, size_in_bytes)`` of a file, in one read."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return format_hash(sha256.hexdigest()), md5.hexdigest(), size
