"""Run parameters (``params.yaml``): validated before any computation.

``params.yaml`` (or a mapping shaped like it)::

    rule: {setup_id: example_ma_cross, version: "1.0"}     # version: a quoted string
    data: {market: binance-spot, symbol: BTCUSDT, timeframe: 1h,
           start: "2025-01-08", end: "2025-03-01"}          # [start, end) UTC; optional
    backtest: {init_cash: 10000, fee_pct: null, slippage_pct: 0.01, warmup_bars: 200}

``fee_pct`` null means the market's default: 0.1 % for futures markets, 0.075 % otherwise.
``periods_per_year`` (optional, engine 1.1) annualises Sharpe and Sortino: null or absent means
the market's default, 365 for crypto markets (:data:`CRYPTO_VENUES`), 252 for any other.
Every value is checked here (the ``grid:`` section by :func:`ita_vc.grid.parse_grid`):
the file's shape is declared once (:data:`PARAMS_SCHEMA`, an :mod:`ita_vc.schema` schema), the
cross-field rules (the version's float trap, ``start < end``) are named checks after it. Every
problem is reported at once, as a :class:`~ita_vc.errors.DataValidationError` (exit 11) with
one line per problem: ``params.yaml[:<line>]: <section>.<key>: <value>: <why>`` (the line
when the caller passes the document's node index).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import voluptuous as vol

from ita_vc.candles.schema import TIMEFRAMES
from ita_vc.errors import DataValidationError
from ita_vc.rules.model import RuleVersion
from ita_vc.rules.validate import check_setup_id
from ita_vc.schema import Invalid, Problems, strict
from ita_vc.utils.hashing import hash_canonical

__all__ = [
    "CALENDAR_PERIODS",
    "CRYPTO_VENUES",
    "DEFAULT_FEE_PCT",
    "FUTURES_FEE_PCT",
    "MAX_PCT",
    "PARAMS_SCHEMA",
    "PRESET_SECTIONS",
    "TRADING_PERIODS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "BacktestParams",
    "DataParams",
    "RunParams",
    "default_periods_per_year",
    "parse_params",
    "parse_time",
    "preset_ref",
    "preset_values",
]

DEFAULT_FEE_PCT = 0.075
FUTURES_FEE_PCT = 0.1
MAX_PCT = 100.0
CALENDAR_PERIODS = 365
"""Daily returns over every calendar day (engine 1.0's only model; crypto trades every day)."""
TRADING_PERIODS = 252
"""Daily returns over the UTC days that have a bar: the default of non-crypto markets."""
CRYPTO_VENUES = (
    "binance", "bybit", "okx", "coinbase", "kraken", "bitget", "kucoin", "deribit", "bitfinex",
    "bitstamp", "gate", "mexc", "htx", "huobi", "hyperliquid", "crypto",
)  # fmt: skip
"""Markets named ``<venue>`` or ``<venue>-...`` with these venues trade every day: their
``periods_per_year`` defaults to 365; every other market's (``generic`` included) to 252."""
"""fee_pct and slippage_pct are percents in ``[0, MAX_PCT)``: at 100 % slippage a sell fills at
0 (the engine divides by the fill), beyond it fills would be priced negative."""
TS_MIN_MS = -9_223_372_036_854
"""Earliest epoch ms pandas can hold in nanoseconds (1677-09-21T00:12:43.145Z, rounded in)."""
TS_MAX_MS = 9_223_372_036_854
"""Latest epoch ms pandas can hold in nanoseconds (2262-04-11T23:47:16.854Z)."""
SOURCE = "params.yaml"
_SECTIONS = {"rule", "data", "backtest", "grid", "validation"}
_INT_LIMIT = 2**63  # YAML integers beyond int64 would overflow a float or an index
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TIME_RANGE = (
    "outside the time range candles can have "
    "(1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z, pandas' nanosecond timestamps)"
)


def _names(keys: Iterable[object]) -> str:
    return ", ".join(sorted(str(k) for k in keys))


def _epoch_ms(value: object) -> int:
    """Epoch ms of an ISO date/time (naive = UTC).

    Raises:
        ValueError: why it is not one pandas can hold.
    """
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
            raise ValueError("not an ISO date/time")  # noqa: TRY301,TRY004 - one message
        ms = int(stamp.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise ValueError("not an ISO date/time") from None
    if not TS_MIN_MS <= ms <= TS_MAX_MS:
        raise ValueError(_TIME_RANGE)
    return ms


def parse_time(value: Any, field: str) -> int | None:
    """Epoch ms of an ISO date/time (naive = UTC), or None.

    Raises:
        DataValidationError: not a date, or outside the range pandas can hold in nanoseconds
            (1677-09-21 .. 2262-04-11).
    """
    if value is None:
        return None
    try:
        return _epoch_ms(value)
    except ValueError as exc:
        raise DataValidationError(f"{field}: {value!r}: {exc}") from None


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
    periods_per_year: float = CALENDAR_PERIODS
    """Sharpe/Sortino annualisation; 365 is engine 1.0's model (every calendar day)."""

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
    engine: str | None = None
    """The engine a dvc.yaml stage pins (None: the newest); not a recorded value."""

    @property
    def engine_version(self) -> str:
        """The oldest engine whose model these parameters run: "1.0" unless a key of a later
        engine is away from its 1.0 value (STYLE section 8: such runs stay byte-identical)."""
        return "1.0" if self.backtest.periods_per_year == CALENDAR_PERIODS else "1.1"

    def to_dict(self) -> dict[str, Any]:
        """The resolved values, as recorded in summary.json and the config hash
        (``periods_per_year`` only when it is not 365, engine 1.0's value)."""
        from ita_vc.candles.validate import format_ts

        extra: dict[str, Any] = (
            {}
            if self.backtest.periods_per_year == CALENDAR_PERIODS
            else {"periods_per_year": self.backtest.periods_per_year}
        )
        return {
            "rule": {"setup_id": self.setup_id, "version": self.version},
            "data": {
                "market": self.data.market,
                "symbol": self.data.symbol,
                "timeframe": self.data.timeframe,
                "source_timeframe": self.data.source_timeframe,
                "start": format_ts(self.data.start_ms) if self.data.start_ms is not None else None,
                "end": format_ts(self.data.end_ms) if self.data.end_ms is not None else None,
            },
            "backtest": {
                "init_cash": self.backtest.init_cash,
                "fee_pct": self.backtest.fee_pct,
                "slippage_pct": self.backtest.slippage_pct,
                "warmup_bars": self.backtest.warmup_bars,
                **extra,
            },
        }


# --- value validators: each message reads ``<value>: <why>`` ------------------------------------


def _refuse(value: object, why: str) -> NoReturn:
    raise Invalid(f"{value!r}: {why}")


def _amount(
    key: str, *, strict_minimum: bool = False, percent: bool = False, null: bool = False
) -> Callable[[object], float | None]:
    """A finite number >= 0 (> 0 with ``strict_minimum``; < 100 as a ``percent``)."""
    bound = "> 0" if strict_minimum else ">= 0"
    bound += f" and < {MAX_PCT:g} (percent)" if percent else ""

    def check(value: object) -> float | None:
        if value is None and null:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (abs(value) >= _INT_LIMIT if isinstance(value, int) else not math.isfinite(value))
        ):
            _refuse(value, f"{key} must be a number (finite)")
        if value < 0 or (strict_minimum and value == 0) or (percent and value >= MAX_PCT):
            _refuse(value, f"{key} must be {bound}")
        return float(value)

    return check


def _periods_per_year(value: object) -> float | None:
    if value is None:
        return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # from code, not YAML
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) if isinstance(value, float) else abs(value) < _INT_LIMIT)
        or not 1 <= value <= 366
    ):
        _refuse(
            value,
            "periods_per_year must be a number of daily returns per year in [1, 366] "
            "(365 crypto, 252 stocks; null: the market's default)",
        )
    return float(value)


def _warmup_bars(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _INT_LIMIT:
        _refuse(value, "warmup_bars must be a whole number >= 0")
    return value


def _name(what: str, *, empty: bool = False) -> Callable[[object], str]:
    """A market or symbol name (``empty``: null or "" stand for no name)."""

    def check(value: object) -> str:
        if empty and (value is None or value == ""):
            return ""
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            _refuse(
                value,
                f"not a {what} name (letters, digits, '.', '_', '-', starting with a "
                "letter or digit; at most 64)",
            )
        return value

    return check


def _timeframe(*, null: bool = False) -> Callable[[object], str | None]:

    def check(value: object) -> str | None:
        if value is None and null:
            return None
        if not isinstance(value, str) or value not in TIMEFRAMES:
            _refuse(value, f"unknown timeframe (one of {', '.join(TIMEFRAMES)})")
        return value

    return check


def _time(value: object) -> int | None:
    if value is None:
        return None
    try:
        return _epoch_ms(value)
    except ValueError as exc:
        _refuse(value, str(exc))


def _setup_id(value: object) -> str | None:
    if value is None:
        return None
    if reason := check_setup_id(value):
        _refuse(value, reason)
    return str(value)


def _anything(value: object) -> object:
    return value


def _unknown_section(_value: object) -> NoReturn:
    raise Invalid(f"unknown section (known: {', '.join(sorted(_SECTIONS))})")


PARAMS_SCHEMA = strict(
    {
        vol.Optional("rule", default={}): strict(
            {
                vol.Optional("setup_id", default=None): _setup_id,
                vol.Optional("version", default=None): _anything,  # float trap: _check_version
            }
        ),
        vol.Optional("data", default={}): strict(
            {
                vol.Optional("market", default="generic"): _name("market"),
                vol.Optional("symbol", default=""): _name("symbol", empty=True),
                vol.Optional("timeframe", default=None): _timeframe(
                    null=True
                ),  # None: the candles'
                vol.Optional("source_timeframe", default="1m"): _timeframe(),
                vol.Optional("start", default=None): _time,  # epoch ms, [start, end) UTC
                vol.Optional("end", default=None): _time,
            }
        ),
        vol.Optional("backtest", default={}): strict(
            {
                vol.Optional("init_cash", default=10_000): _amount(
                    "init_cash", strict_minimum=True
                ),
                vol.Optional("fee_pct", default=None): _amount("fee_pct", percent=True, null=True),
                vol.Optional("slippage_pct", default=0.01): _amount("slippage_pct", percent=True),
                vol.Optional("warmup_bars", default=200): _warmup_bars,
                vol.Optional("periods_per_year", default=None): _periods_per_year,
            }
        ),
        vol.Optional("grid"): _anything,  # checked by ita_vc.grid.parse_grid
        vol.Optional("validation"): _anything,  # checked by ita_vc.validation.parse_validation
        # written by `ita-vc preset apply` (ita_vc.presets); read by no stage
        vol.Optional("preset"): strict({vol.Required("name"): str, vol.Required("sha256"): str}),
        vol.Extra: _unknown_section,
    }
)
"""The shape of ``params.yaml`` (a null section reads as an empty one); validated values are
resolved: dates to epoch ms, fee_pct None until the market's default is applied."""


# --- named cross-field checks ----------------------------------------------------------------


def _check_version(rule: Mapping[str, Any], problems: Problems) -> str | None:
    """``rule.version`` as ``X.Y``; an unquoted number is the float trap (1.10 reads as 1.1)."""
    version = rule.get("version")
    if version is None:
        return None
    if isinstance(version, int | float) and not isinstance(version, bool):
        typed = problems.raw("rule.version") or repr(version)
        problems.add(
            "rule.version",
            f"{typed}: rule.version {typed} is a number (YAML reads "
            f'1.10 as 1.1); quote it: version: "{typed}"',
        )
        return None
    try:
        return str(RuleVersion.parse(version))
    except ValueError as exc:
        problems.add("rule.version", f"{version!r}: {exc}")
        return None


def _check_period(raw: Mapping[str, Any], problems: Problems) -> None:
    """``data.start`` is before ``data.end`` (when both are dates; the schema reports others)."""
    data = raw.get("data")
    if not isinstance(data, Mapping):
        return
    start, end = data.get("start"), data.get("end")
    try:
        before = _epoch_ms(start) < _epoch_ms(end)
    except ValueError:
        return
    if not before:
        problems.add("data.start", f"{start!r}: must be before data.end {end!r}")


def _sections(raw: Mapping[Any, Any]) -> dict[Any, Any]:
    """The document with its null ``rule``, ``data`` and ``backtest`` sections read as empty."""
    return {
        key: {} if value is None and key in ("rule", "data", "backtest") else value
        for key, value in raw.items()
    }


def parse_params(
    raw: Mapping[str, Any] | None,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    source: str = SOURCE,
    engine: str | None = None,
) -> RunParams:
    """Validate a params mapping (every value but the ``grid:`` section's, which
    :func:`ita_vc.grid.parse_grid` checks).

    ``index`` (:attr:`ita_vc.yaml_read.YamlDocument.index` of the file ``raw`` was read from)
    puts the line in each message, and the float trap quotes the version as typed. ``engine``
    is the engine a dvc.yaml stage pins (None: the newest): under engine 1.0 every market's
    ``periods_per_year`` is 365 and another value is refused, so pinned results never change.

    Raises:
        DataValidationError: every problem at once: unknown sections or keys, a float version,
            an invalid setup id, fees or slippage outside [0, 100) %, a non-positive init_cash,
            a bad timeframe, market or symbol, a date outside 1677-09-21 .. 2262-04-11,
            start >= end, and the like; each line names ``params.yaml: <section>.<key>:
            <value>``.
    """
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise DataValidationError(
            f"{source} must be a mapping of sections "
            f"({_names(_SECTIONS)}), got {type(raw).__name__}"
        )
    problems = Problems(source, index or {})
    valid = problems.check(PARAMS_SCHEMA, _sections(raw))
    rule = raw.get("rule")
    version = _check_version(rule, problems) if isinstance(rule, Mapping) else None
    _check_period(raw, problems)
    if valid is not None and engine == "1.0":
        _check_engine_10(valid, problems)
    if problems or valid is None:
        problems.fail(DataValidationError)
    return _resolve(valid, version, engine)


def _check_engine_10(valid: Mapping[str, Any], problems: Problems) -> None:
    """Engine 1.0 annualises over 365 calendar days only."""
    periods = valid["backtest"]["periods_per_year"]
    if periods is not None and periods != CALENDAR_PERIODS:
        problems.add(
            "backtest.periods_per_year",
            f"{problems.raw('backtest.periods_per_year') or periods}: needs engine 1.1, and "
            "dvc.yaml pins engine 1.0 (`ita-vc init --upgrade --yes` moves the pipeline to "
            "1.1; results of non-crypto markets then change, see docs/backtest-model.md)",
        )


def default_periods_per_year(market: str) -> int:
    """365 for a crypto market (named after one of :data:`CRYPTO_VENUES`), else 252."""
    venue = market.lower().split("-", 1)[0]
    return CALENDAR_PERIODS if venue in CRYPTO_VENUES else TRADING_PERIODS


def _resolve(valid: Mapping[str, Any], version: str | None, engine: str | None) -> RunParams:
    """The run parameters of a validated document (the market's default fee and
    periods_per_year applied; under engine 1.0 periods_per_year is 365)."""
    data, backtest = valid["data"], valid["backtest"]
    fee = backtest["fee_pct"]
    if fee is None:
        fee = FUTURES_FEE_PCT if data["market"].endswith("futures") else DEFAULT_FEE_PCT
    periods = backtest["periods_per_year"]
    if engine == "1.0":
        periods = CALENDAR_PERIODS
    elif periods is None:
        periods = default_periods_per_year(data["market"])
    return RunParams(
        setup_id=valid["rule"]["setup_id"],
        version=version,
        engine=engine,
        data=DataParams(
            market=data["market"],
            symbol=data["symbol"],
            timeframe=data["timeframe"],
            start_ms=data["start"],
            end_ms=data["end"],
            source_timeframe=data["source_timeframe"],
        ),
        backtest=BacktestParams(
            init_cash=backtest["init_cash"],
            fee_pct=fee,
            slippage_pct=backtest["slippage_pct"],
            warmup_bars=backtest["warmup_bars"],
            periods_per_year=float(periods),
        ),
    )


PRESET_SECTIONS: tuple[str, ...] = ("rule", "data", "backtest", "grid", "validation")
"""The params.yaml sections a preset holds (:mod:`ita_vc.presets`), in params.yaml's order."""


def preset_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """The preset sections of a params mapping (absent sections absent)."""
    return {key: params[key] for key in PRESET_SECTIONS if key in params}


def preset_ref(params: Mapping[str, Any]) -> dict[str, str] | None:
    """``{"name", "sha256"}`` when ``params`` records ``preset: {name, sha256}`` and its preset
    sections still hash to that sha256 (the run's params came from that preset); else None."""
    ref = params.get("preset") if isinstance(params, Mapping) else None
    if not isinstance(ref, Mapping):
        return None
    name, sha = ref.get("name"), ref.get("sha256")
    if not isinstance(name, str) or not isinstance(sha, str):
        return None
    try:
        current = hash_canonical(preset_values(params))
    except (TypeError, ValueError):
        return None
    return {"name": name, "sha256": sha} if current == sha else None
