"""``results/validation/report.md``: the validation of a run, for a person.

A verdict table first (one line per test: its headline number and how to read it), then one
section per test with its numbers and what they mean, the skipped tests and the charts. Numbers
as the other reports write them (percent 2 decimals, ratios 3, money 2; p-values and
probabilities 4); null as "-". Deterministic: no timestamps.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ita_vc.backtest.format import format_fixed as _f
from ita_vc.backtest.format import format_interval as _ci
from ita_vc.backtest.format import format_metric

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ita_vc.validation.outcome import ValidationOutcome

__all__ = ["render_validation_md"]

_TITLES = {
    "permutation": "Permutation test",
    "block_bootstrap": "Block bootstrap",
    "monte_carlo": "Monte Carlo over trades",
    "wfo": "Walk-forward",
    "overfitting": "Overfitting of the grid",
}
_CHART = {
    "permutation": "permutation.png",
    "block_bootstrap": "bootstrap.png",
    "monte_carlo": "monte_carlo.png",
    "wfo": "walk_forward.png",
    "overfitting": "pbo.png",
}
_WFO_METRICS = (
    "Total Return [%]",
    "Sharpe Ratio",
    "Max. Drawdown [%]",
    "Num. Trades",
    "Win Rate [%]",
    "Benchmark Return [%]",
)


def _cell(text: object) -> str:
    """Text in a markdown table cell: its pipes escaped (a variant key has two)."""
    return str(text).replace("|", "\\|")


def _date(ms: object) -> str:
    if not isinstance(ms, int):
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _verdict(s: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    perm = s.get("permutation")
    if perm:
        p = perm.get("p_value")
        reading = (
            "the order of the bars matters: an edge beyond drift (p < 0.05)"
            if isinstance(p, float) and p < 0.05
            else "no better than the same bars in random order"
        )
        rows.append(("permutation", f"p = {_f(p, 4)}", reading))
    boot = s.get("block_bootstrap")
    if boot:
        ci = boot.get("return_ci") or {}
        lower = ci.get("lower")
        reading = (
            "the return's interval is above 0"
            if isinstance(lower, float) and lower > 0
            else "the return's interval includes losses"
        )
        level = _f(100 * boot["confidence"], 0, " %")
        rows.append(
            ("block bootstrap", f"{level} CI {_ci(boot.get('return_ci'), 2, ' %')}", reading)
        )
    mc = s.get("monte_carlo")
    if mc:
        rows.append(
            (
                "Monte Carlo",
                f"P(loss) = {_f(mc.get('prob_loss'), 4)}",
                f"final equity p5 {_f(mc.get('equity_p5'), 2)}, "
                f"max drawdown p5 {_f(mc.get('max_drawdown_p5'), 2, ' %')}",
            )
        )
    wfo = s.get("wfo")
    if wfo:
        wfe = wfo.get("wfe")
        stitched = (wfo.get("metrics") or {}).get("Total Return [%]")
        reading = _wfo_reading(wfo, stitched, wfe)
        rows.append(
            (
                "walk-forward",
                f"WFE = {_f(wfe, 3)}; out of sample {_f(stitched, 2, ' %')}",
                reading,
            )
        )
    over = s.get("overfitting")
    if over:
        pbo, dsr = over.get("pbo"), over.get("dsr")
        reading = _overfitting_reading(pbo, dsr)
        rows.append(("overfitting", f"PBO = {_f(pbo, 4)}, DSR = {_f(dsr, 4)}", reading))
    return rows


def _wfo_reading(wfo: Mapping[str, Any], stitched: object, wfe: object) -> str:
    segments = wfo.get("segments") or []
    short = sum(
        1
        for seg in segments
        if isinstance(seg.get("return"), float)
        and isinstance(seg.get("in_sample_return"), float)
        and seg["return"] < seg["in_sample_return"]
    )
    if isinstance(stitched, float) and stitched <= 0:
        return (
            f"out of sample lost money ({short} of {len(segments)} segments below their "
            "in-sample return): the optimisation did not carry over"
        )
    if not isinstance(wfe, float):
        return "no segment with an in-sample gain"
    if wfe >= 0.5:
        return "out of sample keeps at least half of the in-sample pace"
    return "out of sample gains, well below the in-sample pace"


def _overfitting_reading(pbo: object, dsr: object) -> str:
    if isinstance(pbo, float) and pbo > 0.5:
        reading = "the grid's winner is mostly luck (PBO > 0.5)"
    elif isinstance(pbo, float) and pbo > 0.2:
        reading = "the grid's winner is close to a coin flip out of sample"
    elif isinstance(pbo, float):
        reading = "the grid's winner tends to hold out of sample"
    else:
        reading = "-"
    if isinstance(dsr, float) and dsr < 0.95:
        reading += (
            "; its Sharpe is not clearly above the best of that many lucky trials (DSR < 0.95)"
        )
    return reading


def _permutation(perm: Mapping[str, Any]) -> list[str]:
    d = perm.get("distribution_summary") or {}
    return [
        f"- permutations: {perm['n']:,}; metric: {perm['metric']}",
        f"- actual: {_f(perm.get('actual'), 2, ' %')}; permuted mean "
        f"{_f(perm.get('mean_return'), 2, ' %')}; p5 / p50 / p95 {_f(d.get('p5'), 2)} / "
        f"{_f(d.get('p50'), 2)} / {_f(d.get('p95'), 2)} %",
        f"- **p-value: {_f(perm.get('p_value'), 4)}**",
        "",
        "The p-value is the share of price paths - the same bars' moves in random order, keeping "
        "the drift and the final close - on which the rule did at least as well (counting the "
        "actual path): small is good, it says the edge needs the bars in their real order.",
    ]


def _bootstrap(boot: Mapping[str, Any]) -> list[str]:
    level = _f(100 * boot["confidence"], 0, " %")
    setting = boot.get("block_size_setting")
    return [
        f"- replicates: {boot['n']:,} of {boot['days']:,} daily returns; block "
        f"{boot['block_size']} days"
        + (" (auto: arch's optimal block length)" if setting == "auto" else ""),
        f"- total return {level} CI: {_ci(boot.get('return_ci'), 2, ' %')}",
        f"- Sharpe Ratio {level} CI: {_ci(boot.get('sharpe_ci'), 3)} "
        f"({boot.get('sharpe_defined', 0):,} replicates with a defined Sharpe)",
        "",
        "Circular blocks of consecutive daily returns, drawn with replacement, keep the short-term "
        "dependence of the returns; the interval is how far the result could be from what this "
        "range happened to give.",
    ]


def _monte_carlo(mc: Mapping[str, Any]) -> list[str]:
    if not mc.get("trades"):
        return ["- the run closed no trades: nothing was drawn"]
    return [
        f"- paths: {mc['n']:,}, each {mc['trades']:,} trades drawn with replacement, from "
        f"{_f(mc.get('init_cash'), 2)}",
        f"- final equity p5 / p50 / p95: {_f(mc.get('equity_p5'), 2)} / "
        f"{_f(mc.get('equity_p50'), 2)} / {_f(mc.get('equity_p95'), 2)}",
        f"- max drawdown p5 / p50 / p95: {_f(mc.get('max_drawdown_p5'), 2)} / "
        f"{_f(mc.get('max_drawdown_p50'), 2)} / {_f(mc.get('max_drawdown_p95'), 2)} %",
        f"- **P(loss): {_f(mc.get('prob_loss'), 4)}** (share of paths ending below the initial "
        "cash)",
        "",
        "Each trade's return on the equity it was entered with, in another order and mix: the "
        "range of outcomes the same trades allow, and how deep a drawdown they can dig.",
    ]


def _wfo(wfo: Mapping[str, Any]) -> list[str]:
    lines = [
        f"- {wfo['windows']} segments, in-sample {wfo['in_sample_ratio']} x the out-of-sample "
        f"length ({wfo['window_bars']:,} bars), {wfo['mode']}; objective: {wfo['objective']}",
        f"- **WFE: {_f(wfo.get('wfe'), 3)}** (mean out-of-sample / in-sample annualised return "
        "over the segments with an in-sample gain)",
        "",
        "| # | in sample | out of sample | variant | in-sample return | out-of-sample return |",
        "|---|---|---|---|---:|---:|",
    ]
    for i, seg in enumerate(wfo.get("segments") or []):
        lines.append(
            f"| {i} | {_date(seg['in_sample_start'])} .. {_date(seg['in_sample_end'])} | "
            f"{_date(seg['out_sample_start'])} .. {_date(seg['out_sample_end'])} | "
            f"`{_cell(seg['variant_key'])}` | {_f(seg.get('in_sample_return'), 2, ' %')} | "
            f"{_f(seg.get('return'), 2, ' %')} |"
        )
    metrics = wfo.get("metrics") or {}
    lines += ["", "The out-of-sample segments as one run:", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {m} | {format_metric(m, metrics.get(m))} |" for m in _WFO_METRICS]
    lines += [
        "",
        "Each in-sample window runs the grid and picks its best variant by the objective; that "
        "variant then trades the next, unseen segment. What optimisation is worth out of sample.",
    ]
    return lines


def _overfitting(over: Mapping[str, Any]) -> list[str]:
    lam = over.get("lambda") or {}
    return [
        f"- {over['n_variants']:,} Stage A variants x {over['days']:,} daily returns, "
        f"S = {over['partitions']} blocks, {over['combinations']:,} combinations",
        f"- **PBO: {_f(over.get('pbo'), 4)}**; lambda p5 / p50 / p95: {_f(lam.get('p5'), 3)} / "
        f"{_f(lam.get('p50'), 3)} / {_f(lam.get('p95'), 3)}",
        f"- best variant (rank 1 of the top-K): `{over.get('best_variant_key')}`, daily Sharpe "
        f"{_f(over.get('sr'), 4)}",
        f"- **DSR: {_f(over.get('dsr'), 4)}** (SR0 = {_f(over.get('sr0'), 4)} for "
        f"{over.get('n_trials'):,} trials); PSR(0) = {_f(over.get('psr0'), 4)}",
        "",
        "PBO is the probability that the variant best in sample is below the median out of "
        "sample (CSCV): above 0.5 the grid's winner is mostly luck. The DSR is the probability "
        "that the best variant's true Sharpe exceeds what the best of that many trials would "
        "show by luck alone.",
    ]


def render_validation_md(outcome: ValidationOutcome, charts: Sequence[str]) -> str:
    """The report.md text of a validation (``charts``: the chart files written beside it)."""
    s = outcome.summary
    rng = s.get("range") or {}
    actual = s.get("actual") or {}
    total = format_metric("Total Return [%]", actual.get("Total Return [%]"))
    sharpe = format_metric("Sharpe Ratio", actual.get("Sharpe Ratio"))
    lines = [
        f"# Validation: {s.get('setup_id')} {s.get('rule_version')}",
        "",
        f"{s.get('market')} {s.get('symbol')} {s.get('timeframe')}, {rng.get('first_bar')} .. "
        f"{rng.get('last_bar')} ({_f(rng.get('bars'), 0)} bars); seed {s.get('seed')}; "
        f"config {str(s.get('config_hash'))[:19]}",
        "",
        f"The run: Total Return {total} %, Sharpe Ratio {sharpe}, "
        f"PSR(0) {_f(s.get('psr0'), 4)} (the probability that its true Sharpe is above 0).",
        "",
    ]
    verdict = _verdict(s)
    if verdict:
        lines += ["| test | result | reading |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in verdict]
        lines.append("")
    sections = {
        "permutation": _permutation,
        "block_bootstrap": _bootstrap,
        "monte_carlo": _monte_carlo,
        "wfo": _wfo,
        "overfitting": _overfitting,
    }
    skipped = []
    for key, render in sections.items():
        entry = s.get(key)
        if entry is None:
            skipped.append(key)
            continue
        lines += [f"## {_TITLES[key]}", "", *render(entry), ""]
        if _CHART[key] in charts:
            lines += [f"![{_TITLES[key]}]({_CHART[key]})", ""]
    if skipped:
        lines += [
            "## Skipped",
            "",
            *(f"- {_TITLES[key]}: `validation.{key}` is not set in params.yaml" for key in skipped),
            "",
        ]
    if outcome.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in outcome.notes), ""]
    lines.append("Definitions: docs/validation.md.")
    return "\n".join(lines) + "\n"
