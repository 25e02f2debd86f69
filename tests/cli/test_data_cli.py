from __future__ import annotations

import json

from tests.candles.conftest import binance_lines, candles
from tests.helpers import invoke


def test_data_import_and_status(tmp_repo, tmp_path):
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(binance_lines(candles(20)))
    result = invoke("data", "import", str(path), "--market", "binance-spot", "--symbol",
                    "BTCUSDT", "--no-track")
    assert result.exit_code == 0, result.output
    assert "20 rows (binance)" in result.stdout and "data_hash sha256:" in result.stdout
    again = invoke("data", "import", str(path), "--market", "binance-spot", "--symbol",
                   "BTCUSDT", "--no-track")
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
    assert invoke("data", "import", str(path), "--market", "nasdaq",
                  "--symbol", "X").exit_code == 11
    assert invoke("data", "import", str(path), "--market", "generic", "--symbol", "X",
                  "--on-conflict", "maybe").exit_code == 11
