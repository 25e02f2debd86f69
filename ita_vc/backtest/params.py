"""Run parameters (``params.yaml``): validated before any computation.

``params.yaml`` (or a mapping shaped like it)::

    rule: {setup_id: example_ma_cross, version: "1.0"}     # version: a quoted string
    data: {market: binance-spot, symbol: BTCUSDT, timeframe: 1h,
           start: "2025-01-08", end: "2025-03-01"}          # [start, end) UTC; optional
    backtest: {init_cash: 10000, fee_pct: null, slippage_pct: 0.01, warmup_bars: 200}

``fee_pct`` null means the market's default: 0.1 % for futures markets, 0.075 % otherwise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ita_vc.errors import DataValidationError

__all__ = [
    "DEFAULT_FEE_PCT",
    "FUTURES_FEE_PCT",
    "BacktestParams",
    "DataParams",
    "RunParams",
    "parse_params",
    "parse_time",
]

DEFAULT_FEE_PCT = 0.075
FUTURES_FEE_PCT = 0.1
_SECTIONS = {"rule", "data", "backtest", "grid"}
_DATA_KEYS = {"market", "symbol", "timeframe", "start", "end", "source_timeframe"}
_BACKTEST_KEYS = {"init_cash", "fee_pct", "slippage_pct", "warmup_bars"}
_RULE_KEYS = {"setup_id", "version"}


def parse_time(value: Any, field: str) -> int | None:
    """Epoch ms of an ISO date/time (naive = UTC), or None.

    Raises:
        DataValidationError: not a date.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        stamp = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DataValidationError(f"{field}: not an ISO date/time: {value!r}") from exc
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
    else:
        raise DataValidationError(f"{field}: not an ISO date/time: {value!r}")
    return int(stamp.timestamp() * 1000)


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


def _section(raw: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    section = raw.get(name) or {}
    if not isinstance(section, Mapping):
        raise DataValidationError(f"params: {name} must be a mapping")
    unknown = sorted(set(section) - keys)
    if unknown:
        raise DataValidationError(
            f"params: {name}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(keys))})"
        )
    return section


def _number(value: Any, field: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataValidationError(f"params: {field} must be a number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise DataValidationError(f"params: {field} must be {bound}, got {value!r}")
    return float(value)


def parse_params(raw: Mapping[str, Any] | None) -> RunParams:
    """Validate a params mapping.

    Raises:
        DataValidationError: unknown sections or keys, a float version, negative fees,
            start >= end, a bad timeframe, and the like.
    """
    from ita_vc.candles.schema import timeframe_ms

    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise DataValidationError("params must be a mapping")
    unknown = sorted(set(raw) - _SECTIONS)
    if unknown:
        raise DataValidationError(f"params: unknown section(s) {', '.join(unknown)}")
    rule = _section(raw, "rule", _RULE_KEYS)
    version = rule.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        raise DataValidationError(
            f'params: rule.version {version!r} is a number (YAML reads 1.10 as 1.1); quote it: '
            f'version: "{version}"'
        )
    if version is not None:
        from ita_vc.rules.model import RuleVersion

        try:
            version = str(RuleVersion.parse(str(version)))
        except ValueError as exc:
            raise DataValidationError(f"params: rule.version: {exc}") from exc
    data = _section(raw, "data", _DATA_KEYS)
    market = str(data.get("market", "generic"))
    timeframe = None if data.get("timeframe") is None else str(data["timeframe"])
    source_tf = str(data.get("source_timeframe", "1m"))
    if timeframe is not None:
        timeframe_ms(timeframe)
    timeframe_ms(source_tf)
    start = parse_time(data.get("start"), "params: data.start")
    end = parse_time(data.get("end"), "params: data.end")
    if start is not None and end is not None and start >= end:
        raise DataValidationError(
            f"params: data.start {data.get('start')} must be before data.end {data.get('end')}"
        )
    bt = _section(raw, "backtest", _BACKTEST_KEYS)
    fee = bt.get("fee_pct")
    default_fee = FUTURES_FEE_PCT if market.endswith("futures") else DEFAULT_FEE_PCT
    warmup = bt.get("warmup_bars", 200)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise DataValidationError(f"params: backtest.warmup_bars must be a whole number >= 0, "
                                  f"got {warmup!r}")
    backtest = BacktestParams(
        init_cash=_number(bt.get("init_cash", 10_000), "backtest.init_cash", strict=True),
        fee_pct=default_fee if fee is None else _number(fee, "backtest.fee_pct"),
        slippage_pct=_number(bt.get("slippage_pct", 0.01), "backtest.slippage_pct"),
        warmup_bars=warmup,
    )
    return RunParams(
        setup_id=None if rule.get("setup_id") is None else str(rule["setup_id"]),
        version=version,
        data=DataParams(market=market, symbol=str(data.get("symbol", "")), timeframe=timeframe,
                        start_ms=start, end_ms=end, source_timeframe=source_tf),
        backtest=backtest,
    )
