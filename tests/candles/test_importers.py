from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ita_vc.candles.importers import (
    detect_format,
    epoch_unit,
    read_candle_file,
    read_candle_rows,
)
from ita_vc.errors import DataValidationError
from tests.candles.conftest import MIN, T0, binance_lines, candles

BACKTESTING_DATA = Path(__import__("backtesting").__file__).parent / "test"


def _same(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    cols = ["ts_utc", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(
        frame[cols].reset_index(drop=True), expected[cols].reset_index(drop=True), check_dtype=False
    )


@pytest.mark.parametrize(("unit", "name"), [(1, "ms"), (1000, "µs")])
def test_binance_dump_ms_and_microseconds(tmp_path, unit, name):
    df = candles(5)
    path = tmp_path / "BTCUSDT-1m-2025-01-01.csv"
    path.write_text(binance_lines(df, unit))
    frame, used = read_candle_rows(path)
    assert used == "binance", name
    _same(frame, df)
    assert frame["_row"].tolist() == [1, 2, 3, 4, 5]


def test_binance_with_header_and_zip(tmp_path):
    df = candles(4)
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
    )
    path = tmp_path / "k.csv"
    path.write_text(header + binance_lines(df))
    frame, used = read_candle_rows(path)
    assert used == "binance"
    _same(frame, df)
    archive = tmp_path / "BTCUSDT-1m-2025-01.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("BTCUSDT-1m-2025-01.csv", binance_lines(df))
    frame, used = read_candle_rows(archive)
    assert used == "binance"
    _same(frame, df)


def test_bybit_newest_first_with_and_without_header(tmp_path):
    df = candles(6)
    rev = df.iloc[::-1]
    body = "".join(
        f"{r.ts_utc},{r.open},{r.high},{r.low},{r.close},{r.volume},1.5\n" for r in rev.itertuples()
    )
    with_header = tmp_path / "a.csv"
    with_header.write_text(
        "startTime,openPrice,highPrice,lowPrice,closePrice,volume,turnover\n" + body
    )
    bare = tmp_path / "b.csv"
    bare.write_text(body)
    for path in (with_header, bare):
        frame, used = read_candle_rows(path)
        assert used == "bybit"
        _same(frame, rev)  # order is the file's; sorting happens at merge


def test_generic_csv_iso_dates_epoch_seconds_and_timezones(tmp_path):
    df = candles(3)
    iso = tmp_path / "iso.csv"
    iso.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        + "".join(
            f"{pd.Timestamp(r.ts_utc, unit='ms').isoformat()},{r.open},{r.high},{r.low},{r.close},"
            f"{r.volume}\n"
            for r in df.itertuples()
        )
    )
    _same(read_candle_file(iso), df)
    secs = tmp_path / "secs.csv"
    secs.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(
            f"{r.ts_utc // 1000},{r.open},{r.high},{r.low},{r.close},{r.volume}\n"
            for r in df.itertuples()
        )
    )
    _same(read_candle_file(secs), df)
    tz = tmp_path / "tz.csv"
    tz.write_text("time,open,high,low,close,volume\n2025-01-01T01:00:00+01:00,1,2,0.5,1.5,3\n")
    assert read_candle_file(tz)["ts_utc"].tolist() == [T0]


def test_generic_parquet_with_datetime_index(tmp_path):
    df = candles(4)
    indexed = df.assign(date=pd.to_datetime(df["ts_utc"], unit="ms")).set_index("date")
    indexed = indexed.drop(columns="ts_utc").rename(columns=str.capitalize)
    path = tmp_path / "x.parquet"
    indexed.to_parquet(path)
    frame, used = read_candle_rows(path)
    assert used == "parquet"
    _same(frame, df)


@pytest.mark.parametrize(("name", "rows"), [("GOOG.csv", 2148), ("EURUSD.csv", 5000)])
def test_datasets_shipped_with_backtesting_py_load_as_is(name, rows):
    frame, used = read_candle_rows(BACKTESTING_DATA / name)
    assert used == "csv" and len(frame) == rows
    assert frame["ts_utc"].iloc[0] in (1_092_873_600_000, 1_492_592_400_000)
    assert np.isfinite(frame[["open", "high", "low", "close", "volume"]].to_numpy()).all()


def test_detect_format(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"")
    assert detect_format(tmp_path / "a.parquet") == "parquet"
    (tmp_path / "g.csv").write_text("ts,open,high,low,close,volume\n")
    assert detect_format(tmp_path / "g.csv") == "csv"


def test_epoch_unit_detection():
    assert epoch_unit([1_735_689_600], "x") == ("s", 1000.0)
    assert epoch_unit([T0], "x") == ("ms", 1.0)
    assert epoch_unit([T0 * 1000], "x") == ("us", 1e-3)
    assert epoch_unit([T0 * 1_000_000], "x") == ("ns", 1e-6)
    with pytest.raises(DataValidationError, match="mix units"):
        epoch_unit([T0, T0 * 1000], "x")
    with pytest.raises(DataValidationError, match="negative"):
        epoch_unit([-5], "x")


@pytest.mark.parametrize(
    ("content", "fmt", "match"),
    [
        (
            "ts,open,high,low,close,volume\nyesterday,1,2,0.5,1,1\n2025-01-01,1,2,0.5,1,1\n"
            "later,1,2,0.5,1,1\n",
            "csv",
            r"2 unparseable timestamp\(s\): row 1 \('yesterday'\), "
            r"row 3 \('later'\)",
        ),
        ("ts,open,high,low,close\n1,2,3,1,2\n", "csv", "cannot find volume"),
        ("open,high,low,close,volume\n1,2,1,1,1\n", "csv", "cannot find a time column"),
        ("1,2,3\n", "binance", "has 12 columns, this one has 3"),
        ("1,2,3\n", "bybit", "has 7 columns, this one has 3"),
        ("x", "excel", "unknown format 'excel'"),
        ("ts,open,high,low,close,volume\n1735689600000.5,1,2,1,1,1\n", "csv", "sub-millisecond"),
    ],
)
def test_unreadable_files(tmp_path, content, fmt, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=match):
        read_candle_file(path, fmt)


def test_missing_file_and_bad_zip(tmp_path):
    with pytest.raises(DataValidationError, match="no such file"):
        read_candle_file(tmp_path / "none.csv")
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", "1")
        z.writestr("b.csv", "2")
    with pytest.raises(DataValidationError, match="exactly one CSV file, this one holds 2"):
        read_candle_file(archive)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"nope")
    with pytest.raises(DataValidationError, match="cannot read parquet"):
        read_candle_file(broken)


def test_non_numeric_prices_become_nan_for_validation(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f"ts,open,high,low,close,volume\n{T0},abc,2,1,1,1\n{T0 + MIN},1,2,1,1,1\n")
    frame = read_candle_file(path)
    assert np.isnan(frame["open"].iloc[0])


def test_the_public_reader_returns_the_six_input_columns_only(tmp_path):
    df = candles(4)
    path = tmp_path / "k.csv"
    path.write_text(binance_lines(df))
    frame = read_candle_file(path)
    assert list(frame.columns) == ["ts_utc", "open", "high", "low", "close", "volume"]
    assert frame.dtypes.astype(str).tolist() == ["int64"] + ["float64"] * 5
    assert isinstance(frame.index, pd.RangeIndex)
    _same(frame, df)
    import ita_vc.candles

    assert ita_vc.candles.read_candle_file is read_candle_file
    assert "read_candle_rows" not in ita_vc.candles.__all__


def test_the_validating_reader_refuses_what_an_import_would(tmp_path):
    df = candles(6)
    df.loc[2, "close"] = np.nan
    path = tmp_path / "k.csv"
    path.write_text(binance_lines(df))
    assert np.isnan(read_candle_file(path)["close"].iloc[2])
    with pytest.raises(DataValidationError, match=r"(?s)k.csv: invalid candles.*NaN.*: row 3 "):
        read_candle_file(path, validate=True)
    twice = tmp_path / "twice.csv"
    twice.write_text(binance_lines(pd.concat([candles(6), candles(6).iloc[[2]]])))
    with pytest.raises(
        DataValidationError,
        match=r"twice.csv: 2 row\(s\) share a timestamp: "
        r"row 3 .*row 7 ",
    ):
        read_candle_file(twice, validate=True)
