"""An encoding-independent content hash for tables (pandas DataFrames).

The same table saved as parquet by any pyarrow version, or as CSV, loads back to the same
values and so hashes the same: the hash is taken over the *values*, never over file bytes.

Canonical form ``ita-vc/table/v1`` (all integers little-endian):

* header: the ASCII bytes ``ita-vc/table/v1``, a zero byte, then ``nrows`` and ``ncols`` as u64;
* then each column, in frame order:
  ``u64 len + UTF-8 name``, ``u64 len + ASCII logical type``, ``nrows`` validity bytes
  (1 = value, 0 = null), then the values with every null slot zeroed:

  ==================  ==========================================================================
  logical type        values
  ==================  ==========================================================================
  ``int64``           every signed/unsigned/nullable integer dtype, as i64
  ``float64``         float16/32/64 and nullable Float, as IEEE-754 f64; NaN counts as null
  ``bool``            bool and nullable boolean, one byte 0/1
  ``string``          str/object-of-str/string/categorical labels: u64 byte length per row,
                      then all UTF-8 bytes concatenated
  ``timestamp[ns]``   naive datetime64 of any unit, as i64 nanoseconds
  ``timestamp[ns,UTC]`` tz-aware datetimes converted to UTC, as i64 nanoseconds
  ``duration[ns]``    timedelta64, as i64 nanoseconds
  ==================  ==========================================================================

* the index is not part of a table (the store saves columns only); row order is.

The digest is ``sha256:`` + sha256 of that byte stream. Other column types (mixed objects,
nested values) are refused rather than hashed ambiguously.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any

from ita_vc.utils.hashing import format_hash

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_HASH_VERSION", "UnsupportedColumnError", "hash_dataframe", "logical_type"]

TABLE_HASH_VERSION = "ita-vc/table/v1"


class UnsupportedColumnError(TypeError):
    """A column has a type the canonical table form does not define."""


def _u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _u64(len(raw)) + raw


def logical_type(series: pd.Series[Any]) -> str:  # noqa: PLR0911 - one return per type
    """The canonical logical type of a column (see the module docstring).

    Raises:
        UnsupportedColumnError: no canonical type fits the column.
    """
    import pandas as pd
    from pandas.api import types as ptypes

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "string" if ptypes.is_string_dtype(dtype.categories.dtype) else "unsupported"
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_integer_dtype(dtype):
        return "int64"
    if ptypes.is_float_dtype(dtype):
        return "float64"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamp[ns,UTC]"
    if ptypes.is_datetime64_dtype(dtype):
        return "timestamp[ns]"
    if ptypes.is_timedelta64_dtype(dtype):
        return "duration[ns]"
    if ptypes.is_string_dtype(dtype):
        non_null = series.dropna()
        if all(isinstance(v, str) for v in non_null):
            return "string"
    raise UnsupportedColumnError(
        f"column {series.name!r} has dtype {dtype} which the canonical table form does not define"
        " (use int, float, bool, string or datetime columns)"
    )


def _column_bytes(series: Any, kind: str) -> tuple[bytes, list[bytes]]:
    import numpy as np
    import pandas as pd

    valid = ~series.isna().to_numpy(dtype=bool)
    validity = valid.astype("u1").tobytes()
    if kind == "string":
        import pyarrow as pa

        texts = series.astype(object).where(valid, "").to_numpy(dtype=object)
        array = pa.array(texts, type=pa.large_string())
        offsets = np.frombuffer(array.buffers()[1], dtype="<i8", count=len(array) + 1)
        lengths = np.diff(offsets).astype("<u8")
        data = array.buffers()[2]
        payload = b"" if data is None else bytes(data)[int(offsets[0]) : int(offsets[-1])]
        return validity, [lengths.tobytes(), payload]
    if kind == "bool":
        flags = series.to_numpy(dtype=bool, na_value=False)
        return validity, [flags.astype("u1").tobytes()]
    if kind == "int64":
        ints = series.to_numpy(dtype="int64", na_value=0)
        return validity, [ints.astype("<i8").tobytes()]
    if kind == "float64":
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        return validity, [np.where(valid, floats, 0.0).astype("<f8").tobytes()]
    if kind == "timestamp[ns,UTC]":
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if kind.startswith(("timestamp", "duration")):
        unit = "datetime64[ns]" if kind.startswith("timestamp") else "timedelta64[ns]"
        stamps = pd.Series(series).astype(np.dtype(unit)).to_numpy().view("int64").copy()
        stamps[~valid] = 0
        return validity, [stamps.astype("<i8").tobytes()]
    raise UnsupportedColumnError(f"no encoding for logical type {kind}")  # pragma: no cover


def hash_dataframe(df: pd.DataFrame) -> str:
    """``sha256:`` hash of a table's canonical form (independent of file encoding).

    Raises:
        UnsupportedColumnError: a column type the canonical form does not define, or
            non-string column names.
    """
    digest = hashlib.sha256()
    digest.update(TABLE_HASH_VERSION.encode("ascii") + b"\0")
    digest.update(_u64(len(df)) + _u64(len(df.columns)))
    for name in df.columns:
        if not isinstance(name, str):
            raise UnsupportedColumnError(f"column names must be strings, got {name!r}")
        series = df[name]
        if not hasattr(series, "dtype"):
            raise UnsupportedColumnError(f"duplicate column name {name!r}")
        kind = logical_type(series)
        validity, chunks = _column_bytes(series, kind)
        digest.update(_lp(name) + _lp(kind))
        digest.update(validity)
        for chunk in chunks:
            digest.update(chunk)
    return format_hash(digest.hexdigest())
