"""One line per validation test, for the terminal (``ita-vc validate``, ``runs show``).

Plain text from a ``validation_summary.json`` document; the numbers formatted as the reports
format them (percent 2 decimals, ratios 3, money 2, p-values and probabilities 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ita_vc.backtest.format import format_fixed as _f
from ita_vc.backtest.format import format_interval as _ci

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["headline_values", "verdict_lines"]


def verdict_lines(summary: Mapping[str, Any]) -> list[str]:
    """``permutation   p = 0.0123 (n 1,000; actual 12.34 %, permuted median 1.23 %)`` and the
    like, one per test (``skipped`` for a null one), then the run's PSR(0)."""
    lines = []
    perm = summary.get("permutation")
    if isinstance(perm, dict):
        dist = perm.get("distribution_summary") or {}
        lines.append(
            f"permutation      p = {_f(perm.get('p_value'), 4)} (n {perm.get('n'):,}; actual "
            f"{_f(perm.get('actual'), 2, ' %')}, permuted median {_f(dist.get('p50'), 2, ' %')})"
        )
    boot = summary.get("block_bootstrap")
    if isinstance(boot, dict):
        level = _f(100 * boot["confidence"], 0, " %") if boot.get("confidence") else "-"
        lines.append(
            f"block bootstrap  return {level} CI {_ci(boot.get('return_ci'), 2, ' %')}, "
            f"Sharpe CI {_ci(boot.get('sharpe_ci'), 3)} (block {boot.get('block_size')} days)"
        )
    mc = summary.get("monte_carlo")
    if isinstance(mc, dict):
        lines.append(
            f"Monte Carlo      P(loss) = {_f(mc.get('prob_loss'), 4)}, final equity p5/p50/p95 "
            f"{_f(mc.get('equity_p5'), 2)} / {_f(mc.get('equity_p50'), 2)} / "
            f"{_f(mc.get('equity_p95'), 2)} ({mc.get('trades')} trades)"
        )
    wfo = summary.get("wfo")
    if isinstance(wfo, dict):
        metrics = wfo.get("metrics") or {}
        lines.append(
            f"walk-forward     WFE = {_f(wfo.get('wfe'), 3)}, out-of-sample return "
            f"{_f(metrics.get('Total Return [%]'), 2, ' %')} over {len(wfo.get('segments') or [])}"
            f" segments ({wfo.get('mode')})"
        )
    over = summary.get("overfitting")
    if isinstance(over, dict):
        lines.append(
            f"overfitting      PBO = {_f(over.get('pbo'), 4)}, DSR = {_f(over.get('dsr'), 4)} "
            f"({over.get('n_trials')} trials, {over.get('combinations')} combinations)"
        )
    for key, label in (
        ("permutation", "permutation"),
        ("block_bootstrap", "block bootstrap"),
        ("monte_carlo", "Monte Carlo"),
        ("wfo", "walk-forward"),
        ("overfitting", "overfitting"),
    ):
        if summary.get(key) is None:
            lines.append(f"{label:<16} skipped (params.yaml: validation.{key} not set)")
    lines.append(f"PSR(0)           {_f(summary.get('psr0'), 4)} (the run's own Sharpe > 0)")
    return lines


def headline_values(summary: Mapping[str, Any] | None) -> dict[str, float | None]:
    """``p_value``, ``dsr`` and ``pbo`` of a validation summary (None where not run): the
    columns ``runs list`` can show."""
    summary = summary or {}

    def pick(section: str, field: str) -> float | None:
        entry = summary.get(section)
        value = entry.get(field) if isinstance(entry, dict) else None
        return float(value) if isinstance(value, int | float) else None

    return {
        "p_value": pick("permutation", "p_value"),
        "dsr": pick("overfitting", "dsr"),
        "pbo": pick("overfitting", "pbo"),
    }
