"""Hand-checked small cases for every statistic of the validation suite (issue #16)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from ita_vc.validation.stats import (
    BarArrays,
    block_bootstrap_replicates,
    confidence_interval,
    cscv,
    deflated_sharpe,
    expected_max_sharpe,
    monte_carlo_paths,
    monte_carlo_summary,
    permutation_p_value,
    permute_bars,
    psr,
    wfo_windows,
)


def test_a_10_bar_permutation_with_a_fixed_perm():
    close = np.array([50.0, 100, 110, 99, 121, 120, 132, 118.8, 130.68, 143.748])  # warm-up 1
    bars = BarArrays(close * 0.99, close * 1.02, close * 0.97, close.copy(), np.arange(10.0))
    perm = np.array([7, 0, 1, 2, 3, 4, 5, 6])  # m = 8 moves after the range's bar 0 (index 1)
    out = permute_bars(bars, 1, perm)
    # warm-up and bar 0 unchanged
    assert out.close[:2].tolist() == [50.0, 100.0] and out.volume[:2].tolist() == [0.0, 1.0]
    moves = close[2:] / close[1:-1]  # original relative moves of bars 1..8
    expected = 100.0 * np.cumprod(moves[perm])
    assert out.close[2:] == pytest.approx(expected, rel=1e-12)
    # the final close is kept (a permutation keeps the drift); the first move is the last one's
    assert out.close[-1] == pytest.approx(close[-1], rel=1e-12)
    assert out.close[2] == pytest.approx(100 * 1.1, rel=1e-12)
    # open/high/low keep their ratio to their own close; volume moves with the bar
    assert out.high[2:] / out.close[2:] == pytest.approx(np.full(8, 1.02), rel=1e-12)
    assert out.volume[2:].tolist() == (np.arange(2.0, 10.0)[perm]).tolist()
    with pytest.raises(ValueError, match="perm has 3"):
        permute_bars(bars, 1, np.array([0, 1, 2]))


def test_permutation_p_value_counts_ties():
    assert permutation_p_value(5.0, [1.0, 5.0, 7.0, 2.0]) == pytest.approx(3 / 5)
    assert permutation_p_value(10.0, [1.0, 2.0]) == pytest.approx(1 / 3)


def test_a_6_return_bootstrap_with_fixed_starts():
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01])
    starts = np.array([[4, 1, 5], [0, 0, 0]])  # k = ceil(6 / 2) = 3 blocks of 2
    reps = block_bootstrap_replicates(r, 2, starts)
    assert reps[0].tolist() == [0.05, -0.01, -0.02, 0.03, -0.01, 0.01]  # 5 wraps to 0
    assert reps[1].tolist() == [0.01, -0.02] * 3
    block3 = block_bootstrap_replicates(r, 4, np.array([[3, 0]]))  # 8 values cut to 6
    assert block3[0].tolist() == [0.0, 0.05, -0.01, 0.01, 0.01, -0.02]
    assert confidence_interval([1, 2, 3, 4, 5], 0.5) == (2.0, 4.0)


def test_a_3_trade_monte_carlo():
    q = np.array([0.1, -0.05, 0.2])
    idx = np.array([[0, 1, 2], [1, 1, 1], [2, 2, 0]])
    paths = monte_carlo_paths(q, 1000.0, idx)
    assert paths[0].tolist() == pytest.approx([1000, 1100, 1045, 1254])
    assert paths[1].tolist() == pytest.approx([1000, 950, 902.5, 857.375])
    summary = monte_carlo_summary(paths, 1000.0)
    finals = [1254.0, 857.375, 1584.0]
    assert summary.equity_p50 == pytest.approx(np.percentile(finals, 50))
    assert summary.prob_loss == pytest.approx(1 / 3)
    drawdowns = [-5.0, (857.375 / 1000 - 1) * 100, 0.0]
    assert summary.max_drawdown_p50 == pytest.approx(np.percentile(drawdowns, 50))
    empty = monte_carlo_summary(np.empty((0, 1)), 1000.0)
    assert empty.equity_p50 is None and empty.prob_loss is None


@pytest.mark.parametrize(
    ("mode", "ins"),
    [
        ("rolling", [(0, 42), (14, 56), (28, 70), (42, 84)]),
        ("anchored", [(0, 42), (0, 56), (0, 70), (0, 84)]),
    ],
)
def test_wfo_boundaries_for_n103_k4_q3(mode, ins):
    windows = wfo_windows(103, 4, 3, mode)  # L = floor(103 / 7) = 14
    assert [(w.in_start, w.in_end) for w in windows] == ins
    assert [(w.out_start, w.out_end) for w in windows] == [(42, 56), (56, 70), (70, 84), (84, 103)]


def _plain_cscv(m, s):
    """The straightforward loop of the definition (no shortcuts) as a cross-check."""
    m = m[len(m) % s :]
    blocks = np.array_split(np.arange(len(m)), s)
    lambdas = []
    n = m.shape[1]
    for chosen in combinations(range(s), s // 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(s) if i not in chosen])

        def sharpe(x):
            sd = x.std(axis=0, ddof=1)
            return np.round(np.where(sd > 0, x.mean(axis=0) / np.where(sd > 0, sd, 1), 0.0), 12)

        best = int(np.argmax(sharpe(m[inside])))
        w = rankdata(sharpe(m[outside]), method="average")[best] / (n + 1)
        lambdas.append(math.log(w / (1 - w)))
    return np.mean(np.array(lambdas) <= 0), lambdas


def test_cscv_on_an_8_by_3_matrix_with_s4_by_hand():
    m = np.array(
        [
            [0.01, 0.02, -0.01],
            [0.02, -0.01, 0.00],
            [-0.01, 0.03, 0.01],
            [0.00, 0.01, 0.02],
            [0.03, -0.02, 0.01],
            [0.01, 0.00, -0.02],
            [-0.02, 0.01, 0.03],
            [0.02, 0.02, 0.00],
        ]
    )
    result = cscv(m, 4)
    assert result.combinations == 6
    # combination {0, 1} in-sample: rows 0..3; Sharpe of column 1 is the highest there
    ins = m[:4]
    sr_in = ins.mean(0) / ins.std(0, ddof=1)
    assert int(np.argmax(sr_in)) == 1
    outs = m[4:]
    sr_out = outs.mean(0) / outs.std(0, ddof=1)
    w = rankdata(sr_out)[1] / 4
    assert result.lambdas[0] == pytest.approx(math.log(w / (1 - w)))
    pbo, lambdas = _plain_cscv(m, 4)
    assert result.pbo == pytest.approx(pbo) and result.lambdas == pytest.approx(lambdas)


@pytest.mark.parametrize("s", [3, 0, 22, -2])
def test_cscv_refuses_bad_partitions(s):
    with pytest.raises(ValueError, match="partitions must be even"):
        cscv(np.zeros((40, 3)), s)


def test_cscv_agrees_with_the_plain_loop_on_random_returns():
    rng = np.random.default_rng(7)
    m = rng.normal(0, 0.01, size=(203, 25))
    pbo, lambdas = _plain_cscv(m, 8)
    result = cscv(m, 8)
    assert result.pbo == pytest.approx(pbo)
    assert result.lambdas == pytest.approx(lambdas, rel=1e-9)


def test_the_deflated_sharpe_ratio_of_the_papers_example():
    """Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
    Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), section
    "A numerical example": an annualised SR of 2.5 over T = 1,250 daily observations, skewness
    -3, kurtosis 10, N = 100 trials whose annualised Sharpe Ratios have variance 0.5; with 250
    observations a year SR0 (daily) = 0.1132 and DSR = 0.9004."""
    sr = 2.5 / math.sqrt(250)
    sr0 = expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=1e-3)
    assert psr(sr, sr0, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=1e-3)


def test_deflated_sharpe_from_returns():
    rng = np.random.default_rng(3)
    best = rng.normal(0.001, 0.01, size=500)
    trials = rng.normal(0.0, 0.05, size=50)
    result = deflated_sharpe(best, trials)
    sr = best.mean() / best.std(ddof=1)
    from scipy.stats import kurtosis, skew

    g3, g4 = skew(best), kurtosis(best, fisher=False)
    expected = norm.cdf(
        (sr - result.sr0) * math.sqrt(499) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    )
    assert result.dsr == pytest.approx(expected) and result.n_trials == 50
    single = deflated_sharpe(best, [0.1])
    assert single.dsr is None and single.psr0 is not None and single.sr0 is None


def test_sharpe_columns_and_cscv_do_not_depend_on_the_memory_layout():
    # a matrix read back from parquet is column-ordered; computed, row-ordered: the same bits
    from ita_vc.validation.stats import sharpe_columns

    m = np.random.default_rng(3).normal(0.001, 0.01, size=(251, 37))
    fortran = np.asfortranarray(m)
    assert sharpe_columns(fortran).tobytes() == sharpe_columns(m).tobytes()
    assert cscv(fortran, 6).lambdas.tobytes() == cscv(m, 6).lambdas.tobytes()
