"""Grid backtests: many variants of one rule, exact, staged, memory-bounded.

A *variant* is the rule with concrete indicator parameters and SL/TP targets. Its key is
canonical (``ma_cross(fast=10,slow=20)|sl=1|tp=none``) and orders ties. Evaluation shares work:
indicator states are computed once per distinct ``(indicator, params)`` and every variant runs
the same compiled engine as a single backtest, into reused buffers. The staged runner
(:mod:`ita_vc.pipeline.grid`) evaluates Stage A (no SL/TP) for a shortlist, then Stage B (the
shortlist x the SL/TP axes), and re-runs the top-K as ordinary single backtests for their full
metrics - so a top-K row *is* the single run's result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.metrics import (
    daily_index,
    daily_returns,
    return_and_max_drawdown,
    sharpe_ratio,
)
from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.catalog import Catalog

__all__ = [
    "GridRequest",
    "Variant",
    "VariantResult",
    "evaluate_batch",
    "merge_top",
    "parse_grid",
    "variant_key",
]

_DEFAULTS = {"preselect": 20_000, "top_k": 300, "top_trades_n": 10, "batch_size": 2_000,
             "max_variants": 1_000_000, "max_compute_bytes": 1e12}
_KEYS = {"indicators", "targets", "direction", "sizing", "prune", *_DEFAULTS}
_PRUNE_KEYS = {"max_drawdown_floor", "min_trades", "max_trades"}


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Variant:
    """Concrete indicator params (tuple of (name, ((param, value), ...))) and targets."""

    indicators: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    sl_pct: float | None = None
    tp_pct: float | None = None

    @property
    def base(self) -> Variant:
        """The same variant without SL/TP (its Stage A form)."""
        return Variant(self.indicators)

    @property
    def key(self) -> str:
        """The canonical variant key."""
        return variant_key(self)

    def rule(self, base_rule: Mapping[str, Any]) -> dict[str, Any]:
        """A rule mapping for a single backtest of this variant."""
        rule = {k: v for k, v in base_rule.items() if k not in ("params_hash",)}
        rule["indicators"] = [{"name": n, "params": dict(p)} for n, p in self.indicators]
        rule["targets"] = {"tp_pct": self.tp_pct, "sl_pct": self.sl_pct}
        return rule


def variant_key(variant: Variant) -> str:
    """``name(p=v,...)+name(...)|sl=x|tp=y``."""
    parts = ["{}({})".format(name, ",".join(f"{k}={_fmt(v)}" for k, v in params))
             for name, params in variant.indicators]
    return "+".join(parts) + f"|sl={_fmt(variant.sl_pct)}|tp={_fmt(variant.tp_pct)}"


@dataclass
class GridRequest:
    """A validated grid: axes, stages, guards and pruning."""

    axes: list[tuple[str, list[tuple[str, list[Any]]]]]  # (indicator, [(param, values)])
    sl_values: list[float | None]
    tp_values: list[float | None]
    direction: str | None = None
    sizing: dict[str, Any] | None = None
    preselect: int = 20_000
    top_k: int = 300
    top_trades_n: int = 10
    batch_size: int = 2_000
    max_variants: int = 1_000_000
    max_compute_bytes: float = 1e12
    prune: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def base_variants(self) -> Iterator[Variant]:
        """Stage A variants, lazily, in a fixed order (catalog constraints applied)."""
        per_indicator = []
        for name, params in self.axes:
            combos = []
            names = [p for p, _values in params]
            for values in itertools.product(*(v for _p, v in params)):
                chosen = dict(zip(names, values, strict=True))
                if all(_holds(c, chosen) for c in self.constraints.get(name, ())):
                    combos.append((name, tuple(chosen.items())))
            per_indicator.append(combos)
        for combo in itertools.product(*per_indicator):
            yield Variant(tuple(combo))

    def count_base(self) -> int:
        """Number of Stage A variants."""
        return sum(1 for _ in self.base_variants())

    def expand(self, base: Variant) -> Iterator[Variant]:
        """Stage B variants of one base variant (the SL/TP axes)."""
        for sl in self.sl_values:
            for tp in self.tp_values:
                yield Variant(base.indicators, sl, tp)

    def to_dict(self) -> dict[str, Any]:
        """The canonical request (what ``grid_request_hash`` hashes)."""
        return {
            "axes": [[n, [[p, list(v)] for p, v in params]] for n, params in self.axes],
            "sl_pct": self.sl_values, "tp_pct": self.tp_values, "direction": self.direction,
            "sizing": self.sizing, "preselect": self.preselect, "top_k": self.top_k,
            "top_trades_n": self.top_trades_n, "prune": self.prune,
        }


def _holds(constraint: str, values: Mapping[str, Any]) -> bool:
    left, op, right = constraint.split()
    if left not in values or right not in values:
        return True
    return bool(values[left] < values[right]) if op == "<" else bool(values[left] <=
                                                                       values[right])


def _axis(spec: Any, param: str, bounds: Any, where: str) -> list[Any]:
    """Values of one parameter axis: a scalar, a list, or {min, max, step} within the catalog."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"min", "max", "step"}
        if unknown or not {"min", "max"} <= set(spec):
            raise DataValidationError(f"{where}: a range is {{min, max, step}}")
        lo, hi = float(spec["min"]), float(spec["max"])
        step = float(spec.get("step", bounds.step))
        if step <= 0 or hi < lo:
            raise DataValidationError(f"{where}: needs min <= max and step > 0")
        count = math.floor((hi - lo) / step + 1e-9) + 1
        values: list[Any] = [round(lo + i * step, 10) for i in range(count)]
    elif isinstance(spec, list):
        values = list(spec)
    else:
        values = [spec]
    if bounds.type == "int":
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    for value in values:
        reason = bounds.check(value)
        if reason:
            raise DataValidationError(f"{where}: {reason} (a grid narrows the catalog's range, "
                                      "never widens it)")
    return sorted(set(values), key=float)


def _targets(spec: Any, where: str) -> list[float | None]:
    values = spec if isinstance(spec, list) else [spec]
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or value <= 0):
            raise DataValidationError(f"{where}: percent values > 0 or null, got {value!r}")
    return sorted(set(values), key=lambda v: (v is not None, v or 0.0))


def parse_grid(raw: Mapping[str, Any] | None, catalog: Catalog) -> GridRequest:
    """Validate the ``grid:`` section of params.yaml.

    Raises:
        DataValidationError: unknown keys or indicators, ranges beyond the catalog's bounds.
    """
    if not isinstance(raw, Mapping) or not raw.get("indicators"):
        raise DataValidationError("grid: needs an `indicators` list of {name, params: axes}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise DataValidationError(f"grid: unknown key(s) {', '.join(unknown)}")
    axes, constraints = [], {}
    for i, item in enumerate(raw["indicators"]):
        name = item.get("name") if isinstance(item, Mapping) else None
        spec = catalog.get(str(name))
        if spec is None:
            raise DataValidationError(f"grid.indicators.{i}: unknown indicator {name!r}")
        given = item.get("params") or {}
        for key in given:
            if key not in spec.params:
                raise DataValidationError(f"grid.indicators.{i}: unknown parameter {key!r} of "
                                          f"{name}")
        params = [(p, _axis(given.get(p, bounds.default), p, bounds,
                            f"grid.indicators.{i}.params.{p}"))
                  for p, bounds in spec.params.items()]
        axes.append((spec.name, params))
        constraints[spec.name] = spec.constraints
    targets = raw.get("targets") or {}
    prune = dict(raw.get("prune") or {})
    if set(prune) - _PRUNE_KEYS:
        raise DataValidationError(f"grid.prune: known keys are {', '.join(sorted(_PRUNE_KEYS))}")
    settings = {k: raw.get(k, v) for k, v in _DEFAULTS.items()}
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise DataValidationError(f"grid.{key}: must be a positive number, got {value!r}")
    return GridRequest(
        axes=axes, sl_values=_targets(targets.get("sl_pct"), "grid.targets.sl_pct"),
        tp_values=_targets(targets.get("tp_pct"), "grid.targets.tp_pct"),
        direction=raw.get("direction"), sizing=raw.get("sizing"),
        preselect=int(settings["preselect"]), top_k=int(settings["top_k"]),
        top_trades_n=int(settings["top_trades_n"]), batch_size=int(settings["batch_size"]),
        max_variants=int(settings["max_variants"]),
        max_compute_bytes=float(settings["max_compute_bytes"]), prune=prune,
        constraints=constraints,
    )


@dataclass(frozen=True)
class VariantResult:
    """What ranking needs: total return, max drawdown (%), trade count."""

    key: str
    total_return: float
    max_drawdown: float
    trades: int
    variant: Variant
    sharpe: float | None = None

    def sort_key(self) -> tuple[float, str]:
        """Total Return [%] descending, then variant key ascending."""
        return (-self.total_return, self.key)


def merge_top(current: list[VariantResult], new: Sequence[VariantResult],
              k: int) -> list[VariantResult]:
    """The best ``k`` of both lists (deterministic, whatever the order of arrival)."""
    return sorted([*current, *new], key=VariantResult.sort_key)[:k]


_STATE_CACHE_BYTES = 256 * 2**20
"""Indicator states kept per process (bytes); beyond it the cache starts over."""


class _Evaluator:
    """Per-process state: the candles, the indicator-state cache and reusable buffers."""

    def __init__(self, high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                 ts: Any = None):
        from ita_vc.backtest.signals import indicator_state

        self.high, self.low, self.close = high, low, close
        self.n_warm = n_warm
        self.ts = None if ts is None else ts[n_warm:]
        self.days = None if self.ts is None or not len(self.ts) else daily_index(self.ts)
        self.settings = settings
        self._state = indicator_state
        self.cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self.cache_entries = max(1, _STATE_CACHE_BYTES // max(1, len(close)))  # int8 states
        n = len(close) - n_warm
        self.trades = np.empty((n + 1, 11))
        self.fills = np.empty((2 * n + 2, 7))

    def states(self, variant: Variant) -> Any:
        from ita_vc.backtest.signals import combine_states

        parts = []
        for name, params in variant.indicators:
            key = (name, params)
            if key not in self.cache:
                if len(self.cache) >= self.cache_entries:  # bounded memory
                    self.cache.clear()
                self.cache[key] = self._state(name, dict(params), self.high, self.low,
                                              self.close)
            parts.append(self.cache[key])
        if len(parts) == 1:  # one indicator: its state is the final state
            return parts[0]
        final, _conflicting = combine_states(parts, len(self.close))
        return final

    def evaluate(self, variant: Variant) -> VariantResult:
        from ita_vc.backtest.engine import engine_pass

        s = self.settings
        states = self.states(variant)
        n_warm = self.n_warm
        prev = int(states[n_warm - 1]) if n_warm else 0
        equity, _position, n_trades, _n_fills = engine_pass(
            self.close[n_warm:], states[n_warm:], self.trades, self.fills, prev_state=prev,
            direction=s["direction"], sizing=s["sizing"], sl_pct=variant.sl_pct,
            tp_pct=variant.tp_pct, fee_rate=s["fee_rate"], slip=s["slip"],
            init_cash=s["init_cash"])
        init = s["init_cash"]
        sharpe = None
        if len(equity):
            total, max_dd = return_and_max_drawdown(equity, float(init))
            if self.days is not None:
                sharpe = sharpe_ratio(daily_returns(equity[self.days]))
        else:
            total, max_dd = 0.0, 0.0
        return VariantResult(variant.key, total, max_dd, int(n_trades), variant, sharpe)


_WORKER: dict[str, _Evaluator] = {}


def init_worker(high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                ts: Any = None) -> None:
    """Process-pool initializer: build the evaluator once per worker process."""
    _WORKER["evaluator"] = _Evaluator(high, low, close, n_warm, settings, ts)


def init_pool_worker(high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                     ts: Any = None) -> None:
    """:func:`init_worker` for a local pool process, which also ignores SIGINT: a Ctrl-C in a
    terminal reaches the whole process group, and only the parent decides how to stop (the
    pool must not break under it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(high, low, close, n_warm, settings, ts)


def evaluate_batch(variants: Sequence[Variant], payload: tuple[Any, ...] | None = None,
                   ) -> list[VariantResult]:
    """Evaluate a batch (in a worker set up by :func:`init_worker`, or from ``payload``)."""
    evaluator = _WORKER.get("evaluator")
    if payload is not None:
        token = id(payload)
        if evaluator is None or _WORKER.get("token") is not token:  # type: ignore[comparison-overlap]
            evaluator = _Evaluator(*payload)
            _WORKER["evaluator"] = evaluator
            _WORKER["token"] = token  # type: ignore[assignment]
    if evaluator is None:
        raise RuntimeError("evaluate_batch needs init_worker() or a payload")
    return [evaluator.evaluate(v) for v in variants]


def grid_arrays(prepared: pd.DataFrame) -> tuple[Any, Any, Any, int, Any]:
    """``(high, low, close, n_warm, ts)`` of prepared candles (a ``warmup`` column)."""
    high, low, close = (np.ascontiguousarray(prepared[c].to_numpy(dtype=np.float64))
                        for c in ("high", "low", "close"))
    ts = np.ascontiguousarray(prepared["ts_utc"].to_numpy(dtype=np.int64))
    return high, low, close, int(prepared["warmup"].sum()), ts
