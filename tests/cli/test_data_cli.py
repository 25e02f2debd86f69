from __future__ import annotations

import json

import pytest

from tests.candles.conftest import binance_lines, candles
from tests.helpers import invoke


def test_data_import_and_status(tmp_repo, tmp_path):
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(binance_lines(candles(20)))
    result = invoke(
        "data", "import", str(path), "--market", "binance-spot", "--symbol", "BTCUSDT", "--no-track"
    )
    assert result.exit_code == 0, result.output
    assert "20 rows (binance)" in result.stdout and "data_hash sha256:" in result.stdout
    again = invoke(
        "data", "import", str(path), "--market", "binance-spot", "--symbol", "BTCUSDT", "--no-track"
    )
    assert "nothing new" in again.stdout
    status = json.loads(invoke("data", "status", "--json").stdout)
    assert status[0]["instrument_key"] == "binance:spot:BTCUSDT" and status[0]["rows"] == 20
    assert "binance:spot:BTCUSDT" in invoke("data", "status").stdout


def test_data_import_tracks_by_default(tmp_repo, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(binance_lines(candles(5)))
    result = invoke("data", "import", str(path), "--market", "generic", "--symbol", "X")
    assert result.exit_code == 0 and "tracked with DVC" in result.stdout
    assert (tmp_repo / "data.dvc").exists()


def test_data_import_errors_exit_11(tmp_repo, tmp_path):
    bad = candles(5)
    bad.loc[1, "volume"] = -3
    path = tmp_path / "bad.csv"
    path.write_text(binance_lines(bad))
    result = invoke("data", "import", str(path), "--market", "generic", "--symbol", "X")
    assert result.exit_code == 11
    assert "negative volume: row 2" in result.stderr
    assert not (tmp_repo / "data.dvc").exists()
    assert (
        invoke("data", "import", str(path), "--market", "nasdaq", "--symbol", "X").exit_code == 11
    )
    assert (
        invoke(
            "data",
            "import",
            str(path),
            "--market",
            "generic",
            "--symbol",
            "X",
            "--on-conflict",
            "maybe",
        ).exit_code
        == 11
    )


def test_data_import_infers_the_timeframe_of_backtesting_py_data(tmp_repo):
    from tests.candles.test_importers import BACKTESTING_DATA

    goog = invoke(
        "data",
        "import",
        str(BACKTESTING_DATA / "GOOG.csv"),
        "--market",
        "generic",
        "--symbol",
        "GOOG",
        "--commit",
    )
    assert goog.exit_code == 0, goog.output
    assert "timeframe 1d (inferred from the spacing of the bars)" in goog.stdout
    assert "data/candles/generic/GOOG/1d.parquet: 2,148 rows" in goog.stdout
    assert "committed data.dvc: " in goog.stdout
    eurusd = invoke(
        "data",
        "import",
        str(BACKTESTING_DATA / "EURUSD.csv"),
        "--market",
        "generic",
        "--symbol",
        "EURUSD",
    )
    assert eurusd.exit_code == 0, eurusd.output
    assert "data/candles/generic/EURUSD/1h.parquet: 5,000 rows" in eurusd.stdout
    assert "(or pass --commit)" in eurusd.stdout
    rows = {
        (r["symbol"], r["timeframe"]): r["rows"]
        for r in json.loads(invoke("data", "status", "--json").stdout)
    }
    assert rows == {("GOOG", "1d"): 2148, ("EURUSD", "1h"): 5000}
    wrong = invoke(
        "data",
        "import",
        str(BACKTESTING_DATA / "GOOG.csv"),
        "--market",
        "generic",
        "--symbol",
        "G",
        "--timeframe",
        "1m",
    )
    assert wrong.exit_code == 11
    assert (
        "--timeframe 1m contradicts the data: the median spacing of its bars is 1d" in wrong.stderr
    )
    assert not (tmp_repo / "data/candles/generic/G").exists()


def test_data_rm(tmp_repo, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(binance_lines(candles(5)))
    assert (
        invoke(
            "data", "import", str(path), "--market", "generic", "--symbol", "X", "--commit"
        ).exit_code
        == 0
    )
    gone = invoke(
        "data", "rm", "--market", "generic", "--symbol", "X", "--timeframe", "1m", "--commit"
    )
    assert gone.exit_code == 0, gone.output
    assert "removed data/candles/generic/X/1m.parquet (5 rows, data_hash sha256:" in gone.stdout
    assert "committed data.dvc: " in gone.stdout
    assert json.loads(invoke("data", "status", "--json").stdout) == []
    assert tmp_repo.git("status", "--porcelain", "--", "data.dvc").stdout == ""
    again = invoke("data", "rm", "--market", "generic", "--symbol", "X", "--timeframe", "1m")
    assert again.exit_code == 11
    assert "no dataset generic X 1m" in again.stderr and "nothing was removed" in again.stderr
    assert (
        invoke("data", "rm", "--market", "generic", "--symbol", "X", "--timeframe", "2m").exit_code
        == 11
    )
    assert (
        invoke(
            "data",
            "rm",
            "--market",
            "generic",
            "--symbol",
            "X",
            "--timeframe",
            "1m",
            "--commit",
            "--no-track",
        ).exit_code
        == 2
    )
    assert (
        invoke(
            "data", "import", str(path), "--market", "generic", "--symbol", "Y", "--commit"
        ).exit_code
        == 0
    )
    dvcfile = (tmp_repo / "data.dvc").read_bytes()
    kept = invoke(
        "data", "rm", "--market", "generic", "--symbol", "Y", "--timeframe", "1m", "--no-track"
    )
    assert kept.exit_code == 0, kept.output
    assert "not tracked: data.dvc still lists the dataset" in kept.stdout
    assert (tmp_repo / "data.dvc").read_bytes() == dvcfile
    assert "rm" in invoke("data", "--help").stdout


@pytest.mark.parametrize("wait", ["nan", "-1", "inf"])
def test_data_import_refuses_a_bad_wait(tmp_repo, tmp_path, wait):
    path = tmp_path / "x.csv"
    path.write_text(binance_lines(candles(5)))
    result = invoke(
        "data", "import", str(path), "--market", "generic", "--symbol", "X", "--wait", wait
    )
    assert result.exit_code == 2
    assert "--wait must be a number of seconds >= 0" in result.stderr
    assert not (tmp_repo / "data/candles").exists()
