"""params.yaml validation (issue 12 items 6 and 7): every value of the rule, data and backtest
sections is checked by parse_params, and every refusal is a DataValidationError (exit 11)
naming ``params.yaml: <section>.<key>: <value>`` - never a TypeError, ValueError or KeyError."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from ita_vc.backtest.params import MAX_PCT, TS_MAX_MS, TS_MIN_MS, parse_params
from ita_vc.errors import DataValidationError


def _refused(raw, *fragments):
    with pytest.raises(DataValidationError) as info:
        parse_params(raw)
    assert info.value.exit_code == 11
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


@pytest.mark.parametrize("key", ["fee_pct", "slippage_pct"])
@pytest.mark.parametrize(
    "value", [100, 100.0, 250, 1e300, -0.001, math.nan, math.inf, "1", True, [1], {"a": 1}, 10**400]
)
def test_fees_and_slippage_are_percents_in_0_to_100(key, value):
    _refused({"backtest": {key: value}}, f"params.yaml: backtest.{key}: {value!r}: {key} must")


@pytest.mark.parametrize("key", ["fee_pct", "slippage_pct"])
def test_the_bounds_themselves(key):
    assert getattr(parse_params({"backtest": {key: 0}}).backtest, key) == 0.0
    assert getattr(parse_params({"backtest": {key: 99.99}}).backtest, key) == 99.99
    assert MAX_PCT == 100.0
    _refused({"backtest": {key: MAX_PCT}}, ">= 0 and < 100 (percent)")


@pytest.mark.parametrize(
    "value", [0, -1, math.inf, -math.inf, math.nan, "10000", None, False, 10**400]
)
def test_init_cash_is_finite_and_positive(value):
    _refused({"backtest": {"init_cash": value}}, "params.yaml: backtest.init_cash: ")


@pytest.mark.parametrize("value", [-1, 1.5, "200", True, None, math.nan, 10**400])
def test_warmup_bars(value):
    _refused({"backtest": {"warmup_bars": value}}, "params.yaml: backtest.warmup_bars: ")


@pytest.mark.parametrize(
    "setup_id",
    [
        "Frank_raid/../example_ma_cross",
        "../../..",
        "..",
        "a b",
        "/etc",
        "",
        ".x",
        "a" * 65,
        123,
        True,
        ["x"],
        {"x": 1},
        "x\x00y",
    ],
)
def test_setup_ids_are_checked_like_rule_files(setup_id):
    _refused({"rule": {"setup_id": setup_id}}, f"params.yaml: rule.setup_id: {setup_id!r}: ")


@pytest.mark.parametrize("version", ["1", "01.0", "v1.0.1", "x", True, [1], {"a": 1}])
def test_versions(version):
    _refused({"rule": {"version": version}}, f"params.yaml: rule.version: {version!r}")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1677-09-20", "outside the time range"),
        ("2262-04-12", "outside the time range"),
        ("9999-12-31", "outside the time range"),
        ("0001-01-01", "outside the time range"),
        (dt.date(1600, 1, 1), "outside the time range"),
        (dt.datetime(3000, 1, 1), "outside the time range"),  # noqa: DTZ001 - YAML gives naive
        ("yesterday", "not an ISO date"),
        (20250101, "not an ISO date"),
        (math.inf, "not an ISO date"),
        (True, "not an ISO date"),
        ([2025], "not an ISO date"),
        ("2025-13-01", "not an ISO date"),
        ("9999-12-31T23:59:59-23:59", "outside"),
    ],
)
@pytest.mark.parametrize("key", ["start", "end"])
def test_dates_must_be_iso_and_inside_the_pandas_nanosecond_range(key, value, fragment):
    _refused({"data": {key: value}}, f"params.yaml: data.{key}: {value!r}: ", fragment)


def test_the_edges_of_the_pandas_range_are_accepted():
    import pandas as pd

    params = parse_params({"data": {"start": "1677-09-21T00:13:00", "end": "2262-04-11"}})
    assert params.data.start_ms >= TS_MIN_MS and params.data.end_ms <= TS_MAX_MS
    assert pd.Timestamp(params.data.start_ms, unit="ms") < pd.Timestamp(
        params.data.end_ms, unit="ms"
    )
    assert pd.Timestamp(TS_MIN_MS, unit="ms") >= pd.Timestamp.min
    assert pd.Timestamp(TS_MAX_MS, unit="ms") <= pd.Timestamp.max


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"market": "../../etc"}, "data.market: '../../etc': not a market name"),
        ({"market": 5}, "data.market: 5: not a market name"),
        ({"market": ["binance-spot"]}, "data.market"),
        ({"symbol": "BTC/USDT"}, "data.symbol: 'BTC/USDT': not a symbol name"),
        ({"symbol": "../x"}, "data.symbol"),
        ({"symbol": 1.5}, "data.symbol"),
        ({"timeframe": "7m"}, "data.timeframe: '7m': unknown timeframe"),
        ({"timeframe": 60}, "data.timeframe: 60: unknown timeframe"),
        ({"source_timeframe": ["1m"]}, "data.source_timeframe: ['1m']: unknown timeframe"),
        (
            {"start": "2025-02-01", "end": "2025-01-01"},
            "data.start: '2025-02-01': must be before data.end '2025-01-01'",
        ),
    ],
)
def test_data_values(data, fragment):
    _refused({"data": data}, "params.yaml: " + fragment)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([1, 2], "params.yaml must be a mapping"),
        (
            {1: {}},
            "params.yaml: 1: unknown section (known: backtest, data, grid, rule, validation)",
        ),
        (
            {"rule": {"setup_id": "x", 7: 1}},
            "params.yaml: rule.7: unknown key (allowed: setup_id, version)",
        ),
        ({"data": [1]}, "params.yaml: data: must be a mapping, got [1] (list)"),
        ({"backtest": "fast"}, "params.yaml: backtest: must be a mapping, got 'fast' (text)"),
        ({"rule": 3}, "params.yaml: rule: must be a mapping, got 3 (integer)"),
    ],
)
def test_shapes(raw, fragment):
    _refused(raw, fragment)


def test_good_params_keep_their_resolved_values():
    params = parse_params(
        {
            "rule": {"setup_id": "example_ma_cross", "version": "1.0"},
            "data": {
                "market": "binance-spot",
                "symbol": "BTCUSDT",
                "timeframe": "1h",
                "start": dt.date(2025, 1, 10),
                "end": "2025-03-01",
            },
            "backtest": {"init_cash": 10_000, "fee_pct": None, "slippage_pct": 0.01},
        }
    )
    assert params.to_dict() == {
        "rule": {"setup_id": "example_ma_cross", "version": "1.0"},
        "data": {
            "market": "binance-spot",
            "symbol": "BTCUSDT",
            "timeframe": "1h",
            "source_timeframe": "1m",
            "start": "2025-01-10T00:00:00Z",
            "end": "2025-03-01T00:00:00Z",
        },
        "backtest": {
            "init_cash": 10000.0,
            "fee_pct": 0.075,
            "slippage_pct": 0.01,
            "warmup_bars": 200,
        },
    }
    assert parse_params({"data": {"symbol": ""}}).data.symbol == ""
    assert parse_params(None).data.market == "generic"


def test_every_problem_is_reported_at_once():
    message = _refused(
        {
            "rule": {"version": 1.1, "colour": 1},
            "data": {"market": "../x", "timeframe": "7m"},
            "backtest": {"fee_pct": 100, "init_cash": 0},
            "bogus": 1,
        }
    )
    lines = message.splitlines()
    assert len(lines) == 7, message
    for fragment in (
        "params.yaml: rule.version: 1.1: rule.version 1.1 is a number",
        "params.yaml: rule.colour: unknown key (allowed: setup_id, version)",
        "params.yaml: data.market: '../x': not a market name",
        "params.yaml: data.timeframe: '7m': unknown timeframe",
        "params.yaml: backtest.fee_pct: 100: fee_pct must be >= 0 and < 100",
        "params.yaml: backtest.init_cash: 0: init_cash must be > 0",
        "params.yaml: bogus: unknown section (known: backtest, data, grid, rule, validation)",
    ):
        assert any(line.startswith(fragment) for line in lines), (fragment, message)


def test_with_the_node_index_each_problem_names_its_line_and_the_version_as_typed():
    from ita_vc.yaml_read import load_yaml_document

    text = (
        "rule:\n  setup_id: ok\n  version: 1.10\n"
        "data:\n  start: '2025-02-01'\n  end: '2025-01-01'\n"
        "backtest:\n  slippage_pct: 100\n  colour: red\n"
    )
    document = load_yaml_document(text, "params.yaml")
    with pytest.raises(DataValidationError) as info:
        parse_params(document.data, index=document.index)
    assert str(info.value).splitlines() == [
        "params.yaml:3: rule.version: 1.10: rule.version 1.10 is a number (YAML reads 1.10 as "
        '1.1); quote it: version: "1.10"',
        "params.yaml:5: data.start: '2025-02-01': must be before data.end '2025-01-01'",
        "params.yaml:8: backtest.slippage_pct: 100: slippage_pct must be >= 0 and < 100 (percent)",
        "params.yaml:9: backtest.colour: unknown key (allowed: fee_pct, init_cash, "
        "periods_per_year, slippage_pct, warmup_bars)",
    ]
    with pytest.raises(DataValidationError, match=r"^runs/x/params\.yaml:3: rule\.version"):
        parse_params(document.data, index=document.index, source="runs/x/params.yaml")


def test_null_sections_and_values_take_the_defaults():
    params = parse_params(
        {
            "rule": None,
            "data": {"symbol": None, "timeframe": None},
            "backtest": {"fee_pct": None},
            "grid": None,
        }
    )
    assert params.setup_id is None and params.version is None
    assert params.data.symbol == "" and params.data.timeframe is None
    assert params.backtest.fee_pct == 0.075
    assert parse_params({"data": {"market": "binance-futures"}}).backtest.fee_pct == 0.1
