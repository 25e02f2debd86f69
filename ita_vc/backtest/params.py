"""Run parameters (``params.yaml``): validated before any computation.

``params.yaml`` (or a mapping shaped like it)::

    rule: {setup_id: example_ma_cross, version: "1.0"}     # version: a quoted string
    data: {market: binance-spot, symbol: BTCUSDT, timeframe: 1h,
           start: "2025-01-08", end: "2025-03-01"}          # [start, end) UTC; optional
    backtest: {init_cash: 10000, fee_pct: null, slippage_pct: 0.01, warmup_bars: 200}

``fee_pct`` null means the market's default: 0.1 % for futures markets, 0.075 % otherwise.
Every value is checked here (the ``grid:`` section by :func:`ita_vc.backtest.grid.parse_grid`);
a bad one is a :class:`~ita_vc.errors.DataValidationError` whose message reads
``params.yaml: <section>.<key>: <value>: <why>``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ita_vc.errors import DataValidationError

__all__ = [
    "DEFAULT_FEE_PCT",
    "FUTURES_FEE_PCT",
    "MAX_PCT",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "BacktestParams",
    "DataParams",
    "RunParams",
    "parse_params",
    "parse_time",
]

DEFAULT_FEE_PCT = 0.075
FUTURES_FEE_PCT = 0.1
MAX_PCT = 100.0
"""fee_pct and slippage_pct are percents in ``[0, MAX_PCT)``: at 100 % slippage a sell fills at
0 (the engine divides by the fill), beyond it fills would be priced negative."""
TS_MIN_MS = -9_223_372_036_854
"""Earliest epoch ms pandas can hold in nanoseconds (1677-09-21T00:12:43.145Z, rounded in)."""
TS_MAX_MS = 9_223_372_036_854
"""Latest epoch ms pandas can hold in nanoseconds (2262-04-11T23:47:16.854Z)."""
SOURCE = "params.yaml"
_SECTIONS = {"rule", "data", "backtest", "grid"}
_DATA_KEYS = {"market", "symbol", "timeframe", "start", "end", "source_timeframe"}
_BACKTEST_KEYS = {"init_cash", "fee_pct", "slippage_pct", "warmup_bars"}
_RULE_KEYS = {"setup_id", "version"}
_INT_LIMIT = 2**63  # YAML integers beyond int64 would overflow a float or an index
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _names(keys: Any) -> str:
    return ", ".join(sorted(str(k) for k in keys))


def parse_time(value: Any, field: str) -> int | None:
    """Epoch ms of an ISO date/time (naive = UTC), or None.

    Raises:
        DataValidationError: not a date, or outside the range pandas can hold in nanoseconds
            (1677-09-21 .. 2262-04-11).
    """
    if value is None:
        return None
    try:
        if isinstance(value, dt.datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        elif isinstance(value, dt.date):
            stamp = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        elif isinstance(value, str):
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
        else:
            raise DataValidationError(f"{field}: {value!r}: not an ISO date/time")
        ms = int(stamp.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise DataValidationError(f"{field}: {value!r}: not an ISO date/time") from exc
    if not TS_MIN_MS <= ms <= TS_MAX_MS:
        raise DataValidationError(
            f"{field}: {value!r}: outside the time range candles can have "
            "(1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z, pandas' nanosecond timestamps)"
        )
    return ms


@dataclass(frozen=True, slots=True)
class DataParams:
    """Which candles: ``[start_ms, end_ms)`` UTC (None: unbounded)."""

    market: str
    symbol: str
    timeframe: str | None  # None: the candles' own bars
    start_ms: int | None
    end_ms: int | None
    source_timeframe: str = "1m"


@dataclass(frozen=True, slots=True)
class BacktestParams:
    """Execution parameters (percent values as written in params.yaml)."""

    init_cash: float = 10_000.0
    fee_pct: float = DEFAULT_FEE_PCT
    slippage_pct: float = 0.01
    warmup_bars: int = 200

    @property
    def fee_rate(self) -> float:
        """fee_pct / 100."""
        return self.fee_pct / 100.0

    @property
    def slip(self) -> float:
        """slippage_pct / 100."""
        return self.slippage_pct / 100.0


@dataclass(frozen=True, slots=True)
class RunParams:
    """Everything params.yaml says about a run."""

    setup_id: str | None
    version: str | None
    data: DataParams
    backtest: BacktestParams

    def to_dict(self) -> dict[str, Any]:
        """The resolved values, as recorded in summary.json and the config hash."""
        from ita_vc.candles.validate import format_ts

        return {
            "rule": {"setup_id": self.setup_id, "version": self.version},
            "data": {
                "market": self.data.market, "symbol": self.data.symbol,
                "timeframe": self.data.timeframe, "source_timeframe": self.data.source_timeframe,
                "start": format_ts(self.data.start_ms) if self.data.start_ms is not None else None,
                "end": format_ts(self.data.end_ms) if self.data.end_ms is not None else None,
            },
            "backtest": {
                "init_cash": self.backtest.init_cash, "fee_pct": self.backtest.fee_pct,
                "slippage_pct": self.backtest.slippage_pct,
                "warmup_bars": self.backtest.warmup_bars,
            },
        }


def _fail(field: str, value: Any, why: str) -> DataValidationError:
    return DataValidationError(f"{SOURCE}: {field}: {value!r}: {why}")


def _section(raw: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    section = raw.get(name)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise _fail(name, section, f"{name} must be a mapping")
    unknown = [k for k in section if k not in keys]
    if unknown:
        raise DataValidationError(
            f"{SOURCE}: {name}: unknown key(s) {_names(unknown)} (known: {_names(keys)})"
        )
    return section


def _number(value: Any, field: str, *, minimum: float = 0.0, strict: bool = False,
            below: float | None = None) -> float:
    key = field.rsplit(".", 1)[-1]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            abs(value) >= _INT_LIMIT if isinstance(value, int) else not math.isfinite(value)):
        raise _fail(field, value, f"{key} must be a number (finite)")
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    bound += f" and < {below:g} (percent)" if below is not None else ""
    if value < minimum or (strict and value == minimum) or (below is not None and
                                                            value >= below):
        raise _fail(field, value, f"{key} must be {bound}")
    return float(value)


def _name(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _fail(field, value, f"not a {what} name (letters, digits, '.', '_', '-', starting "
                                  "with a letter or digit; at most 64)")
    return value


def _timeframe(value: Any, field: str) -> str:
    from ita_vc.candles.schema import TIMEFRAMES

    if not isinstance(value, str) or value not in TIMEFRAMES:
        raise _fail(field, value, f"unknown timeframe (one of {', '.join(TIMEFRAMES)})")
    return value


def _rule_section(raw: Mapping[str, Any]) -> tuple[str | None, str | None]:
    from ita_vc.rules.model import RuleVersion
    from ita_vc.rules.validate import check_setup_id

    rule = _section(raw, "rule", _RULE_KEYS)
    setup_id = rule.get("setup_id")
    if setup_id is not None and (reason := check_setup_id(setup_id)):
        raise _fail("rule.setup_id", setup_id, reason)
    version = rule.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        raise DataValidationError(
            f"{SOURCE}: rule.version: {version!r}: rule.version {version!r} is a number (YAML "
            f'reads 1.10 as 1.1); quote it: version: "{version}"'
        )
    if version is not None:
        try:
            version = str(RuleVersion.parse(version))  # type: ignore[arg-type] # checks it
        except ValueError as exc:
            raise _fail("rule.version", version, str(exc)) from exc
    return setup_id, version


def _data_section(raw: Mapping[str, Any]) -> DataParams:
    data = _section(raw, "data", _DATA_KEYS)
    market = _name(data.get("market", "generic"), "data.market", "market")
    symbol = data.get("symbol")
    symbol = "" if symbol is None or symbol == "" else _name(symbol, "data.symbol", "symbol")
    timeframe = data.get("timeframe")
    if timeframe is not None:
        timeframe = _timeframe(timeframe, "data.timeframe")
    source_tf = _timeframe(data.get("source_timeframe", "1m"), "data.source_timeframe")
    start = parse_time(data.get("start"), f"{SOURCE}: data.start")
    end = parse_time(data.get("end"), f"{SOURCE}: data.end")
    if start is not None and end is not None and start >= end:
        raise DataValidationError(
            f"{SOURCE}: data.start: {data.get('start')!r}: must be before data.end "
            f"{data.get('end')!r}"
        )
    return DataParams(market=market, symbol=symbol, timeframe=timeframe, start_ms=start,
                      end_ms=end, source_timeframe=source_tf)


def _backtest_section(raw: Mapping[str, Any], market: str) -> BacktestParams:
    bt = _section(raw, "backtest", _BACKTEST_KEYS)
    fee = bt.get("fee_pct")
    default_fee = FUTURES_FEE_PCT if market.endswith("futures") else DEFAULT_FEE_PCT
    warmup = bt.get("warmup_bars", 200)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < _INT_LIMIT:
        raise _fail("backtest.warmup_bars", warmup, "warmup_bars must be a whole number >= 0")
    return BacktestParams(
        init_cash=_number(bt.get("init_cash", 10_000), "backtest.init_cash", strict=True),
        fee_pct=default_fee if fee is None else _number(fee, "backtest.fee_pct", below=MAX_PCT),
        slippage_pct=_number(bt.get("slippage_pct", 0.01), "backtest.slippage_pct",
                             below=MAX_PCT),
        warmup_bars=warmup,
    )


def parse_params(raw: Mapping[str, Any] | None) -> RunParams:
    """Validate a params mapping (every value but the ``grid:`` section's, which
    :func:`ita_vc.backtest.grid.parse_grid` checks).

    Raises:
        DataValidationError: unknown sections or keys, a float version, an invalid setup id,
            fees or slippage outside [0, 100) %, a non-positive init_cash, a bad timeframe,
            market or symbol, a date outside 1677-09-21 .. 2262-04-11, start >= end, and the
            like; the message names ``params.yaml: <section>.<key>: <value>``.
    """
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise DataValidationError(f"{SOURCE} must be a mapping of sections "
                                  f"({_names(_SECTIONS)}), got {type(raw).__name__}")
    unknown = [k for k in raw if k not in _SECTIONS]
    if unknown:
        raise DataValidationError(f"{SOURCE}: unknown section(s) {_names(unknown)} "
                                  f"(known: {_names(_SECTIONS)})")
    setup_id, version = _rule_section(raw)
    data = _data_section(raw)
    return RunParams(setup_id=setup_id, version=version, data=data,
                     backtest=_backtest_section(raw, data.market))
