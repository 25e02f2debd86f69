"""The validation suite: is a run's edge real? (docs/validation.md)

One job per module:

* :mod:`~ita_vc.validation.params` - ``params.yaml: validation:`` (schema, defaults, skipped tests);
* :mod:`~ita_vc.validation.stats` - the statistics to the letter, on arrays (permuted bars,
  p-value, circular block bootstrap, Monte Carlo paths, walk-forward windows, CSCV/PBO, PSR/DSR);
* :mod:`~ita_vc.validation.permutation` - the permutation test through the compiled engine,
  in batches across processes or Dask;
* :mod:`~ita_vc.validation.resampling` - block bootstrap and Monte Carlo drivers;
* :mod:`~ita_vc.validation.walkforward` - walk-forward optimisation with the staged grid;
* :mod:`~ita_vc.validation.suite` - :func:`run_validation`, the one core of the ``validate``
  stage and ``ita-vc validate``;
* :mod:`~ita_vc.validation.outcome`, :mod:`~ita_vc.validation.report`,
  :mod:`~ita_vc.validation.verdict` - the summary, report.md and the terminal lines.

Names are exported lazily: ``from ita_vc.validation import parse_validation`` does not import
numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.pipeline.stages import validate_workspace
    from ita_vc.validation.outcome import SUMMARY_SCHEMA_VERSION, ValidationOutcome, WfoSeries
    from ita_vc.validation.params import (
        VALIDATION_SCHEMA,
        BootstrapParams,
        OverfittingParams,
        ValidationParams,
        WfoParams,
        check_params,
        parse_validation,
    )
    from ita_vc.validation.permutation import PermutationResult, permutation_test
    from ita_vc.validation.resampling import (
        BootstrapResult,
        auto_block_size,
        block_bootstrap,
        monte_carlo,
    )
    from ita_vc.validation.stats import (
        BarArrays,
        Cscv,
        DeflatedSharpe,
        McResult,
        Window,
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
        sharpe_columns,
        wfo_windows,
    )
    from ita_vc.validation.suite import (
        GridEvidence,
        grid_evidence,
        longest_window,
        run_daily_returns,
        run_validation,
    )
    from ita_vc.validation.verdict import headline_values, verdict_lines
    from ita_vc.validation.walkforward import Segment, WfoResult, walk_forward

_EXPORTS = {
    "validate_workspace": "ita_vc.pipeline.stages",
    "BarArrays": "ita_vc.validation.stats",
    "BootstrapParams": "ita_vc.validation.params",
    "BootstrapResult": "ita_vc.validation.resampling",
    "Cscv": "ita_vc.validation.stats",
    "DeflatedSharpe": "ita_vc.validation.stats",
    "GridEvidence": "ita_vc.validation.suite",
    "McResult": "ita_vc.validation.stats",
    "OverfittingParams": "ita_vc.validation.params",
    "PermutationResult": "ita_vc.validation.permutation",
    "SUMMARY_SCHEMA_VERSION": "ita_vc.validation.outcome",
    "Segment": "ita_vc.validation.walkforward",
    "VALIDATION_SCHEMA": "ita_vc.validation.params",
    "ValidationOutcome": "ita_vc.validation.outcome",
    "ValidationParams": "ita_vc.validation.params",
    "WfoParams": "ita_vc.validation.params",
    "WfoResult": "ita_vc.validation.walkforward",
    "WfoSeries": "ita_vc.validation.outcome",
    "Window": "ita_vc.validation.stats",
    "auto_block_size": "ita_vc.validation.resampling",
    "block_bootstrap": "ita_vc.validation.resampling",
    "block_bootstrap_replicates": "ita_vc.validation.stats",
    "check_params": "ita_vc.validation.params",
    "confidence_interval": "ita_vc.validation.stats",
    "cscv": "ita_vc.validation.stats",
    "deflated_sharpe": "ita_vc.validation.stats",
    "expected_max_sharpe": "ita_vc.validation.stats",
    "grid_evidence": "ita_vc.validation.suite",
    "headline_values": "ita_vc.validation.verdict",
    "longest_window": "ita_vc.validation.suite",
    "monte_carlo": "ita_vc.validation.resampling",
    "monte_carlo_paths": "ita_vc.validation.stats",
    "monte_carlo_summary": "ita_vc.validation.stats",
    "parse_validation": "ita_vc.validation.params",
    "permutation_p_value": "ita_vc.validation.stats",
    "permutation_test": "ita_vc.validation.permutation",
    "permute_bars": "ita_vc.validation.stats",
    "psr": "ita_vc.validation.stats",
    "run_daily_returns": "ita_vc.validation.suite",
    "run_validation": "ita_vc.validation.suite",
    "sharpe_columns": "ita_vc.validation.stats",
    "verdict_lines": "ita_vc.validation.verdict",
    "walk_forward": "ita_vc.validation.walkforward",
    "wfo_windows": "ita_vc.validation.stats",
}

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "VALIDATION_SCHEMA",
    "BarArrays",
    "BootstrapParams",
    "BootstrapResult",
    "Cscv",
    "DeflatedSharpe",
    "GridEvidence",
    "McResult",
    "OverfittingParams",
    "PermutationResult",
    "Segment",
    "ValidationOutcome",
    "ValidationParams",
    "WfoParams",
    "WfoResult",
    "WfoSeries",
    "Window",
    "auto_block_size",
    "block_bootstrap",
    "block_bootstrap_replicates",
    "check_params",
    "confidence_interval",
    "cscv",
    "deflated_sharpe",
    "expected_max_sharpe",
    "grid_evidence",
    "headline_values",
    "longest_window",
    "monte_carlo",
    "monte_carlo_paths",
    "monte_carlo_summary",
    "parse_validation",
    "permutation_p_value",
    "permutation_test",
    "permute_bars",
    "psr",
    "run_daily_returns",
    "run_validation",
    "sharpe_columns",
    "validate_workspace",
    "verdict_lines",
    "walk_forward",
    "wfo_windows",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
