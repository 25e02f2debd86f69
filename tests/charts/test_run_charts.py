"""The run report's charts: price.png (every trade's entry and exit), equity.png (with
buy-and-hold), drawdown.png and report.html (Bokeh, self-contained, deterministic)."""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ita_vc.backtest.run import run_backtest
from ita_vc.charts.decimate import MAX_POINTS
from ita_vc.charts.run_html import run_layout
from ita_vc.charts.run_png import ENTRY_STYLE, EXIT_STYLE, equity_figure, price_figure
from ita_vc.charts.run_series import run_series
from ita_vc.pipeline.outputs import DirSink, write_report
from tests.helpers import MIN, REPO_ROOT, T0, run, walk_candles

SUMMARY = {
    "setup_id": "synthetic",
    "rule_version": "v1.0",
    "market": "binance-spot",
    "symbol": "BTCUSDT",
    "timeframe": "1m",
    "range": {"first_bar": "2025-01-01T00:00:00Z", "bars": 0, "warmup_bars": 3},
    "direction": "long-short",
    "fee_pct": 0.1,
    "slippage_pct": 0.01,
    "init_cash": 10_000.0,
}
METRICS = {"Total Return [%]": 1.234567, "Num. Trades": 8, "Max. Drawdown Duration": 90061.0}
REPORT_FILES = ["drawdown.png", "equity.png", "price.png", "report.html", "report.md"]


def run_tables(n: int, trades: int, *, warmup: int = 3, seed: int = 1):
    """``(equity, drawdown, trades, candles)`` of a made-up run of ``n`` bars with ``trades``
    trades (alternating long/short, exit reasons cycling signal, sl, tp, end)."""
    rng = np.random.default_rng(seed)
    total = n + warmup
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, total))), 2)
    ts_all = T0 + np.arange(total, dtype=np.int64) * MIN
    candles = pd.DataFrame(
        {
            "ts_utc": ts_all,
            "open": close,
            "high": close + 0.05,
            "low": close - 0.05,
            "close": close,
            "volume": np.ones(total),
            "warmup": np.arange(total) < warmup,
        }
    )
    ts = ts_all[warmup:]
    equity_values = 10_000 * close[warmup:] / close[warmup] if n else np.zeros(0)
    peak = np.maximum.accumulate(equity_values) if n else equity_values
    equity = pd.DataFrame({"ts_utc": ts, "equity": equity_values})
    drawdown = pd.DataFrame({"ts_utc": ts, "drawdown": equity_values / peak - 1 if n else peak})
    k = np.arange(trades)
    entry_i = (k * max(1, (n - 1) // max(trades, 1))) if trades else k
    exit_i = np.minimum(entry_i + 1, max(n - 1, 0))
    table = pd.DataFrame(
        {
            "entry_ts": ts[entry_i] if trades else np.zeros(0, np.int64),
            "exit_ts": ts[exit_i] if trades else np.zeros(0, np.int64),
            "direction": np.where(k % 2 == 0, "long", "short"),
            "qty": np.ones(trades),
            "entry_price": close[warmup:][entry_i] if trades else np.zeros(0),
            "exit_price": close[warmup:][exit_i] if trades else np.zeros(0),
            "entry_fee": np.zeros(trades),
            "exit_fee": np.zeros(trades),
            "pnl": np.where(k % 3 == 0, 1.0, -1.0),
            "return_pct": np.where(k % 3 == 0, 0.1, -0.1),
            "exit_reason": np.array(["signal", "sl", "tp", "end"])[k % 4],
        }
    )
    return equity, drawdown, table, candles


def _pixels(png: bytes):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)


def _has_colour(pixels, colour: str) -> bool:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(pixels - rgb).sum(axis=2) <= 6).any())


def _report(folder, bars: int, trades: int, **kw):
    equity, drawdown, table, candles = run_tables(bars, trades, **kw)
    write_report(SUMMARY, METRICS, equity, drawdown, DirSink(folder), trades=table, candles=candles)
    return folder


class _Document(HTMLParser):
    """The tags of an HTML file and the text of its JSON scripts (Bokeh's document)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.json: list[str] = []
        self._in_json = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_json = tag == "script" and dict(attrs).get("type") == "application/json"
        if self._in_json:
            self.json.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_json = False

    def handle_data(self, data):
        if self._in_json:
            self.json[-1] += data


def _decoded(value):
    if isinstance(value, dict) and value.get("type") == "ndarray":
        raw = value["array"]
        if isinstance(raw, dict) and raw.get("type") == "bytes":
            data = base64.b64decode(raw["data"])
            if data[:2] == b"\x1f\x8b":  # Bokeh gzips larger arrays
                data = gzip.decompress(data)
            return np.frombuffer(data, dtype=value["dtype"])
        return np.asarray(raw)
    return value


def _sources(node, found=None):
    """Every ColumnDataSource's columns in a Bokeh JSON document, decoded."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if node.get("name") == "ColumnDataSource":
            entries = node["attributes"]["data"]["entries"]
            found.append({name: _decoded(value) for name, value in entries})
        for value in node.values():
            _sources(value, found)
    elif isinstance(node, list):
        for value in node:
            _sources(value, found)
    return found


def test_the_report_folder_has_every_chart_and_the_markers_show(tmp_path):
    _report(tmp_path, 500, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == REPORT_FILES
    price = _pixels((tmp_path / "price.png").read_bytes())
    assert price.std() > 0
    for _marker, colour in (*ENTRY_STYLE.values(), *EXIT_STYLE.values()):
        assert _has_colour(price, colour), colour  # long/short entries, all four exit reasons
    equity = _pixels((tmp_path / "equity.png").read_bytes())
    assert equity.std() > 0 and _has_colour(equity, "#7f7f7f")  # the buy-and-hold line
    assert _pixels((tmp_path / "drawdown.png").read_bytes()).std() > 0
    md = (tmp_path / "report.md").read_text()
    for link in ("(price.png)", "(equity.png)", "(drawdown.png)", "(report.html)"):
        assert link in md


def test_the_series_are_the_range_bars_and_buy_and_hold_from_the_first_close():
    equity, drawdown, trades, candles = run_tables(50, 2, warmup=5)
    series = run_series(equity, drawdown, trades, candles.iloc[::-1], 10_000.0)  # any order
    closes = candles["close"].to_numpy()[5:]
    np.testing.assert_array_equal(series.close, closes)
    np.testing.assert_allclose(series.benchmark, 10_000 * closes / closes[0])
    assert series.benchmark[0] == 10_000.0
    assert list(series.trades.long) == [True, False] and series.trades.reason == ("signal", "sl")
    gap = run_series(equity, drawdown, trades, candles.drop(index=[5 + 7]), 10_000.0)
    assert np.isnan(gap.close[7]) and np.isfinite(np.delete(gap.close, 7)).all()
    held = run_series(equity, drawdown, trades, candles.drop(index=[5]), 10_000.0)
    assert np.isnan(held.benchmark).all()  # no first close: nothing to hold from


def test_the_html_report_is_offline_parses_and_holds_the_data(tmp_path):
    _report(tmp_path, 500, 8)
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    doc = _Document(text)
    for tag, attrs in doc.tags:
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), (tag, attrs)
    assert not [a for t, a in doc.tags if t == "script" and a.get("src")]
    assert [t for t, _a in doc.tags if t == "link"] == []
    assert "Bokeh.embed" in text and len(text) > 500_000  # BokehJS inlined
    (document,) = doc.json
    (root,) = json.loads(document).values()
    sources = _sources(root)
    price = next(s for s in sources if "close" in s)
    _equity, _drawdown, _trades, candles = run_tables(500, 8)
    assert candles["close"].iloc[3 + 123] in price["close"]
    trade_rows = [s for s in sources if "direction" in s]
    assert sum(len(s["x"]) for s in trade_rows) == 2 * 8  # every entry and every exit
    assert any("benchmark" in s for s in sources) and any("drawdown" in s for s in sources)
    # the header: the metrics formatted for a person
    (header,) = _models(root, "Div")
    shown = html.unescape(header["attributes"]["text"])  # Bokeh escapes the JSON's text
    assert "Total Return [%]</b> 1.23" in shown and "<b>Num. Trades</b> 8" in shown
    assert "1 days 01:01:01" in shown and "synthetic v1.0" in shown
    table = shown[shown.index("<table") :]
    assert table.index("Total Return [%]") < table.index("Max. Dr") < table.index("Num. Trades")
    # one x-range for the three panels: pan or zoom one, all follow
    panels = _models(root, "Figure")
    assert len(panels) == 3
    assert len({m["attributes"]["x_range"]["id"] for m in panels}) == 1


def _models(node, name, found=None):
    found = [] if found is None else found
    if isinstance(node, dict):
        if node.get("name") == name:
            found.append(node)
        for value in node.values():
            _models(value, name, found)
    elif isinstance(node, list):
        for value in node:
            _models(value, name, found)
    return found


def test_a_million_bars_keep_every_trade_marker_and_decimate_the_lines():
    n, k = 1_000_000, 20_000
    equity, drawdown, trades, candles = run_tables(n, k, warmup=0)
    series = run_series(equity, drawdown, trades, candles, 10_000.0)
    prices = np.sort(np.r_[trades["entry_price"], trades["exit_price"]])
    ax = price_figure(series, "t").axes[0]
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) <= MAX_POINTS
    marks = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if c.get_label()])
    np.testing.assert_array_equal(np.sort(marks), prices)
    assert all(
        len(line.get_xdata()) <= MAX_POINTS
        for line in equity_figure(series, "t").axes[0].get_lines()
    )
    layout = run_layout(series, SUMMARY, METRICS)
    sources = [m for m in layout.references() if type(m).__name__ == "ColumnDataSource"]
    shown = np.concatenate([s.data["y"] for s in sources if "direction" in s.data])
    np.testing.assert_array_equal(np.sort(shown), prices)
    assert all(len(s.data["x"]) <= 2 * MAX_POINTS for s in sources if "direction" not in s.data)


@pytest.mark.parametrize(("bars", "trades"), [(200, 0), (1, 0), (1, 1), (0, 0)])
def test_no_trades_one_bar_or_no_bars_still_report(tmp_path, bars, trades):
    _report(tmp_path, bars, trades)
    assert sorted(p.name for p in tmp_path.iterdir()) == REPORT_FILES
    for name in ("price.png", "equity.png", "drawdown.png"):
        assert _pixels((tmp_path / name).read_bytes()).std() > 0, name
    doc = _Document((tmp_path / "report.html").read_text(encoding="utf-8"))
    (document,) = doc.json
    sources = _sources(next(iter(json.loads(document).values())))
    assert sum(len(s["x"]) for s in sources if "direction" in s) == 2 * trades


RULE = {
    "setup_id": "t",
    "version": "1.0",
    "indicators": [{"name": "ma_cross", "params": {"fast": 3, "slow": 8}}],
    "targets": {"sl_pct": 0.3, "tp_pct": 0.5},
}


@pytest.mark.parametrize("slow", [8, 900])
def test_a_real_backtest_reports_with_and_without_trades(tmp_path, slow):
    rule = {**RULE, "indicators": [{"name": "ma_cross", "params": {"fast": 3, "slow": slow}}]}
    result = run_backtest(walk_candles(600), rule, {"backtest": {"warmup_bars": 10}})
    assert (result.metrics["Num. Trades"] > 0) == (slow == 8)
    write_report(
        result.summary,
        result.metrics,
        result.equity,
        result.drawdown,
        DirSink(tmp_path),
        trades=result.trades,
        candles=result.candles_used,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == REPORT_FILES
    price = _pixels((tmp_path / "price.png").read_bytes())
    assert _has_colour(price, ENTRY_STYLE["long"][1]) == (slow == 8)


_RENDER = """
import sys
from tests.charts.test_run_charts import _report
from pathlib import Path
_report(Path(sys.argv[1]), 3000, 40)
"""


def test_two_renders_in_two_processes_are_byte_identical(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        run([sys.executable, "-c", _RENDER, str(folder)], cwd=REPO_ROOT)
    for name in REPORT_FILES:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
