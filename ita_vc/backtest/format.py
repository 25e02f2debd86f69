"""How a person reads a number: durations as timedeltas, each metric with its own precision.

The files (``metrics.json``, ``summary.json``) keep exact values (durations in seconds); these
helpers only shape what is printed: report.md, terminal tables, the grid report, chart labels.
"""

from __future__ import annotations

import math

__all__ = [
    "DURATION_METRICS",
    "METRIC_UNITS",
    "format_duration",
    "format_fixed",
    "format_interval",
    "format_metric",
    "format_number",
]

DURATION_METRICS = frozenset(
    {
        "Duration",
        "Max. Drawdown Duration",
        "Avg. Drawdown Duration",
        "Max. Trade Duration",
        "Avg. Trade Duration",
    }
)
"""Metrics recorded in seconds (metrics.json) and printed as ``49 days 22:00:00``."""

METRIC_UNITS: dict[str, str] = {
    "Start": "time",
    "End": "time",
    "Init. Cash": "money",
    "Total Profit": "money",
    "Expectancy": "money",
    "Num. Trades": "count",
    "Sharpe Ratio": "ratio",
    "Sortino Ratio": "ratio",
    "Calmar Ratio": "ratio",
    "SQN": "ratio",
    "Gross Exposure": "ratio",
    **dict.fromkeys(DURATION_METRICS, "duration"),
}
"""The unit of each metric of docs/backtest-model.md that is not a percent (``[%]`` names)."""

_DECIMALS = {"percent": 2, "ratio": 3, "money": 2}


def format_duration(seconds: float | None) -> str:
    """``49 days 22:00:00`` (pandas' and backtesting.py's Timedelta text), to the second from
    one second up (an average of 18:00:54.545455 reads 18:00:55); below a second with its
    fraction (``0 days 00:00:00.500000``); None as ``-``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    whole_seconds = abs(seconds) >= 1
    micros = (
        math.floor(abs(seconds) + 0.5) * 1_000_000
        if whole_seconds
        else round(abs(seconds) * 1_000_000)
    )
    whole, frac = divmod(micros, 1_000_000)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{days} days {hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{frac:06d}" if frac else "")


def format_number(value: float, decimals: int, *, grouping: bool = True) -> str:
    """A finite float with ``decimals`` places (thousands separated); ``-0.00`` prints ``0.00``."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:,.{decimals}f}" if grouping else f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def format_fixed(value: object, digits: int, suffix: str = "") -> str:
    """A number with ``digits`` places (thousands separated) and ``suffix``; ``-`` for null or
    anything that is not a number (the validation report's p-values, probabilities, CIs)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def format_interval(ci: object, digits: int, suffix: str = "") -> str:
    """``[lower, upper]`` of a ``{lower, upper}`` mapping, each by :func:`format_fixed`; ``-``
    when there is none."""
    if not isinstance(ci, dict):
        return "-"
    lower, upper = ci.get("lower"), ci.get("upper")
    return f"[{format_fixed(lower, digits, suffix)}, {format_fixed(upper, digits, suffix)}]"


def metric_unit(name: str) -> str:
    """``percent`` for ``[%]`` names, else the unit of :data:`METRIC_UNITS` (``number`` when
    the metric is unknown)."""
    if name.endswith("[%]"):
        return "percent"
    return METRIC_UNITS.get(name, "number")


def format_metric(name: str, value: object) -> str:
    """One metric for a person: percent 2 decimals, ratios 3, money 2, durations as
    timedeltas, counts as integers, null as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    unit = metric_unit(name)
    if unit == "duration":
        return format_duration(float(value))
    if unit == "count":
        return f"{int(value):,}"
    decimals = _DECIMALS.get(unit)
    return _significant(value) if decimals is None else format_number(float(value), decimals)


def _significant(value: float) -> str:
    """A number of no known unit: integers grouped, others with 4 significant digits."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
