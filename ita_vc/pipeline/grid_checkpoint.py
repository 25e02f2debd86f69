"""Reading a grid's checkpoint (``.ita/grid/checkpoint.json``) for ``--resume``, checked.

The runner writes it atomically; a truncated, hand-edited or foreign file is refused with a
message that names it and says how to go on, never a traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from pathlib import Path

    from ita_vc.backtest.grid import GridRequest, VariantResult

__all__ = ["load_checkpoint"]

_COUNTERS = ("next_batch", "evaluated_a", "evaluated_b", "pruned")


def _result(item: Any, request: GridRequest, allowed: dict[tuple[str, str], set[Any]],
            ) -> VariantResult:
    from ita_vc.backtest.grid import VariantResult
    from ita_vc.pipeline.grid import variant_from_dict

    variant = variant_from_dict(item["variant"])
    names = [n for n, _params in request.axes]
    if (variant.key != item["key"] or [n for n, _p in variant.indicators] != names
            or not all((n, k) in allowed and v in allowed[n, k]
                       for n, params in variant.indicators for k, v in params)
            or variant.sl_pct not in (None, *request.sl_values)
            or variant.tp_pct not in (None, *request.tp_values)):
        raise ValueError(f"variant {item['key']!r} is not of this grid")
    sharpe = item.get("sharpe")
    return VariantResult(item["key"], float(item["total_return"]), float(item["max_drawdown"]),
                         int(item["trades"]), variant, None if sharpe is None else float(sharpe))


def load_checkpoint(checkpoint: Path, request: GridRequest, request_hash: str,
                    engine_hash: str) -> dict[str, Any]:
    """The search state saved in ``checkpoint`` for this request and engine setting, its
    ``shortlist`` and ``topk`` as :class:`~ita_vc.backtest.grid.VariantResult` lists.

    Raises:
        DataValidationError: unreadable or truncated, not a grid checkpoint, of another grid
            or engine setting, or a damaged search state (naming the file; the remedy: delete
            it, or run without ``--resume``).
    """
    remedy = "delete it, or run without --resume to start over"
    try:
        saved = json.loads(checkpoint.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataValidationError(f"{checkpoint}: not a readable grid checkpoint ({exc}); "
                                  f"{remedy}") from exc
    if not isinstance(saved, dict):
        raise DataValidationError(f"{checkpoint}: not a grid checkpoint; {remedy}")
    if (saved.get("request_hash"), saved.get("engine_params_hash")) != (request_hash,
                                                                        engine_hash):
        raise DataValidationError(f"{checkpoint}: the checkpoint is of another grid or "
                                  f"engine setting; {remedy}")
    state = saved.get("state")
    if not (isinstance(state, dict) and state.get("stage") in ("A", "B", "done")
            and all(type(state.get(k)) is int and state[k] >= 0 for k in _COUNTERS)
            and isinstance(state.get("shortlist"), list) and isinstance(state.get("topk"), list)):
        raise DataValidationError(f"{checkpoint}: the search state is damaged; {remedy}")
    allowed = {(n, p): set(v) for n, params in request.axes for p, v in params}
    try:
        shortlist = [_result(i, request, allowed) for i in state["shortlist"]]
        topk = [_result(i, request, allowed) for i in state["topk"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataValidationError(f"{checkpoint}: the search state is damaged ({exc}); "
                                  f"{remedy}") from exc
    return {**state, "shortlist": shortlist, "topk": topk}
