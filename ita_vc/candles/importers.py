"""Readers for candle files: Binance kline dumps, Bybit kline exports, generic CSV/parquet.

Each reader returns a frame with ``ts_utc`` (int64 epoch ms), ``open, high, low, close,
volume`` (float64, NaN where a value was not numeric) and ``_row`` (the 1-based data row of the
source file, for error messages). Sorting, merging and validation happen afterwards.

* Binance (``data.binance.vision``): no header (or the newer ``open_time,...`` header), 12
  columns; ``open_time`` in milliseconds, or microseconds in newer spot dumps: detected.
* Bybit: ``startTime, open, high, low, close, volume, turnover``, with or without a header,
  often newest first.
* Generic CSV/parquet with a header: a time column named ``ts_utc|ts|timestamp|open_time|date|
  datetime|time`` (or an unnamed first column, as in the datasets shipped with backtesting.py),
  and ``open, high, low, close, volume`` in any case. Times are ISO-8601 (naive means UTC) or
  epoch seconds/ms/µs/ns (detected by magnitude).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.candles.validate import MAX_LISTED_ROWS
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "detect_format", "epoch_unit", "read_candle_file"]

FORMATS = ("auto", "binance", "bybit", "csv", "parquet")
_BINANCE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time",
                    "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore"]
_BYBIT_COLUMNS = ["start", "open", "high", "low", "close", "volume", "turnover"]
_TIME_NAMES = ("ts_utc", "ts", "timestamp", "open_time", "opentime", "date", "datetime", "time",
               "starttime", "start_time", "start")
_OHLCV = ("open", "high", "low", "close", "volume")
# epoch magnitudes: below 1e11 seconds (until year 5138), below 1e14 ms, below 1e17 µs, else ns
_UNITS = ((1e11, "s", 1000.0), (1e14, "ms", 1.0), (1e17, "us", 1e-3), (float("inf"), "ns", 1e-6))


def _first_line(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(names) != 1:
                raise DataValidationError(f"{path}: a zip must hold exactly one CSV file")
            with archive.open(names[0]) as stream:
                return stream.readline().decode("utf-8", errors="replace")
    with open(path, encoding="utf-8", errors="replace") as stream:
        return stream.readline()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: Path) -> str:
    """Guess ``binance``, ``bybit``, ``csv`` or ``parquet`` from the name and the first line."""
    if path.suffix.lower() == ".parquet":
        return "parquet"
    fields = next(csv.reader(io.StringIO(_first_line(path))), [])
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


def epoch_unit(values: Any, source: str) -> tuple[str, float]:
    """The unit of epoch timestamps (``s``, ``ms``, ``us``, ``ns``) and the factor to ms.

    Raises:
        DataValidationError: values of different magnitudes (mixed units) or negative times.
    """
    import numpy as np

    arr = np.asarray(values, dtype="float64")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return "ms", 1.0
    if finite.min() < 0:
        raise DataValidationError(f"{source}: negative epoch timestamps")
    low, high = finite.min(), finite.max()
    for limit, unit, factor in _UNITS:
        if high < limit:
            previous = {"s": 0.0, "ms": 1e11, "us": 1e14, "ns": 1e17}[unit]
            if low < previous and low != 0:
                raise DataValidationError(
                    f"{source}: timestamps mix units (smallest {low:.0f}, largest {high:.0f})"
                )
            return unit, factor
    raise AssertionError("unreachable")  # pragma: no cover


def _to_float(series: pd.Series[Any]) -> pd.Series[float]:
    import pandas as pd

    result: pd.Series[float] = pd.to_numeric(series, errors="coerce").astype("float64")
    return result


def _times_to_ms(raw: pd.Series[Any], source: str, rows: Any) -> Any:
    """Epoch numbers or ISO strings -> int64 ms; unparseable values are an error."""
    import numpy as np
    import pandas as pd

    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all():
        _unit, factor = epoch_unit(numeric.to_numpy(), source)
        ms = numeric.to_numpy(dtype="float64") * factor
        if not np.all(ms == np.round(ms)):
            raise DataValidationError(f"{source}: timestamps with sub-millisecond parts")
        return ms.astype("int64")
    parsed = pd.to_datetime(raw.astype("string"), utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        where = np.flatnonzero(bad)
        shown = ", ".join(f"row {int(rows[i])} ({raw.iloc[i]!r})" for i in where[:MAX_LISTED_ROWS])
        more = f" (and {len(where) - MAX_LISTED_ROWS} more)" if len(where) > MAX_LISTED_ROWS else ""
        raise DataValidationError(
            f"{source}: {len(where)} unparseable timestamp(s): {shown}{more}; nothing was written"
        )
    return (parsed.dt.as_unit("ms").astype("int64")).to_numpy()


def _frame(ts: Any, table: pd.DataFrame, rows: Any) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({"ts_utc": ts})
    for name in _OHLCV:
        out[name] = _to_float(table[name]).to_numpy()
    out["_row"] = rows
    return out


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    import pandas as pd

    try:
        result: pd.DataFrame = pd.read_csv(path, keep_default_na=False, na_values=[""], **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as exc:
        raise DataValidationError(f"{path}: cannot read CSV: {exc}") from exc
    return result


def _read_positional(path: Path, columns: list[str], fmt: str) -> pd.DataFrame:
    first = next(csv.reader(io.StringIO(_first_line(path))), [])
    has_header = bool(first) and not _is_number(first[0])
    table = _read_csv(path, header=None, skiprows=1 if has_header else 0)
    if table.shape[1] != len(columns):
        raise DataValidationError(
            f"{path}: a {fmt} file has {len(columns)} columns, this one has {table.shape[1]}"
        )
    table.columns = columns
    rows = table.index.to_numpy() + 1
    return _frame(_times_to_ms(table[columns[0]], str(path), rows), table, rows)


def _read_generic(path: Path, fmt: str) -> pd.DataFrame:
    import pandas as pd

    if fmt == "parquet":
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataValidationError(f"{path}: cannot read parquet: {exc}") from exc
        if not isinstance(table.index, pd.RangeIndex):
            table = table.reset_index()
    else:
        table = _read_csv(path)
    names = {str(c).strip().lower(): c for c in table.columns}
    time_col = next((names[n] for n in _TIME_NAMES if n in names), None)
    if time_col is None:
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
        if stamps.isna().any():
            raise DataValidationError(f"{path}: missing timestamps")
        ts = stamps.dt.as_unit("ms").astype("int64").to_numpy()
    else:
        ts = _times_to_ms(times, str(path), rows)
    return _frame(ts, table, rows)


def read_candle_file(path: str | Path, fmt: str = "auto") -> tuple[pd.DataFrame, str]:
    """Read one candle file; returns the frame and the format used.

    Raises:
        DataValidationError: unreadable, unknown format, missing columns, bad timestamps.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DataValidationError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file")
    used = detect_format(path) if fmt == "auto" else fmt
    if used == "binance":
        return _read_positional(path, _BINANCE_COLUMNS, "Binance kline"), used
    if used == "bybit":
        return _read_positional(path, _BYBIT_COLUMNS, "Bybit kline"), used
    return _read_generic(path, used), used
