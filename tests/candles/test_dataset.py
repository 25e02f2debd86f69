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
    report = cstore.import_files(
        [_write(tmp_path, "a.csv", df)], market="binance-spot", symbol="BTCUSDT", track=False
    )
    info = report.dataset
    assert info.path == "data/candles/binance-spot/BTCUSDT/1m.parquet"
    assert (info.rows, info.first_ts, info.last_ts, info.gaps) == (30, T0, T0 + 29 * MIN, 0)
    assert info.instrument_key == "binance:spot:BTCUSDT"
    stored = cstore.load("binance-spot", "BTCUSDT", "1m")
    assert list(stored.columns) == ["ts_utc", "open", "high", "low", "close", "volume", "gap_flag"]
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
    cstore.import_files([_write(tmp_path, "a.csv", df)], market="generic", symbol="X", track=False)
    path = workspace.path("data/candles/generic/X/1m.parquet")
    before = path.read_bytes()
    changed = df.copy()
    changed.loc[[2, 7], "close"] = changed.loc[[2, 7], "open"]
    with pytest.raises(DataValidationError) as info:
        cstore.import_files(
            [_write(tmp_path, "b.csv", changed)], market="generic", symbol="X", track=False
        )
    message = str(info.value)
    assert "2 timestamp(s) with different values; nothing was written" in message
    assert "2025-01-01T00:02:00Z: stored: open=" in message and "; row 3: open=" in message
    assert "--on-conflict keep-new|keep-old" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize(("policy", "expected"), [("keep-new", "new"), ("keep-old", "old")])
def test_conflict_policies(cstore, tmp_path, policy, expected):
    df = candles(10)
    cstore.import_files([_write(tmp_path, "a.csv", df)], market="generic", symbol="X", track=False)
    changed = df.copy()
    changed.loc[4, "close"] = changed.loc[4, "open"]
    report = cstore.import_files(
        [_write(tmp_path, "b.csv", changed)],
        market="generic",
        symbol="X",
        on_conflict=policy,
        track=False,
    )
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
        cstore.import_files(
            [_write(tmp_path, "a.csv", bad)], market="generic", symbol="X", track=False
        )
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
        columns="ts_utc"
    ).to_csv(path, index=False)
    report = cstore.import_files([path], market="generic", symbol="D", timeframe="1d", track=False)
    assert report.dataset.rows == 5
    shifted = _write(tmp_path, "m.csv", candles(3, start=T0 + MIN, step=3_600_000))
    with pytest.raises(DataValidationError, match="not aligned to the timeframe"):
        cstore.import_files([shifted], market="generic", symbol="D2", timeframe="1h", track=False)


def test_import_tracks_the_data_root_with_dvc(cstore, tmp_repo, tmp_path):
    report = cstore.import_files(
        [_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="X"
    )
    assert report.tracked
    dvcfile = (tmp_repo / "data.dvc").read_text()
    assert "path: data" in dvcfile and "nfiles: 1" in dvcfile
    assert "/data" in (tmp_repo / ".gitignore").read_text()
    status = tmp_repo.dvc("status", "data.dvc")
    assert "Data and pipelines are up to date" in status.stdout
    cstore.import_files(
        [_write(tmp_path, "b.csv", candles(5, start=T0 + 10 * MIN))], market="generic", symbol="X"
    )
    assert "nfiles: 1" in (tmp_repo / "data.dvc").read_text()
    assert (tmp_repo / "data.dvc").read_text() != dvcfile


def test_status_lists_every_dataset(cstore, tmp_path):
    cstore.import_files(
        [_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="A", track=False
    )
    cstore.import_files(
        [_write(tmp_path, "b.csv", candles(5))], market="bybit-spot", symbol="B", track=False
    )
    rows = [d.to_dict() for d in cstore.status()]
    assert [(r["market"], r["symbol"], r["rows"]) for r in rows] == [
        ("bybit-spot", "B", 5),
        ("generic", "A", 10),
    ]
    assert rows[1]["first"] == "2025-01-01T00:00:00Z" and rows[1]["data_hash"].startswith("sha")
    assert np.all([r["instrument_key"] for r in rows])


def test_the_timeframe_is_inferred_or_checked_against_the_spacing(cstore, tmp_path):
    hourly = _write(tmp_path, "h.csv", candles(48, step=3_600_000))
    report = cstore.import_files([hourly], market="generic", symbol="H", track=False)
    assert report.timeframe_inferred and report.dataset.timeframe == "1h"
    assert report.dataset.path == "data/candles/generic/H/1h.parquet"
    given = cstore.import_files([hourly], market="generic", symbol="H", timeframe="1h", track=False)
    assert given.unchanged and not given.timeframe_inferred
    with pytest.raises(
        DataValidationError,
        match=r"h.csv: --timeframe 4h contradicts the data: "
        r"the median spacing of its bars is 1h \(pass "
        r"--timeframe 1h or leave it out",
    ):
        cstore.import_files([hourly], market="generic", symbol="H", timeframe="4h", track=False)
    assert not cstore.exists("generic", "H", "4h")
    one = _write(tmp_path, "one.csv", candles(1, start=T0 + 48 * 3_600_000))
    with pytest.raises(
        DataValidationError, match="one.csv: cannot infer the timeframe from a single bar"
    ):
        cstore.import_files([one], market="generic", symbol="H", track=False)
    appended = cstore.import_files([one], market="generic", symbol="H", timeframe="1h", track=False)
    assert appended.added == 1


def test_backtesting_py_data_lands_at_its_own_timeframe(cstore):
    from tests.candles.test_importers import BACKTESTING_DATA

    goog = cstore.import_files(
        [BACKTESTING_DATA / "GOOG.csv"], market="generic", symbol="GOOG", track=False
    )
    eurusd = cstore.import_files(
        [BACKTESTING_DATA / "EURUSD.csv"], market="generic", symbol="EURUSD", track=False
    )
    assert goog.dataset.path == "data/candles/generic/GOOG/1d.parquet"
    assert eurusd.dataset.path == "data/candles/generic/EURUSD/1h.parquet"
    assert (goog.dataset.rows, eurusd.dataset.rows) == (2148, 5000)
    # weekends and holidays are gaps of daily bars, not 2,147 gaps of 1m bars
    assert goog.dataset.gaps < 600
    with pytest.raises(
        DataValidationError,
        match=r"GOOG.csv: --timeframe 1m contradicts the "
        r"data: the median spacing of its bars is 1d",
    ):
        cstore.import_files(
            [BACKTESTING_DATA / "GOOG.csv"],
            market="generic",
            symbol="G2",
            timeframe="1m",
            track=False,
        )


def test_conflicts_across_several_files_name_the_file(cstore, tmp_path):
    df = candles(6)
    changed = df.copy()
    changed.loc[3, "close"] = changed.loc[3, "open"]
    files = [_write(tmp_path, "a.csv", df), _write(tmp_path, "b.csv", changed)]
    with pytest.raises(DataValidationError, match=r"a.csv row 4: open=.*; .*b.csv row 4: open="):
        cstore.import_files(files, market="generic", symbol="X", track=False)


def test_remove_deletes_file_index_row_and_updates_data_dvc(cstore, tmp_repo, tmp_path):
    cstore.import_files([_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="A")
    cstore.import_files(
        [_write(tmp_path, "b.csv", candles(5))], market="generic", symbol="B", commit=True
    )
    rel = "data/candles/generic/A/1m.parquet"
    report = cstore.remove("generic", "A", "1m", commit=True)
    assert report.path == rel and report.dataset.rows == 10 and report.tracked
    assert not (tmp_repo / rel).exists() and not (tmp_repo / "data/candles/generic/A").exists()
    assert cstore.store.index.get(rel) is None
    assert [d.symbol for d in cstore.status()] == ["B"]
    assert report.committed == tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    assert (
        tmp_repo.git("log", "-1", "--format=%s").stdout.strip()
        == "ita-vc data rm: generic A 1m (-10 rows)"
    )
    assert "nfiles: 1" in (tmp_repo / "data.dvc").read_text()
    assert "up to date" in tmp_repo.dvc("status", "data.dvc").stdout
    with pytest.raises(
        DataValidationError,
        match=r"no dataset generic A 1m: "
        r"data/candles/generic/A/1m.parquet does not "
        r"exist",
    ):
        cstore.remove("generic", "A", "1m")
    dvcfile = (tmp_repo / "data.dvc").read_bytes()
    untracked = cstore.remove("generic", "B", "1m", track=False)
    assert not untracked.tracked and (tmp_repo / "data.dvc").read_bytes() == dvcfile
    assert (tmp_repo / "data/candles").is_dir()  # the candles root itself stays


def test_remove_a_dataset_that_cannot_be_read(cstore, tmp_repo, tmp_path):
    cstore.import_files(
        [_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="A", track=False
    )
    rel = "data/candles/generic/A/1m.parquet"
    (tmp_repo / rel).write_bytes(b"garbage")
    cstore.store.index.delete(rel)  # nothing left that describes it
    report = cstore.remove("generic", "A", "1m", track=False)
    assert report.dataset is None and cstore.status() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"commit": True, "track": False}, "UsageError", "cannot be combined with --no-track"),
        ({"wait": float("nan")}, "UsageError", "--wait must be a number of seconds >= 0"),
        ({"wait": -1}, "UsageError", "--wait must be a number of seconds >= 0"),
    ],
)
def test_bad_options_are_refused_before_anything_is_read(cstore, tmp_path, kwargs, error, match):
    import ita_vc.errors

    with pytest.raises(getattr(ita_vc.errors, error), match=match):
        cstore.import_files([tmp_path / "missing.csv"], market="generic", symbol="X", **kwargs)
    with pytest.raises(getattr(ita_vc.errors, error), match=match):
        cstore.remove("generic", "X", "1m", **kwargs)


def test_import_and_remove_are_refused_while_the_workspace_is_locked(cstore, workspace, tmp_path):
    from ita_vc.errors import WorkspaceLockedError
    from tests.helpers import lock_held_elsewhere

    cstore.import_files(
        [_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="X", track=False
    )
    path = workspace.path("data/candles/generic/X/1m.parquet")
    before = path.read_bytes()
    more = _write(tmp_path, "b.csv", candles(5, start=T0 + 10 * MIN))
    with lock_held_elsewhere(workspace):
        with pytest.raises(WorkspaceLockedError, match="another ita-vc command is running"):
            cstore.import_files([more], market="generic", symbol="X", track=False)
        with pytest.raises(WorkspaceLockedError, match="another ita-vc command is running"):
            cstore.remove("generic", "X", "1m", track=False)
    assert path.read_bytes() == before
    assert cstore.import_files([more], market="generic", symbol="X", track=False).added == 5


def test_commit_commits_only_what_tracking_changed(cstore, tmp_repo, tmp_path):
    tmp_repo.gen({"notes.txt": "mine\n", "configs/extra.yaml": "a: 1\n"})
    tmp_repo.git("add", "notes.txt")  # staged by the user: must stay out of the commit
    first = cstore.import_files(
        [_write(tmp_path, "a.csv", candles(10))], market="generic", symbol="X", commit=True
    )
    head = tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    assert first.committed == head
    files = tmp_repo.git("show", "--name-only", "--format=%s", "HEAD").stdout.split("\n")
    assert files[0] == "ita-vc data import: generic X 1m (+10 rows)"
    assert sorted(f for f in files[1:] if f) == [".gitignore", "data.dvc"]
    status = tmp_repo.git("status", "--porcelain").stdout
    assert "A  notes.txt" in status and "?? configs/extra.yaml" in status
    second = cstore.import_files(
        [_write(tmp_path, "b.csv", candles(5, start=T0 + 10 * MIN))],
        market="generic",
        symbol="X",
        commit=True,
    )
    assert tmp_repo.git("show", "--name-only", "--format=", "HEAD").stdout.split() == ["data.dvc"]
    assert second.committed != head
    again = cstore.import_files(
        [_write(tmp_path, "b.csv", candles(5, start=T0 + 10 * MIN))],
        market="generic",
        symbol="X",
        commit=True,
    )
    assert again.unchanged and again.committed is None
    assert tmp_repo.git("rev-parse", "HEAD").stdout.strip() == second.committed
