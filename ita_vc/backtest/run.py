"""``run_backtest(candles, rule, params) -> BacktestResult``: the whole core, without DVC.

Steps: validate params and rule; roll up when the candles are finer than the requested
timeframe; keep the range ``[start, end)`` plus up to ``warmup_bars`` bars before it; compute
indicator states on all of them; run the engine over the range (the state before the range is
the last warm-up bar's, or NEUTRAL); compute metrics. Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.format import format_metric
from ita_vc.backtest.records import (
    FILL_FEE,
    FILL_I,
    FILL_PNL,
    FILL_PRICE,
    FILL_QTY,
    FILL_SIDE,
    FILL_SLIPPAGE,
    TRADE_DIR,
    TRADE_ENTRY_FEE,
    TRADE_ENTRY_I,
    TRADE_ENTRY_PRICE,
    TRADE_EQUITY_BEFORE,
    TRADE_EXIT_FEE,
    TRADE_EXIT_I,
    TRADE_EXIT_PRICE,
    TRADE_PNL,
    TRADE_QTY,
    TRADE_REASON,
    TRADE_RETURN_PCT,
)
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = [
    "ENGINE_VERSION",
    "SUPPORTED_ENGINES",
    "BacktestResult",
    "canonical_candles",
    "check_user_candles",
    "load_rule",
    "prepare_candles",
    "profit_lock_balances",
    "run_backtest",
]

PROFIT_LOCK = "strategy_compound_profit_lock"
ENGINE_VERSION = "1.1"
"""The newest model of docs/backtest-model.md this code implements (not the package version).
A run records the oldest engine whose model it ran (:attr:`RunParams.engine_version`): "1.0"
unless ``periods_per_year`` is away from 365."""
SUPPORTED_ENGINES = ("1.0", "1.1")
"""Engine versions a ``dvc.yaml`` stage may pin (``--engine``) and get exactly."""


@dataclass(repr=False)
class BacktestResult:
    """Everything one backtest produced.

    The tables (``trades``, ``fills``, ``equity``, ``drawdown``) are built from the engine's
    arrays on first access, and ``summary`` (provenance: rule, data_hash, config_hash, ...)
    likewise: the sha256 of the candles used and the labelled frames are a large share of a
    run's cost, and a caller that wants only the metrics (a grid, a sweep) never pays for them.
    Either way the values are the same, bit for bit.
    """

    metrics: dict[str, Any]
    summary_fields: dict[str, Any] = field(repr=False)
    position: FloatArray = field(repr=False)
    candles_used: pd.DataFrame | None = field(repr=False)
    ts: IntArray = field(repr=False)
    engine_trades: FloatArray = field(repr=False)
    engine_fills: FloatArray = field(repr=False)
    equity_values: FloatArray = field(repr=False)
    drawdown_values: FloatArray = field(repr=False)
    engine_pin: str | None = field(default=None, repr=False)
    """The engine the stage pins (None: the newest): under "1.0" the tables keep 0.3's
    columns byte for byte (no ``equity_before``)."""

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per closed trade (docs/backtest-model.md)."""
        import pandas as pd

        from ita_vc.backtest.engine import REASONS

        t, ts = self.engine_trades, self.ts
        entry_ts = ts[t[:, TRADE_ENTRY_I].astype(np.int64)]
        return pd.DataFrame(
            {
                "entry_ts": entry_ts,
                "exit_ts": ts[t[:, TRADE_EXIT_I].astype(np.int64)],
                "direction": _labels(("short", "long"), t[:, TRADE_DIR] > 0),
                "qty": t[:, TRADE_QTY],
                "entry_price": t[:, TRADE_ENTRY_PRICE],
                "exit_price": t[:, TRADE_EXIT_PRICE],
                "entry_fee": t[:, TRADE_ENTRY_FEE],
                "exit_fee": t[:, TRADE_EXIT_FEE],
                "pnl": t[:, TRADE_PNL],
                "return_pct": t[:, TRADE_RETURN_PCT],
                "exit_reason": _labels(REASONS, t[:, TRADE_REASON]),
                **(
                    {} if self.engine_pin == "1.0" else {"equity_before": t[:, TRADE_EQUITY_BEFORE]}
                ),
            }
        ).set_axis(_utc_index(entry_ts, "entry_time"))

    @cached_property
    def fills(self) -> pd.DataFrame:
        """One row per fill (seed 004's trades schema)."""
        import pandas as pd

        f, ts = self.engine_fills, self.ts
        return pd.DataFrame(
            {
                "ts_utc": ts[f[:, FILL_I].astype(np.int64)],
                "side": _labels(("sell", "buy"), f[:, FILL_SIDE] > 0),
                "qty": f[:, FILL_QTY],
                "price": f[:, FILL_PRICE],
                "fee": f[:, FILL_FEE],
                "slippage": f[:, FILL_SLIPPAGE],
                "pnl_realized": f[:, FILL_PNL],
                "borrow_cost": np.zeros(len(f)),
            }
        )

    @cached_property
    def equity(self) -> pd.DataFrame:
        """``ts_utc, equity`` per bar of the range (index: the bar's UTC time); with the
        ``strategy_compound_profit_lock`` sizing under engine 1.1 also
        ``strategy_safe_quote`` (the profit locked away) and ``strategy_available_quote`` (what
        the next entry may use)."""
        import pandas as pd

        columns: dict[str, Any] = {"ts_utc": self.ts, "equity": self.equity_values}
        sizing = self.summary_fields.get("sizing") or {}
        if self.summary_fields.get("engine_version") != "1.0" and sizing.get("mode") == PROFIT_LOCK:
            safe, available = profit_lock_balances(
                len(self.ts),
                self.engine_trades,
                float(sizing["budget"]),
                float(sizing["safe_profit_percent"]),
            )
            columns.update(strategy_safe_quote=safe, strategy_available_quote=available)
        return pd.DataFrame(columns).set_axis(_utc_index(self.ts, "time"))

    @cached_property
    def drawdown(self) -> pd.DataFrame:
        """``ts_utc, drawdown`` (equity / running peak - 1) per bar of the range (index: the
        bar's UTC time)."""
        import pandas as pd

        return pd.DataFrame({"ts_utc": self.ts, "drawdown": self.drawdown_values}).set_axis(
            _utc_index(self.ts, "time")
        )

    @property
    def stats(self) -> pd.Series[Any]:
        """The metrics as backtesting.py's ``stats`` reads: a Series in the documented order,
        Start/End as UTC Timestamps, durations as Timedeltas (``metrics`` keeps seconds)."""
        import pandas as pd

        from ita_vc.backtest.format import DURATION_METRICS

        values: dict[str, object] = {}
        for name, value in self.metrics.items():
            if name in ("Start", "End") and value is not None:
                values[name] = pd.Timestamp(str(value))
            elif name in DURATION_METRICS and value is not None:
                values[name] = pd.Timedelta(seconds=float(value))
            else:
                values[name] = value
        return pd.Series(values, dtype=object, name="stats")

    def __repr__(self) -> str:
        head = ", ".join(
            f"{k}={format_metric(k, self.metrics.get(k))}"
            for k in ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Num. Trades")
        )
        s = self.summary_fields
        return (
            f"<BacktestResult {s.get('setup_id')} {s.get('rule_version')} on {s.get('market')} "
            f"{s.get('symbol')} {s.get('timeframe')}: {head}> (.stats, .trades, .equity)"
        )

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The run summary (``summary.json``), ``data_hash`` included."""
        from ita_vc.utils.tablehash import hash_dataframe

        fields = dict(self.summary_fields)
        if fields.get("data_hash") is None and self.candles_used is not None:
            used = self.candles_used[["ts_utc", "open", "high", "low", "close", "volume"]]
            fields["data_hash"] = hash_dataframe(
                used.astype(
                    {
                        "ts_utc": "int64",
                        "open": "float64",
                        "high": "float64",
                        "low": "float64",
                        "close": "float64",
                        "volume": "float64",
                    }
                )
            )
        return fields


def model_version(params: RunParams, sizing: Mapping[str, Any]) -> str:
    """The engine a run records: the oldest whose model gives its outputs. "1.0" under a
    ``--engine 1.0`` pin, and under 1.1 unless ``periods_per_year`` is away from 365 or the
    sizing is the profit lock (whose equity output has the 1.1 balance columns)."""
    if params.engine == "1.0":
        return "1.0"
    if params.engine_version != "1.0" or sizing.get("mode") == PROFIT_LOCK:
        return "1.1"
    return "1.0"


def _utc_index(ts: IntArray, name: str) -> pd.DatetimeIndex:
    """A tz-aware (UTC) DatetimeIndex of epoch-ms timestamps."""
    import pandas as pd

    return pd.DatetimeIndex(
        pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ms", utc=True), name=name
    )


def profit_lock_balances(
    n: int, trades: FloatArray, budget: float, safe_pct: float
) -> tuple[FloatArray, FloatArray]:
    """``(safe, available)`` per bar of the profit-lock sizing (docs/backtest-model.md), after
    each bar's fills: each closed trade adds its net PnL to the balance and, when positive,
    ``pnl * safe_pct / 100`` to the safe; available = balance - safe. Accumulated in the
    engine's order (trades by exit), so the values are the engine's own, bit for bit."""
    balance = np.full(n, budget)
    safe = np.zeros(n)
    if len(trades):
        pnl = trades[:, TRADE_PNL]
        locked = np.where(pnl > 0, pnl * safe_pct / 100, 0.0)
        exits = trades[:, TRADE_EXIT_I].astype(np.int64)
        # running sums in the engine's order (add.accumulate adds left to right; adding the
        # 0.0 of a losing trade leaves the safe as the engine leaves it)
        running_balance = np.add.accumulate(np.r_[budget, pnl])[1:]
        running_safe = np.add.accumulate(np.r_[0.0, locked])[1:]
        # the value after the last trade closed at or before each bar
        last = np.searchsorted(exits, np.arange(n), side="right") - 1
        has = last >= 0
        balance[has] = running_balance[last[has]]
        safe[has] = running_safe[last[has]]
    return safe, balance - safe


def load_rule(rule: Rule | Mapping[str, object] | str | Path, catalog: Catalog) -> Rule:
    """A :class:`Rule` from a Rule, a mapping or a file anywhere (outside the registry a
    missing ``params_hash`` is computed, a present one must match; missing direction, sizing
    and targets default to long-short, all_in and no SL/TP).

    Raises:
        RuleValidationError: invalid rule.
    """
    from ita_vc.errors import RuleValidationError
    from ita_vc.rules.model import Rule as RuleClass
    from ita_vc.rules.validate import parse_rule

    if isinstance(rule, RuleClass):
        return rule
    if isinstance(rule, Mapping):
        import yaml

        raw = yaml.safe_dump(dict(rule), sort_keys=False).encode("utf-8")
        source = "<rule mapping>"
    else:
        path = Path(rule)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RuleValidationError(f"{path}: cannot read the rule file: {exc}") from exc
        source = str(path)
    parsed, problems = parse_rule(raw, source, catalog=catalog, rules_root=None, require_hash=False)
    if parsed is None:
        raise RuleValidationError("\n".join(str(p) for p in problems))
    return parsed


_OHLCV = ("open", "high", "low", "close", "volume")


def canonical_candles(candles: pd.DataFrame) -> pd.DataFrame:
    """The canonical candle frame (``ts_utc`` epoch ms, ``open .. volume``) of what users have:
    the canonical frame itself (returned as it is), or backtesting.py's / yfinance's shape - a
    DatetimeIndex (naive = UTC; tz-aware converted to UTC) and ``Open``, ``High``, ``Low``,
    ``Close``, ``Volume`` columns in any letter case (Volume optional).

    Raises:
        DataValidationError: neither shape (the columns found are named), an index that is not
            datetimes, or NaT in it.
    """
    import pandas as pd

    if not isinstance(candles, pd.DataFrame):
        raise DataValidationError(
            f"candles must be a pandas DataFrame, got {type(candles).__name__}"
        )
    if "ts_utc" in candles.columns:
        return candles
    lower: dict[str, object] = {}
    for column in candles.columns:
        key = str(column).lower()
        if key in _OHLCV and key in lower:
            raise DataValidationError(
                f"candles: both {lower[key]!r} and {column!r} are columns: which is the "
                f"{key} price is ambiguous; drop one"
            )
        lower[key] = column
    missing = [c for c in _OHLCV[:4] if c not in lower]
    if missing or not isinstance(candles.index, pd.DatetimeIndex):
        why = (
            f"missing column(s) {', '.join(missing)}"
            if missing
            else f"the index is {type(candles.index).__name__}, not a DatetimeIndex"
        )
        raise DataValidationError(
            "candles: expected ts_utc, open, high, low, close[, volume] columns, or a "
            f"DatetimeIndex with Open/High/Low/Close[/Volume] columns; {why} "
            f"(columns: {', '.join(map(str, candles.columns)) or 'none'})"
        )
    index = candles.index
    if index.hasnans:
        raise DataValidationError("candles: the DatetimeIndex has NaT values")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    frame = pd.DataFrame(
        {
            "ts_utc": index.as_unit("ms").asi8,
            **{c: candles[lower[c]].to_numpy(dtype=np.float64) for c in _OHLCV if c in lower},
        }
    )
    return frame if "volume" in frame else frame.assign(volume=0.0)


def check_user_candles(frame: pd.DataFrame) -> None:
    """What ``data import`` refuses, refused for a frame given to :func:`run_backtest`:
    ``ts_utc`` not integer epoch ms, a timestamp twice, a price missing, NaN, infinite or
    <= 0, high below max(open, close) or low above min(open, close), a negative volume.

    Raises:
        DataValidationError: naming every failed rule with its first rows.
    """
    from ita_vc.candles.validate import validate_candles

    missing = [c for c in ("ts_utc", "open", "high", "low", "close") if c not in frame]
    if missing:
        raise DataValidationError(f"candles: missing column(s) {', '.join(missing)}")
    ts = frame["ts_utc"]
    if ts.dtype.kind not in "iu":
        raise DataValidationError(
            f"candles: ts_utc must be integer epoch milliseconds, got dtype {ts.dtype} "
            "(a DatetimeIndex with Open/High/Low/Close columns is read as well)"
        )
    try:
        validate_candles(frame if "volume" in frame else frame.assign(volume=0.0), 1, "candles")
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"candles: a price or volume is not a number: {exc}") from exc
    repeated = ts.duplicated(keep=False).to_numpy()
    if repeated.any():
        first = sorted(set(ts[repeated].tolist()))[:5]
        raise DataValidationError(
            f"candles: {int(repeated.sum())} row(s) share a timestamp (ts_utc {first})"
        )


def _infer_step(ts: npt.ArrayLike) -> int | None:
    diffs = np.diff(np.asarray(ts, dtype=np.int64))
    return int(diffs.min()) if len(diffs) else None


def prepare_candles(
    candles: pd.DataFrame, params: RunParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Roll up to ``params.data.timeframe`` when needed and cut ``[start, end)`` plus warm-up.

    Returns the frame (with a boolean ``warmup`` column) and a report.

    Raises:
        DataValidationError: missing columns, a range outside the data, a coarser source.
    """
    import pandas as pd

    from ita_vc.candles.rollup import rollup_with_report
    from ita_vc.candles.schema import TIMEFRAMES, timeframe_ms

    candles = canonical_candles(candles)
    check_user_candles(candles)  # the columns too
    frame = (
        candles
        if candles["ts_utc"].is_monotonic_increasing
        else candles.sort_values("ts_utc", kind="stable")
    )
    frame = frame.reset_index(drop=True)
    if "volume" not in frame:
        frame = frame.assign(volume=0.0)
    step = _infer_step(frame["ts_utc"])
    target = step if params.data.timeframe is None else timeframe_ms(params.data.timeframe)
    report: dict[str, Any] = {
        "rollup": None,
        "timeframe": params.data.timeframe
        or next((name for name, ms in TIMEFRAMES.items() if ms == step), None),
    }
    if step is not None and target is not None and step < target:
        source = next((name for name, ms in TIMEFRAMES.items() if ms == step), None)
        if source is None:
            raise DataValidationError(f"candles: bar spacing of {step} ms is no known timeframe")
        frame, rolled = rollup_with_report(frame, str(params.data.timeframe), source)
        report["rollup"] = rolled.to_dict()
    elif step is not None and target is not None and step > target:
        raise DataValidationError(
            f"candles are {step // 60_000}-minute bars, coarser than the requested "
            f"{params.data.timeframe}"
        )
    ts = frame["ts_utc"].to_numpy(dtype=np.int64)
    start, end = params.data.start_ms, params.data.end_ms
    if len(ts) and ((start is not None and start > ts[-1]) or (end is not None and end <= ts[0])):
        from ita_vc.candles.validate import format_ts

        raise DataValidationError(
            f"the range [{params.to_dict()['data']['start']}, {params.to_dict()['data']['end']}) "
            f"is outside the data ({format_ts(int(ts[0]))} .. {format_ts(int(ts[-1]))})"
        )
    lo = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, side="left"))
    first = max(0, lo - params.backtest.warmup_bars)
    cut = frame.iloc[first:hi].reset_index(drop=True)
    cut["warmup"] = np.arange(len(cut)) < (lo - first)
    report.update(warmup_bars=lo - first, bars=hi - lo)
    return pd.DataFrame(cut), report


def _labels(names: Sequence[str], codes: npt.ArrayLike) -> pd.Series[str]:
    """A ``str`` column of ``names[code]``, built by Arrow's ``take`` (the ``str`` dtype is
    Arrow-backed: no Python string object per row)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    taken = pc.take(
        pa.array(list(names), type=pa.large_string()), pa.array(np.asarray(codes, dtype=np.int64))
    )
    return pd.Series(pd.array(taken, dtype="str"))


def run_backtest(
    candles: pd.DataFrame,
    rule: Rule | Mapping[str, object] | str | Path,
    params: Mapping[str, Any] | RunParams | None = None,
    *,
    catalog: Catalog | None = None,
) -> BacktestResult:
    """Backtest ``rule`` on ``candles`` with ``params`` (shaped like params.yaml).

    ``candles``: the canonical frame (``ts_utc`` ms, open, high, low, close, volume), or
    backtesting.py's / yfinance's shape (a DatetimeIndex, Open/High/Low/Close/Volume); it may
    already be prepared (with a ``warmup`` column), otherwise it is rolled up and cut here.
    The result's ``equity`` and ``drawdown`` have a UTC DatetimeIndex (``time``), ``trades``
    one of the entry times (``entry_time``), besides the ``ts_utc``/``entry_ts`` columns.

    Raises:
        DataValidationError: bad params, range or candles. RuleValidationError: bad rule.
    """
    from ita_vc.backtest.engine import run_engine
    from ita_vc.backtest.metrics import compute_metrics, drawdown_series
    from ita_vc.backtest.params import RunParams, parse_params
    from ita_vc.backtest.signals import resolve_indicator_params, rule_states
    from ita_vc.catalog import load_catalog
    from ita_vc.utils.hashing import hash_canonical

    catalog = catalog or load_catalog()
    run_params = params if isinstance(params, RunParams) else parse_params(params)
    candles = canonical_candles(candles)
    parsed_rule = load_rule(rule, catalog)
    indicators = resolve_indicator_params(parsed_rule.indicators, catalog)
    sizing = parsed_rule.sizing
    budget = sizing.get("budget")
    if budget is not None and budget > run_params.backtest.init_cash:
        raise DataValidationError(
            f"sizing.budget {budget} is larger than backtest.init_cash "
            f"{run_params.backtest.init_cash}"
        )
    if "warmup" in candles:
        if candles["warmup"].dtype != bool:
            raise DataValidationError(
                f"candles: the warmup column must be booleans (prepared candles), got dtype "
                f"{candles['warmup'].dtype}"
            )
        frame = candles.reset_index(drop=True)
        prep: dict[str, Any] = {
            "rollup": None,
            "timeframe": run_params.data.timeframe,
            "warmup_bars": int(frame["warmup"].sum()),
            "bars": int((~frame["warmup"]).sum()),
        }
    else:
        frame, prep = prepare_candles(candles, run_params)
    high, low, close = (frame[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    states, conflicting = rule_states(indicators, high, low, close)
    warm = frame["warmup"].to_numpy(dtype=bool)
    n_warm = int(warm.sum())
    prev_state = int(states[n_warm - 1]) if n_warm else 0
    ts = frame["ts_utc"].to_numpy(dtype=np.int64)[n_warm:]
    closes = close[n_warm:]
    targets = parsed_rule.targets
    out = run_engine(
        closes,
        states[n_warm:],
        prev_state=prev_state,
        direction=parsed_rule.direction,
        sizing=sizing,
        sl_pct=targets["sl_pct"],
        tp_pct=targets["tp_pct"],
        fee_rate=run_params.backtest.fee_rate,
        slip=run_params.backtest.slip,
        init_cash=run_params.backtest.init_cash,
    )
    t = out.trades
    trade_columns = {
        "entry_ts": ts[t[:, TRADE_ENTRY_I].astype(np.int64)],
        "exit_ts": ts[t[:, TRADE_EXIT_I].astype(np.int64)],
        "pnl": t[:, TRADE_PNL],
        "return_pct": t[:, TRADE_RETURN_PCT],
    }
    drawdown = drawdown_series(out.equity, run_params.backtest.init_cash)
    metrics = compute_metrics(
        ts,
        closes,
        out.equity,
        out.position,
        trade_columns,
        run_params.backtest.init_cash,
        drawdown,
        periods_per_year=run_params.backtest.periods_per_year,
    )
    resolved = run_params.to_dict()
    engine_version = model_version(run_params, sizing)
    config = {
        "engine_version": engine_version,
        "rule": {
            "setup_id": parsed_rule.setup_id,
            "version": parsed_rule.version.tag,
            "params_hash": parsed_rule.params_hash,
        },
        "data": resolved["data"],
        "backtest": resolved["backtest"],
    }
    from ita_vc.candles.validate import format_ts

    summary = {
        "setup_id": parsed_rule.setup_id,
        "rule_version": parsed_rule.version.tag,
        "params_hash": parsed_rule.params_hash,
        "market": run_params.data.market,
        "symbol": run_params.data.symbol,
        "timeframe": prep.get("timeframe"),
        "range": {
            "start": resolved["data"]["start"],
            "end": resolved["data"]["end"],
            "first_bar": format_ts(int(ts[0])) if len(ts) else None,
            "last_bar": format_ts(int(ts[-1])) if len(ts) else None,
            "bars": len(ts),
            "warmup_bars": n_warm,
        },
        "data_hash": None,
        "config_hash": hash_canonical(config),
        "engine_version": engine_version,
        "conflicting_signals": int(conflicting[n_warm:].sum()),
        "fee_pct": run_params.backtest.fee_pct,
        "slippage_pct": run_params.backtest.slippage_pct,
        "init_cash": run_params.backtest.init_cash,
        **{k: v for k, v in resolved["backtest"].items() if k == "periods_per_year"},
        "direction": parsed_rule.direction,
        "sizing": sizing,
        "targets": targets,
        "indicators": [{"name": n, "params": p} for n, p in indicators],
        "rollup": prep.get("rollup"),
        "num_trades": len(t),
    }
    return BacktestResult(
        metrics,
        summary,
        out.position,
        frame,
        ts,
        t,
        out.fills,
        out.equity,
        drawdown,
        run_params.engine,
    )
