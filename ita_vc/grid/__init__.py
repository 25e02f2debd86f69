"""Grid backtests: many variants of one rule, exact, staged, memory-bounded.

A *variant* is the rule with concrete indicator parameters and SL/TP targets; its key is
canonical (``ma_cross(fast=10,slow=20)|sl=1|tp=none``) and orders ties. One job per module:

* :mod:`~ita_vc.grid.request` - the request (``params.yaml: grid:``), its variants and keys;
* :mod:`~ita_vc.grid.axes` - each parameter's axis, and counting variants without building them;
* :mod:`~ita_vc.grid.evaluate` - evaluating variants with a typed context, one evaluator per
  context (``engine_params_hash``) and process;
* :mod:`~ita_vc.grid.executor` - in this process, a local process pool, or Dask;
* :mod:`~ita_vc.grid.search` - the staged search (``stage_a``, ``stage_b``, ``finalize``) and
  :func:`run_grid`;
* :mod:`~ita_vc.grid.checkpoint` - the search state and its checkpoint, for ``--resume``;
* :mod:`~ita_vc.grid.promote` - ``ita-vc grid promote``.

Names are exported lazily: ``from ita_vc.grid import parse_grid`` does not import numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.grid.axes import AXIS_VALUES_MAX, DEFAULT_AXES_NOTE
    from ita_vc.grid.checkpoint import SearchState, load_checkpoint
    from ita_vc.grid.evaluate import (
        EngineSettings,
        EvalContext,
        GridArrays,
        VariantResult,
        evaluate_batch,
        evaluation_context,
        grid_arrays,
        init_pool_worker,
        init_worker,
        merge_top,
    )
    from ita_vc.grid.executor import Executor
    from ita_vc.grid.promote import default_grid_folder, promote_variant
    from ita_vc.grid.request import (
        GridInputs,
        GridRequest,
        GridSetup,
        Variant,
        check_grid,
        check_params_and_grid,
        check_rule_indicators,
        parse_grid,
        variant_from_dict,
        variant_key,
        variant_to_dict,
    )
    from ita_vc.grid.search import GridOutcome, run_grid

_EXPORTS = {
    "AXIS_VALUES_MAX": "ita_vc.grid.axes",
    "DEFAULT_AXES_NOTE": "ita_vc.grid.axes",
    "EngineSettings": "ita_vc.grid.evaluate",
    "EvalContext": "ita_vc.grid.evaluate",
    "Executor": "ita_vc.grid.executor",
    "GridArrays": "ita_vc.grid.evaluate",
    "GridInputs": "ita_vc.grid.request",
    "GridOutcome": "ita_vc.grid.search",
    "GridRequest": "ita_vc.grid.request",
    "GridSetup": "ita_vc.grid.request",
    "SearchState": "ita_vc.grid.checkpoint",
    "Variant": "ita_vc.grid.request",
    "VariantResult": "ita_vc.grid.evaluate",
    "check_grid": "ita_vc.grid.request",
    "check_params_and_grid": "ita_vc.grid.request",
    "check_rule_indicators": "ita_vc.grid.request",
    "default_grid_folder": "ita_vc.grid.promote",
    "evaluate_batch": "ita_vc.grid.evaluate",
    "evaluation_context": "ita_vc.grid.evaluate",
    "grid_arrays": "ita_vc.grid.evaluate",
    "init_pool_worker": "ita_vc.grid.evaluate",
    "init_worker": "ita_vc.grid.evaluate",
    "load_checkpoint": "ita_vc.grid.checkpoint",
    "merge_top": "ita_vc.grid.evaluate",
    "parse_grid": "ita_vc.grid.request",
    "promote_variant": "ita_vc.grid.promote",
    "run_grid": "ita_vc.grid.search",
    "variant_from_dict": "ita_vc.grid.request",
    "variant_key": "ita_vc.grid.request",
    "variant_to_dict": "ita_vc.grid.request",
}

__all__ = [
    "AXIS_VALUES_MAX",
    "DEFAULT_AXES_NOTE",
    "EngineSettings",
    "EvalContext",
    "Executor",
    "GridArrays",
    "GridInputs",
    "GridOutcome",
    "GridRequest",
    "GridSetup",
    "SearchState",
    "Variant",
    "VariantResult",
    "check_grid",
    "check_params_and_grid",
    "check_rule_indicators",
    "default_grid_folder",
    "evaluate_batch",
    "evaluation_context",
    "grid_arrays",
    "init_pool_worker",
    "init_worker",
    "load_checkpoint",
    "merge_top",
    "parse_grid",
    "promote_variant",
    "run_grid",
    "variant_from_dict",
    "variant_key",
    "variant_to_dict",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
