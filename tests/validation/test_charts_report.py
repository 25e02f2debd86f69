"""The validation charts and report.md: the right files, the same bytes twice, degenerate data
drawn without error, and the report's numbers, skipped tests and links."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from ita_vc.charts.validation import validation_charts
from ita_vc.validation.outcome import ValidationOutcome, WfoSeries
from ita_vc.validation.report import render_validation_md

HEADER = {
    "schema_version": 1,
    "setup_id": "Frank",
    "rule_version": "v1.2",
    "market": "binance-spot",
    "symbol": "BTCUSDT",
    "timeframe": "1h",
    "range": {"first_bar": "2025-01-01T00:00:00Z", "last_bar": "2025-02-01T00:00:00Z", "bars": 744},
    "config_hash": "sha256:" + "ab" * 32,
    "seed": 0,
    "actual": {"Total Return [%]": 12.5, "Sharpe Ratio": 1.25},
    "psr0": 0.91,
}
SEGMENTS = [
    {
        "in_sample_start": 1_735_689_600_000 + i * 86_400_000,
        "in_sample_end": 1_735_689_600_000 + (i + 3) * 86_400_000,
        "out_sample_start": 1_735_689_600_000 + (i + 3) * 86_400_000,
        "out_sample_end": 1_735_689_600_000 + (i + 4) * 86_400_000,
        "variant_key": f"ma_cross(fast={5 + i},slow=30)|sl=none|tp=2",
        "in_sample_return": 3.0,
        "return": -1.0 + i,
    }
    for i in range(3)
]


def _full(**arrays):
    summary = {
        **HEADER,
        "permutation": {
            "n": 5,
            "metric": "Total Return [%]",
            "actual": 12.5,
            "p_value": 0.1667,
            "mean_return": 1.0,
            "distribution_summary": {"p5": -3.0, "p50": 1.0, "p95": 6.0},
        },
        "block_bootstrap": {
            "n": 6,
            "block_size": 3,
            "block_size_setting": "auto",
            "confidence": 0.9,
            "days": 31,
            "return_ci": {"lower": -2.0, "upper": 20.0},
            "sharpe_ci": None,
            "sharpe_defined": 0,
        },
        "monte_carlo": {
            "n": 4,
            "trades": 3,
            "init_cash": 1000.0,
            "equity_p5": 950.0,
            "equity_p50": 1100.0,
            "equity_p95": 1200.0,
            "max_drawdown_p5": -9.0,
            "max_drawdown_p50": -4.0,
            "max_drawdown_p95": -1.0,
            "prob_loss": 0.25,
        },
        "wfo": {
            "windows": 3,
            "in_sample_ratio": 3,
            "mode": "rolling",
            "objective": "Total Return [%]",
            "window_bars": 24,
            "segments": SEGMENTS,
            "final_equity": 1010.0,
            "metrics": {"Total Return [%]": 1.0, "Sharpe Ratio": None, "Num. Trades": 4},
            "wfe": None,
        },
        "overfitting": {
            "partitions": 4,
            "n_variants": 9,
            "days": 31,
            "combinations": 6,
            "pbo": 0.5,
            "lambda": {"p5": -1.0, "p50": 0.0, "p95": 1.0},
            "best_variant_key": "ma_cross(fast=5,slow=30)|sl=none|tp=2",
            "sr": 0.1,
            "psr0": 0.8,
            "sr0": 0.05,
            "dsr": 0.6,
            "n_trials": 9,
        },
    }
    ts = 1_735_689_600_000 + 3 * 86_400_000 + np.arange(72, dtype=np.int64) * 3_600_000
    defaults = {
        "permuted_returns": np.array([-3.0, 1.0, 2.0, 6.0, 0.5]),
        "bootstrap_returns": np.array([-2.0, 0.0, 5.0, 9.0, 20.0, 3.0]),
        "mc_fan": np.array(
            [
                [0, 1, 2, 3],
                [1000, 950, 940, 950],
                [1000, 1050, 1080, 1100],
                [1000, 1100, 1150, 1200],
            ],
            dtype=float,
        ),
        "wfo": WfoSeries(
            ts, 1000 + np.cumsum(np.ones(72) / 7), [s["out_sample_start"] for s in SEGMENTS], 1000.0
        ),
        "lambdas": np.array([-1.0, -0.5, 0.0, 0.3, 0.7, 1.0]),
    }
    return ValidationOutcome(summary, **{**defaults, **arrays})


NAMES = ["permutation.png", "bootstrap.png", "monte_carlo.png", "walk_forward.png", "pbo.png"]


def _image(data: bytes):
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(data), format="png")


def test_every_chart_is_drawn_and_the_same_bytes_twice():
    charts = validation_charts(_full())
    assert list(charts) == NAMES
    for data in charts.values():
        height, width = _image(data).shape[:2]
        assert width >= 800 and height >= 300
    assert validation_charts(_full()) == charts


@pytest.mark.parametrize(
    "arrays",
    [
        {"permuted_returns": np.full(7, 2.5), "bootstrap_returns": np.array([4.0])},
        {"permuted_returns": np.array([np.nan, 1.0, np.inf]), "lambdas": np.array([0.0])},
        {"lambdas": np.array([-np.inf, np.nan, 0.5])},
    ],
)
def test_degenerate_data_is_drawn_without_error(arrays):
    charts = validation_charts(_full(**arrays))
    assert list(charts) == NAMES
    for data in charts.values():
        _image(data)


def test_tests_that_did_not_run_or_drew_nothing_get_no_file():
    outcome = _full(mc_fan=None)  # no trades: nothing drawn
    assert "monte_carlo.png" not in validation_charts(outcome)
    skipped = ValidationOutcome(
        {
            **HEADER,
            **dict.fromkeys(
                ["permutation", "block_bootstrap", "monte_carlo", "wfo", "overfitting"]
            ),
        }
    )
    assert validation_charts(skipped) == {}
    text = render_validation_md(skipped, [])
    assert "## Skipped" in text and "`validation.overfitting` is not set" in text
    assert "![" not in text and "| test |" not in text


def test_the_report_reads_the_numbers():
    outcome = _full()
    text = render_validation_md(outcome, ["permutation.png", "pbo.png"])
    assert text.startswith("# Validation: Frank v1.2\n")
    assert "| permutation | p = 0.1667 |" in text
    assert "**PBO: 0.5000**" in text and "**DSR: 0.6000**" in text
    assert "90 % CI [-2.00 %, 20.00 %]" in text
    assert "Sharpe Ratio 90 % CI: -" in text  # no replicate had a Sharpe
    assert "**P(loss): 0.2500**" in text and "WFE: -" in text
    # a variant key's pipes do not split the segments table's cells
    assert "`ma_cross(fast=5,slow=30)\\|sl=none\\|tp=2`" in text
    assert "| 2025-01-04 00:00 .. 2025-01-05 00:00 |" in text
    # links only to the charts written
    assert "![Permutation test](permutation.png)" in text and "(pbo.png)" in text
    assert "bootstrap.png" not in text and "walk_forward.png" not in text
    assert render_validation_md(outcome, ["permutation.png", "pbo.png"]) == text


def test_a_losing_walk_forward_and_a_coin_flip_grid_read_as_such():
    outcome = _full()
    summary = outcome.summary
    summary["wfo"] = {**summary["wfo"], "wfe": 1.9, "metrics": {"Total Return [%]": -4.2}}
    summary["overfitting"] = {**summary["overfitting"], "pbo": 0.46, "dsr": 0.35}
    text = render_validation_md(outcome, [])
    assert "out of sample lost money (3 of 3 segments below their in-sample return)" in text
    assert "close to a coin flip" in text and "DSR < 0.95" in text
