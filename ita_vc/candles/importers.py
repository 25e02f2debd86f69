"""Readers for candle files: Binance kline dumps, Bybit kline exports, generic CSV/parquet.

:func:`read_candle_file` (public) returns the six input columns ``ts_utc`` (int64 epoch ms),
``open, high, low, close, volume`` (float64, NaN where a value was not numeric), in the file's
order. The importer uses :func:`read_candle_rows`, whose frame also carries ``_row`` (the 1-based
data row of the source file, for error messages). Sorting, merging and validation happen
afterwards. Files are opened through :mod:`ita_vc.candles.sources` (regular files, zip limits).

* Binance (``data.binance.vision``): no header (or the newer ``open_time,...`` header), 12
  columns; ``open_time`` in milliseconds, or microseconds in newer spot dumps: detected.
* Bybit: ``startTime, open, high, low, close, volume, turnover``, with or without a header,
  often newest first.
* Generic CSV/parquet with a header: a time column named ``ts_utc|ts|timestamp|open_time|date|
  datetime|time`` (or an unnamed first column, as in the datasets shipped with backtesting.py),
  and ``open, high, low, close, volume`` (any case). Times: ISO-8601 (naive means UTC) or
  epoch seconds/ms/µs/ns (detected by magnitude).

Every timestamp must be a finite time within pandas' nanosecond range
(:data:`~ita_vc.candles.schema.TS_RANGE_TEXT`); a file without a data row is refused.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ita_vc.candles.schema import TS_MAX_MS, TS_MIN_MS, TS_RANGE_TEXT
from ita_vc.candles.sources import check_candle_path, first_line, open_candle_source
from ita_vc.candles.validate import MAX_LISTED_ROWS, check_candle_table
from ita_vc.errors import DataValidationError

__all__ = [
    "FORMATS",
    "INPUT_COLUMNS",
    "detect_format",
    "epoch_unit",
    "read_candle_file",
    "read_candle_rows",
]

FORMATS = ("auto", "binance", "bybit", "csv", "parquet")
INPUT_COLUMNS = ("ts_utc", "open", "high", "low", "close", "volume")
_BINANCE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
]
_BYBIT_COLUMNS = ["start", "open", "high", "low", "close", "volume", "turnover"]
_TIME_NAMES = (
    "ts_utc",
    "ts",
    "timestamp",
    "open_time",
    "opentime",
    "date",
    "datetime",
    "time",
    "starttime",
    "start_time",
    "start",
)
_OHLCV = ("open", "high", "low", "close", "volume")
# epoch magnitudes: below 1e11 seconds (until year 5138), below 1e14 ms, below 1e17 µs, else ns
_UNITS = ((1e11, "s", 1000.0), (1e14, "ms", 1.0), (1e17, "us", 1e-3), (float("inf"), "ns", 1e-6))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: Path) -> str:
    """Guess ``binance``, ``bybit``, ``csv`` or ``parquet`` from the name and the first line.

    Raises:
        DataValidationError: the file (or zip) cannot be opened.
    """
    if path.suffix.lower() == ".parquet":
        return "parquet"
    fields = next(csv.reader(io.StringIO(first_line(path))), [])
    names = [f.strip().lower() for f in fields]
    if fields and all(_is_number(f) for f in fields):
        if len(fields) == len(_BINANCE_COLUMNS):
            return "binance"
        if len(fields) == len(_BYBIT_COLUMNS):
            return "bybit"
    if "close_time" in names and "taker_buy_quote_volume" in names:
        return "binance"
    if "turnover" in names and any(n.startswith("start") for n in names):
        return "bybit"
    return "csv"


def _listed(
    where: np.typing.NDArray[np.intp],
    rows: np.typing.NDArray[np.int64],
    raw: np.typing.NDArray[np.float64] | pd.Series[Any],
) -> str:
    """``row 3 ('x'), row 7 ('y') (and 4 more)`` for the positions ``where``."""

    def value(i: int) -> str:
        item = raw[i] if not hasattr(raw, "iloc") else raw.iloc[i]
        if isinstance(item, str):
            return repr(item)
        return str(item.item() if hasattr(item, "item") else item)

    shown = ", ".join(f"row {int(rows[i])} ({value(int(i))})" for i in where[:MAX_LISTED_ROWS])
    more = f" (and {len(where) - MAX_LISTED_ROWS} more)" if len(where) > MAX_LISTED_ROWS else ""
    return shown + more


def epoch_unit(
    values: np.typing.ArrayLike, source: str, rows: np.typing.NDArray[np.int64] | None = None
) -> tuple[str, float]:
    """The unit of epoch timestamps (``s``, ``ms``, ``us``, ``ns``) and the factor to ms.

    ``rows`` (the data row of each value) names the offending rows in messages.

    Raises:
        DataValidationError: values of different magnitudes (mixed units) or negative times.
    """
    arr = np.asarray(values, dtype="float64")
    numbers = np.arange(1, len(arr) + 1) if rows is None else np.asarray(rows)
    finite = np.isfinite(arr)
    if not finite.any():
        return "ms", 1.0
    negative = np.flatnonzero(finite & (arr < 0))
    if negative.size:
        raise DataValidationError(
            f"{source}: {negative.size} negative epoch timestamp(s): "
            f"{_listed(negative, numbers, arr)}; nothing was written"
        )
    masked = np.where(finite, arr, np.nan)
    lo, hi = int(np.nanargmin(masked)), int(np.nanargmax(masked))
    low, high = arr[lo], arr[hi]
    for limit, unit, factor in _UNITS:
        if high < limit:
            previous = {"s": 0.0, "ms": 1e11, "us": 1e14, "ns": 1e17}[unit]
            if low < previous and low != 0:
                raise DataValidationError(
                    f"{source}: timestamps mix units (smallest {low:.15g} at row "
                    f"{int(numbers[lo])}, largest {high:.15g} at row {int(numbers[hi])})"
                )
            return unit, factor
    raise AssertionError("unreachable")  # pragma: no cover


def _to_float(series: pd.Series[Any]) -> pd.Series[float]:
    result: pd.Series[float] = pd.to_numeric(series, errors="coerce").astype("float64")
    return result


def _check_finite(
    values: np.typing.NDArray[np.float64],
    raw: pd.Series[Any],
    rows: np.typing.NDArray[np.int64],
    source: str,
) -> None:
    where = np.flatnonzero(~np.isfinite(values))
    if where.size:
        raise DataValidationError(
            f"{source}: {where.size} timestamp(s) that are not finite numbers: "
            f"{_listed(where, rows, raw)}; nothing was written"
        )


def _check_range(
    ms: np.typing.NDArray[np.float64],
    raw: pd.Series[Any],
    rows: np.typing.NDArray[np.int64],
    source: str,
) -> None:
    """Refuse times outside pandas' nanosecond range (:data:`TS_RANGE_TEXT`)."""
    outside = np.flatnonzero((ms < TS_MIN_MS) | (ms > TS_MAX_MS))
    if outside.size:
        raise DataValidationError(
            f"{source}: {outside.size} timestamp(s) outside the supported range "
            f"{TS_RANGE_TEXT} (pandas' nanosecond timestamps): {_listed(outside, rows, raw)}; "
            "nothing was written"
        )


def _times_to_ms(
    raw: pd.Series[Any], source: str, rows: np.typing.NDArray[np.int64]
) -> np.typing.NDArray[np.int64]:
    """Epoch numbers or ISO strings -> int64 ms; unparseable or out-of-range values are an
    error."""
    numeric = pd.to_numeric(raw, errors="coerce")
    is_number = numeric.notna().to_numpy()
    if is_number.any() and is_number.sum() * 2 >= len(is_number):  # epoch numbers
        if not is_number.all():
            where = np.flatnonzero(~is_number)
            raise DataValidationError(
                f"{source}: {len(where)} unparseable timestamp(s) among epoch numbers: "
                f"{_listed(where, rows, raw)}; nothing was written"
            )
        values = numeric.to_numpy(dtype="float64")
        _check_finite(values, raw, rows, source)
        _check_range(values / 1e6, raw, rows, source)  # out of range whatever the unit
        _unit, factor = epoch_unit(values, source, rows)
        ms = values * factor
        _check_range(ms, raw, rows, source)
        fraction = np.flatnonzero(ms != np.round(ms))
        if fraction.size:
            raise DataValidationError(
                f"{source}: {fraction.size} timestamp(s) with sub-millisecond parts: "
                f"{_listed(fraction, rows, raw)}"
            )
        return ms.astype("int64")
    parsed = pd.to_datetime(raw.astype("string"), utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        where = np.flatnonzero(bad)
        raise DataValidationError(
            f"{source}: {len(where)} unparseable timestamp(s): {_listed(where, rows, raw)}; "
            "nothing was written"
        )
    return _datetimes_to_ms(parsed, raw, rows, source)


def _datetimes_to_ms(
    stamps: pd.Series[Any], raw: pd.Series[Any], rows: np.typing.NDArray[np.int64], source: str
) -> np.typing.NDArray[np.int64]:
    try:
        ms = stamps.dt.as_unit("ms").astype("int64").to_numpy()
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise DataValidationError(
            f"{source}: timestamps outside the supported range "
            f"{TS_RANGE_TEXT}: {exc}; nothing was written"
        ) from exc
    _check_range(ms.astype("float64"), raw, rows, source)
    return np.asarray(ms, dtype="int64")


def _frame(
    ts: np.typing.NDArray[np.int64], table: pd.DataFrame, rows: np.typing.NDArray[np.int64]
) -> pd.DataFrame:
    out = pd.DataFrame({"ts_utc": ts})
    for name in _OHLCV:
        out[name] = _to_float(table[name]).to_numpy()
    out["_row"] = rows
    return out


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    with open_candle_source(path) as stream:
        try:
            result: pd.DataFrame = pd.read_csv(
                stream, keep_default_na=False, na_values=[""], compression=None, **kwargs
            )
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError(
                f"{path}: no candle rows (the file is empty); nothing was written"
            ) from exc
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataValidationError(f"{path}: cannot read CSV: {exc}") from exc
    return result


def _read_positional(path: Path, columns: list[str], fmt: str) -> pd.DataFrame:
    first = next(csv.reader(io.StringIO(first_line(path))), [])
    has_header = bool(first) and not _is_number(first[0])
    table = _read_csv(path, header=None, skiprows=1 if has_header else 0)
    if table.shape[1] != len(columns):
        raise DataValidationError(
            f"{path}: a {fmt} file has {len(columns)} columns, this one has {table.shape[1]}"
        )
    table.columns = columns
    rows = table.index.to_numpy() + 1
    return _frame(_times_to_ms(table[columns[0]], str(path), rows), table, rows)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table: pd.DataFrame = pd.read_parquet(path)
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        raise DataValidationError(f"{path}: cannot read parquet: {exc}") from exc
    if not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index()
    return table


def _read_generic(path: Path, fmt: str) -> pd.DataFrame:
    table = _read_parquet(path) if fmt == "parquet" else _read_csv(path)
    names = {str(c).strip().lower(): c for c in table.columns}
    time_col = next((names[n] for n in _TIME_NAMES if n in names), None)
    if time_col is None and len(table.columns):
        first = table.columns[0]
        if str(first).strip() == "" or str(first).lower().startswith("unnamed"):
            time_col = first
    missing = [n for n in _OHLCV if n not in names]
    if time_col is None or missing:
        need = ("a time column (" + "|".join(_TIME_NAMES[:8]) + ")") if time_col is None else ""
        raise DataValidationError(
            f"{path}: cannot find {', '.join(filter(None, [need, *missing]))} among the "
            f"columns {list(map(str, table.columns))}"
        )
    table = table.rename(columns={names[n]: n for n in _OHLCV})
    rows = table.index.to_numpy() + 1
    times = table[time_col]
    if pd.api.types.is_datetime64_any_dtype(times):
        stamps = pd.to_datetime(times, utc=True)
        missing_at = np.flatnonzero(stamps.isna().to_numpy())
        if missing_at.size:
            raise DataValidationError(
                f"{path}: {missing_at.size} missing timestamp(s) in "
                f"{time_col!r}: {_listed(missing_at, rows, times)}"
            )
        ts = _datetimes_to_ms(stamps, times, rows, str(path))
    else:
        ts = _times_to_ms(times, str(path), rows)
    return _frame(ts, table, rows)


def read_candle_rows(path: str | Path, fmt: str = "auto") -> tuple[pd.DataFrame, str]:
    """The importer's reader: the frame with ``_row`` (each bar's data row in the file, for
    messages) and the format used. Internal: use :func:`read_candle_file`.

    Raises:
        DataValidationError: see :func:`read_candle_file`.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DataValidationError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    check_candle_path(path)
    used = detect_format(path) if fmt == "auto" else fmt
    if used == "binance":
        frame = _read_positional(path, _BINANCE_COLUMNS, "Binance kline")
    elif used == "bybit":
        frame = _read_positional(path, _BYBIT_COLUMNS, "Bybit kline")
    else:
        frame = _read_generic(path, used)
    if not len(frame):
        raise DataValidationError(f"{path}: no candle rows (only a header?); nothing was written")
    return frame, used


def read_candle_file(
    path: str | Path,
    fmt: str = "auto",
    *,
    validate: bool = False,
) -> pd.DataFrame:
    """Read one candle file (any format ``ita-vc data import`` reads) into the six input
    columns ``ts_utc`` (int64 epoch ms), ``open, high, low, close, volume`` (float64, NaN where
    a value is not numeric), in the file's order, with a default index.

    ``validate``: also infer the timeframe from the bars' spacing and check every candle rule
    (:func:`~ita_vc.candles.validate.check_candle_table`), as ``ita-vc backtest run`` does.

    Raises:
        DataValidationError: unknown format; missing, a folder or not a regular file; a zip
            refused by :mod:`ita_vc.candles.sources`; unreadable, missing columns, no rows;
            unparseable, non-finite or out-of-range timestamps; with ``validate``, invalid
            candles.
    """
    frame, _used = read_candle_rows(path, fmt)
    clean = frame[list(INPUT_COLUMNS)].reset_index(drop=True)
    if validate:
        check_candle_table(clean, str(path))
    return clean
