"""A grid's search state and its checkpoint (``.ita/grid/checkpoint.json``), written and read.

:class:`CheckpointWriter` writes the state after a completed batch, atomically and at most
every :data:`CHECKPOINT_EVERY_S` seconds (always on stop); :func:`load_checkpoint` reads it
back for ``--resume``, checked: a truncated, hand-edited or foreign file is refused with a
message that names it and says how to go on, never a traceback.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from ita_vc.errors import DataValidationError
from ita_vc.grid.evaluate import VariantResult
from ita_vc.grid.request import variant_from_dict, variant_to_dict
from ita_vc.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ita_vc.grid.request import GridRequest

__all__ = [
    "CHECKPOINT_EVERY_S",
    "CheckpointWriter",
    "SearchState",
    "checkpoint_every",
    "load_checkpoint",
    "parse_checkpoint",
]

CHECKPOINT_EVERY_S = 2.0
"""Checkpoints are written after a completed batch at most this often (seconds; environment
``ITA_VC_GRID_CHECKPOINT_SECONDS`` overrides it, 0 = after every batch), and always on stop."""

_COUNTERS = ("next_batch", "evaluated_a", "evaluated_b", "pruned")


@dataclass(frozen=True)
class SearchState:
    """The search after the last completed batch (replaced, never mutated)."""

    stage: str = "A"
    """``A`` (the shortlist), ``B`` (the top-K) or ``done``."""
    next_batch: int = 0
    """The batch of the current stage to evaluate next."""
    shortlist: list[VariantResult] = field(default_factory=list)
    topk: list[VariantResult] = field(default_factory=list)
    evaluated_a: int = 0
    evaluated_b: int = 0
    pruned: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form saved in the checkpoint."""
        return {
            "stage": self.stage,
            "next_batch": self.next_batch,
            "evaluated_a": self.evaluated_a,
            "evaluated_b": self.evaluated_b,
            "pruned": self.pruned,
            "shortlist": _items(self.shortlist),
            "topk": _items(self.topk),
        }


def _items(results: list[VariantResult]) -> list[dict[str, Any]]:
    return [
        {
            "key": r.key,
            "total_return": r.total_return,
            "max_drawdown": r.max_drawdown,
            "trades": r.trades,
            "sharpe": r.sharpe,
            "variant": variant_to_dict(r.variant),
        }
        for r in results
    ]


def checkpoint_every() -> float:
    """Seconds between checkpoints (:data:`CHECKPOINT_EVERY_S` or the environment's).

    Raises:
        DataValidationError: ``ITA_VC_GRID_CHECKPOINT_SECONDS`` is not a number.
    """
    raw = os.environ.get("ITA_VC_GRID_CHECKPOINT_SECONDS")
    try:
        return CHECKPOINT_EVERY_S if raw is None else max(0.0, float(raw))
    except ValueError:
        raise DataValidationError(
            f"ITA_VC_GRID_CHECKPOINT_SECONDS: not a number: {raw!r}"
        ) from None


class CheckpointWriter:
    """Saves the search state of one request and engine setting: to ``path`` (atomically), or
    through ``write(document, state)`` (a job's checkpoint in the job store), or nowhere."""

    def __init__(
        self,
        path: Path | None,
        request_hash: str,
        engine_hash: str,
        write: Callable[[bytes, SearchState], None] | None = None,
    ) -> None:
        self.path = path
        self.request_hash = request_hash
        self.engine_hash = engine_hash
        self.write = write
        self.every = checkpoint_every()
        self.last_saved = time.perf_counter()

    def save(self, state: SearchState, *, force: bool = False) -> None:
        """Write ``state`` if the interval has passed since the last write (or ``force``)."""
        now = time.perf_counter()
        if (self.path is None and self.write is None) or (
            not force and now - self.last_saved < self.every
        ):
            return
        doc = {
            "request_hash": self.request_hash,
            "engine_params_hash": self.engine_hash,
            "state": state.to_dict(),
        }
        data = json.dumps(doc, sort_keys=True).encode("utf-8")
        if self.path is not None:
            atomic_write_bytes(self.path, data)
        if self.write is not None:
            self.write(data, state)
        self.last_saved = now


def _result(
    item: Any,
    request: GridRequest,
    allowed: dict[tuple[str, str], set[Any]],
) -> VariantResult:
    variant = variant_from_dict(item["variant"])
    names = [n for n, _params in request.axes]
    if (
        variant.key != item["key"]
        or [n for n, _p in variant.indicators] != names
        or not all(
            (n, k) in allowed and v in allowed[n, k]
            for n, params in variant.indicators
            for k, v in params
        )
        or variant.sl_pct not in (None, *request.sl_values)
        or variant.tp_pct not in (None, *request.tp_values)
    ):
        raise ValueError(f"variant {item['key']!r} is not of this grid")
    sharpe = item.get("sharpe")
    return VariantResult(
        item["key"],
        float(item["total_return"]),
        float(item["max_drawdown"]),
        int(item["trades"]),
        variant,
        None if sharpe is None else float(sharpe),
    )


def _read(checkpoint: Path, remedy: str) -> dict[str, Any]:
    try:
        saved = json.loads(checkpoint.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataValidationError(
            f"{checkpoint}: not a readable grid checkpoint ({exc}); {remedy}"
        ) from exc
    if not isinstance(saved, dict):
        raise DataValidationError(f"{checkpoint}: not a grid checkpoint; {remedy}")
    return saved


def _well_formed(state: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(state, dict)
        and state.get("stage") in ("A", "B", "done")
        and all(type(state.get(k)) is int and state[k] >= 0 for k in _COUNTERS)
        and isinstance(state.get("shortlist"), list)
        and isinstance(state.get("topk"), list)
    )


def load_checkpoint(
    checkpoint: Path, request: GridRequest, request_hash: str, engine_hash: str
) -> SearchState:
    """The search state saved in ``checkpoint`` for this request and engine setting.

    Raises:
        DataValidationError: unreadable or truncated, not a grid checkpoint, of another grid
            or engine setting, or a damaged search state (naming the file; the remedy: delete
            it, or run without ``--resume``).
    """
    remedy = "delete it, or run without --resume to start over"
    return parse_checkpoint(
        _read(checkpoint, remedy), str(checkpoint), request, request_hash, engine_hash, remedy
    )


def parse_checkpoint(
    saved: dict[str, Any],
    source: str,
    request: GridRequest,
    request_hash: str,
    engine_hash: str,
    remedy: str = "start over",
) -> SearchState:
    """The search state of a checkpoint document (read from ``source``), checked.

    Raises:
        DataValidationError: of another grid or engine setting, or a damaged search state.
    """
    if (saved.get("request_hash"), saved.get("engine_params_hash")) != (request_hash, engine_hash):
        raise DataValidationError(
            f"{source}: the checkpoint is of another grid or engine setting; {remedy}"
        )
    state = saved.get("state")
    if not _well_formed(state):
        raise DataValidationError(f"{source}: the search state is damaged; {remedy}")
    allowed = {(n, p): set(v) for n, params in request.axes for p, v in params}
    try:
        shortlist = [_result(i, request, allowed) for i in state["shortlist"]]
        topk = [_result(i, request, allowed) for i in state["topk"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataValidationError(
            f"{source}: the search state is damaged ({exc}); {remedy}"
        ) from exc
    return SearchState(
        state["stage"],
        state["next_batch"],
        shortlist,
        topk,
        state["evaluated_a"],
        state["evaluated_b"],
        state["pruned"],
    )
