from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ita_vc.utils.tablehash import UnsupportedColumnError, hash_dataframe, logical_type


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts_utc": np.array([1_700_000_000_000, 1_700_000_060_000, 1_700_000_120_000]),
            "close": [100.5, np.nan, 0.1 + 0.2],
            "flag": [True, False, True],
            "symbol": ["BTCUSDT", None, "ÉTH"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "when_utc": pd.to_datetime(["2024-01-01", None, "2024-01-03"]).tz_localize("UTC"),
        }
    )


def _parquet_roundtrip(df: pd.DataFrame, **kwargs) -> pd.DataFrame:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buffer, **kwargs)
    buffer.seek(0)
    return pq.read_table(buffer).to_pandas()


def test_hash_is_stable_and_prefixed(frame):
    first = hash_dataframe(frame)
    assert first.startswith("sha256:") and len(first) == 71
    assert hash_dataframe(frame.copy()) == first


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "zstd"},
        {"compression": "snappy", "version": "1.0", "row_group_size": 1},
        {"compression": "gzip", "use_dictionary": False, "data_page_version": "2.0"},
        {"compression": "none", "coerce_timestamps": "us"},
    ],
)
def test_parquet_encodings_hash_the_same(frame, options):
    assert hash_dataframe(_parquet_roundtrip(frame, **options)) == hash_dataframe(frame)


def test_narrower_physical_types_hash_the_same():
    wide = pd.DataFrame({"a": np.array([1, 2, 3], dtype="int64"), "b": [0.5, 1.5, 2.5]})
    narrow = pd.DataFrame(
        {"a": np.array([1, 2, 3], dtype="int16"), "b": np.array([0.5, 1.5, 2.5], dtype="float32")}
    )
    nullable = wide.astype({"a": "Int64", "b": "Float64"})
    assert hash_dataframe(wide) == hash_dataframe(narrow) == hash_dataframe(nullable)


def test_datetime_unit_does_not_matter():
    ns = pd.DataFrame({"t": pd.to_datetime(["2024-01-01T00:00:01", "2024-01-02T00:00:00"])})
    seconds = ns.astype({"t": "datetime64[s]"})
    assert hash_dataframe(ns) == hash_dataframe(seconds)


def test_timezone_is_normalised_to_utc_but_naive_differs():
    utc = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 12:00"]).tz_localize("UTC")})
    paris = utc.assign(t=utc["t"].dt.tz_convert("Europe/Paris"))
    naive = utc.assign(t=utc["t"].dt.tz_localize(None))
    assert hash_dataframe(utc) == hash_dataframe(paris)
    assert hash_dataframe(utc) != hash_dataframe(naive)


def test_nan_and_null_are_the_same_float_null():
    assert hash_dataframe(pd.DataFrame({"x": [1.0, np.nan]})) == hash_dataframe(
        pd.DataFrame({"x": pd.array([1.0, None], dtype="Float64")})
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda df: df.assign(close=df["close"].fillna(0.0)),  # null -> value
        lambda df: df.rename(columns={"close": "Close"}),
        lambda df: df[list(reversed(df.columns))],
        lambda df: df.iloc[::-1].reset_index(drop=True),
        lambda df: df.iloc[:2],
        lambda df: df.assign(symbol=df["symbol"].fillna("")),  # null vs empty string
        lambda df: df.assign(ts_utc=df["ts_utc"].astype("float64")),  # int vs float
        lambda df: df.assign(close=df["close"] + 1e-12),
    ],
)
def test_any_value_name_order_or_type_change_changes_the_hash(frame, change):
    assert hash_dataframe(change(frame)) != hash_dataframe(frame)


def test_string_boundaries_matter():
    a = pd.DataFrame({"s": ["ab", "c"]})
    b = pd.DataFrame({"s": ["a", "bc"]})
    assert hash_dataframe(a) != hash_dataframe(b)


def test_index_is_not_part_of_the_table(frame):
    assert hash_dataframe(frame.set_axis([10, 11, 12])) == hash_dataframe(frame)


def test_categorical_hashes_as_its_labels():
    plain = pd.DataFrame({"s": ["a", "b", "a"]})
    assert hash_dataframe(plain.astype("category")) == hash_dataframe(plain)


def test_empty_frame():
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    assert hash_dataframe(empty) != hash_dataframe(pd.DataFrame())


@pytest.mark.parametrize(
    "bad",
    [
        pd.DataFrame({"mixed": ["a", 1]}),
        pd.DataFrame({"nested": [[1], [2]]}),
        pd.DataFrame({1: [1]}),
    ],
)
def test_unsupported_columns_are_refused(bad):
    with pytest.raises(UnsupportedColumnError):
        hash_dataframe(bad)


def test_logical_types():
    assert logical_type(pd.Series([1], dtype="uint8")) == "int64"
    assert logical_type(pd.Series([True], dtype="boolean")) == "bool"
    assert logical_type(pd.Series(pd.to_timedelta(["1s"]))) == "duration[ns]"
