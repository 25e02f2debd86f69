from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ita_vc.candles import merge_candles
from ita_vc.errors import DataValidationError
from ita_vc.store import hash_dataframe
from tests.candles.conftest import MIN, T0, binance_lines, candles


def _write(tmp_path, name, df, unit=1):
    path = tmp_path / name
    path.write_text(binance_lines(df, unit))
    return path


def test_import_writes_the_canonical_table_with_meta(cstore, workspace, tmp_path):
    df = candles(30)
    report = cstore.import_files([_write(tmp_path, "a.csv", df)], market="binance-spot",
                                 symbol="BTCUSDT", track=False)
    info = report.dataset
    assert info.path == "data/candles/binance-spot/BTCUSDT/1m.parquet"
    assert (info.rows, info.first_ts, info.last_ts, info.gaps) == (30, T0, T0 + 29 * MIN, 0)
    assert info.instrument_key == "binance:spot:BTCUSDT"
    stored = cstore.load("binance-spot", "BTCUSDT", "1m")
    assert list(stored.columns) == ["ts_utc", "open", "high", "low", "close", "volume",
                                    "gap_flag"]
    assert stored.dtypes.astype(str).tolist() == ["int64"] + ["float64"] * 5 + ["bool"]
    assert info.data_hash == hash_dataframe(stored)
    row = cstore.store.index.get(info.path)
    assert (row.symbol, row.timeframe, row.kind) == ("BTCUSDT", "1m", "candles")
    assert report.added == 30 and not report.tracked


def test_merge_appends_drops_exact_duplicates_and_flags_gaps(cstore, tmp_path):
    df = candles(40)
    first = _write(tmp_path, "a.csv", df.iloc[:20])
    second = _write(tmp_path, "b.csv", pd.concat([df.iloc[15:25], df.iloc[30:40]]), unit=1000)
    cstore.import_files([first], market="binance-spot", symbol="X", track=False)
    report = cstore.import_files([second], market="binance-spot", symbol="X", track=False)
    assert (report.added, report.duplicates) == (15, 5)
    stored = cstore.load("binance-spot", "X", "1m")
    assert stored["ts_utc"].is_monotonic_increasing and stored["ts_utc"].is_unique
    assert stored["gap_flag"].sum() == 1
    assert stored.loc[stored["gap_flag"], "ts_utc"].tolist() == [T0 + 30 * MIN]
    again = cstore.import_files([second], market="binance-spot", symbol="X", track=False)
    assert again.unchanged and again.added == 0


def test_several_files_at_once_in_any_order(cstore, tmp_path):
    df = candles(10)
    files = [_write(tmp_path, "late.csv", df.iloc[5:]), _write(tmp_path, "early.csv", df.iloc[:5])]
    report = cstore.import_files(files, market="generic", symbol="X", track=False)
    assert report.dataset.rows == 10 and [f[2] for f in report.files] == [5, 5]


def test_conflicts_are_listed_and_nothing_is_written(cstore, workspace, tmp_path):
    df = candles(10)
    cstore.import_files([_write(tmp_path, "a.csv", df)], market="generic", symbol="X",
                        track=False)
    path = workspace.path("data/candles/generic/X/1m.parquet")
    before = path.read_bytes()
    changed = df.copy()
    changed.loc[[2, 7], "close"] = changed.loc[[2, 7], "open"]
    with pytest.raises(DataValidationError) as info:
        cstore.import_files([_write(tmp_path, "b.csv", changed)], market="generic", symbol="X",
                            track=False)
    message = str(info.value)
    assert "2 timestamp(s) with different values; nothing was written" in message
    assert "2025-01-01T00:02:00Z: stored: open=" in message and "; row 3: open=" in message
    assert "--on-conflict keep-new|keep-old" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize(("policy", "expected"), [("keep-new", "new"), ("keep-old", "old")])
def test_conflict_policies(cstore, tmp_path, policy, expected):
    df = candles(10)
    cstore.import_files([_write(tmp_path, "a.csv", df)], market="generic", symbol="X",
                        track=False)
    changed = df.copy()
    changed.loc[4, "close"] = changed.loc[4, "open"]
    report = cstore.import_files([_write(tmp_path, "b.csv", changed)], market="generic",
                                 symbol="X", on_conflict=policy, track=False)
    stored = cstore.load("generic", "X", "1m")
    want = changed if expected == "new" else df
    assert stored.loc[4, "close"] == want.loc[4, "close"]
    assert report.conflicts_resolved == 1


def test_merge_candles_unit():
    old = candles(3)
    new = candles(3).assign(_row=[1, 2, 3])
    merged, dupes, resolved = merge_candles(old, new)
    assert (len(merged), dupes, resolved) == (3, 3, 0)
    with pytest.raises(DataValidationError, match="--on-conflict must be one of"):
        merge_candles(old, new, on_conflict="whatever")
    clash = new.assign(close=new["close"] + 0.01)
    with pytest.raises(DataValidationError, match="3 timestamp"):
        merge_candles(old, clash, on_conflict="error")


def test_invalid_input_writes_nothing(cstore, workspace, tmp_path):
    bad = candles(8)
    bad.loc[3, "high"] = bad.loc[3, "low"] - 1
    with pytest.raises(DataValidationError, match=r"high < max\(open, close\): row 4"):
        cstore.import_files([_write(tmp_path, "a.csv", bad)], market="generic", symbol="X",
                            track=False)
    assert not workspace.path("data/candles/generic/X").exists()
    assert cstore.status() == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"market": "kraken-spot", "symbol": "X"}, "unknown market 'kraken-spot'"),
        ({"market": "generic", "symbol": "BTC/USDT"}, "did you mean 'BTCUSDT'"),
        ({"market": "generic", "symbol": "X", "timeframe": "2m"}, "unknown timeframe"),
        ({"market": "generic", "symbol": "X", "fmt": "xls"}, "unknown format"),
    ],
)
def test_bad_arguments(cstore, tmp_path, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        cstore.import_files([_write(tmp_path, "a.csv", candles(3))], track=False, **kwargs)


def test_no_files_and_missing_dataset(cstore):
    with pytest.raises(DataValidationError, match="no files"):
        cstore.import_files([], market="generic", symbol="X")
    with pytest.raises(DataValidationError, match="dvc pull -r sample data.dvc"):
        cstore.load("generic", "X", "1m")


def test_timeframe_alignment_for_daily_data(cstore, tmp_path):
    daily = candles(5, step=86_400_000)
    path = tmp_path / "d.csv"
    daily.assign(date=pd.to_datetime(daily["ts_utc"], unit="ms").dt.date).drop(
        columns="ts_utc").to_csv(path, index=False)
    report = cstore.import_files([path], market="generic", symbol="D", timeframe="1d",
                                 track=False)
    assert report.dataset.rows == 5
    shifted = _write(tmp_path, "m.csv", candles(3, start=T0 + MIN, step=3_600_000))
    with pytest.raises(DataValidationError, match="not aligned to the timeframe"):
        cstore.import_files([shifted], market="generic", symbol="D2", timeframe="1h",
                            track=False)


def test_import_tracks_the_data_root_with_dvc(cstore, tmp_repo, tmp_path):
    report = cstore.import_files([_write(tmp_path, "a.csv", candles(10))], market="generic",
                                 symbol="X")
    assert report.tracked
    dvcfile = (tmp_repo / "data.dvc").read_text()
    assert "path: data" in dvcfile and "nfiles: 1" in dvcfile
    assert "/data" in (tmp_repo / ".gitignore").read_text()
    status = tmp_repo.dvc("status", "data.dvc")
    assert "Data and pipelines are up to date" in status.stdout
    cstore.import_files([_write(tmp_path, "b.csv", candles(5, start=T0 + 10 * MIN))],
                        market="generic", symbol="X")
    assert "nfiles: 1" in (tmp_repo / "data.dvc").read_text()
    assert (tmp_repo / "data.dvc").read_text() != dvcfile


def test_status_lists_every_dataset(cstore, tmp_path):
    cstore.import_files([_write(tmp_path, "a.csv", candles(10))], market="generic",
                        symbol="A", track=False)
    cstore.import_files([_write(tmp_path, "b.csv", candles(5))], market="bybit-spot",
                        symbol="B", track=False)
    rows = [d.to_dict() for d in cstore.status()]
    assert [(r["market"], r["symbol"], r["rows"]) for r in rows] == [
        ("bybit-spot", "B", 5), ("generic", "A", 10)]
    assert rows[1]["first"] == "2025-01-01T00:00:00Z" and rows[1]["data_hash"].startswith("sha")
    assert np.all([r["instrument_key"] for r in rows])
