"""``ita-vc grid promote``: save a grid variant as a new version of its rule.

The new version carries everything that defined the variant - its indicators and targets, and
the direction and sizing the grid ran it with (the request's overrides, recorded in the top-K
row's ``params_json`` when there were any; else the grid's rule version's own) - so a backtest
of the promoted version gives the grid row's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError, ItaVcError

if TYPE_CHECKING:
    from ita_vc.rules.model import Rule
    from ita_vc.workspace import Workspace

__all__ = ["default_grid_folder", "promote_variant"]


def default_grid_folder(workspace: Workspace) -> Path:
    """``results/grid`` (the configured results kind), where ``grid run`` writes."""
    return workspace.path(PurePosixPath(workspace.config.store.kinds["results"], "grid"))


def _read_row(folder: Path, variant_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params_json of the variant's row, summary.json)`` of a grid output folder."""
    import pandas as pd
    import pyarrow as pa

    topk, summary_path = folder / "topk.parquet", folder / "summary.json"
    if not topk.is_file() or not summary_path.is_file():
        raise ItaVcError(
            f"no grid results in {folder} (topk.parquet and summary.json); run "
            "`ita-vc grid run` first, or pass --from FOLDER"
        )
    try:
        table = pd.read_parquet(topk, columns=["variant_key", "params_json"])
        summary = json.loads(summary_path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise DataValidationError(f"{folder}: unreadable grid results ({exc})") from exc
    rows = table[table["variant_key"] == variant_key]
    if rows.empty:
        raise ItaVcError(f"no variant {variant_key!r} in {folder}/topk.parquet")
    try:
        variant = json.loads(rows.iloc[0]["params_json"])
        if not (
            isinstance(variant, dict)
            and isinstance(variant.get("indicators"), list)
            and isinstance(summary, dict)
            and isinstance(summary.get("setup_id"), str)
            and isinstance(summary.get("rule_version"), str)
        ):
            raise TypeError("missing fields")  # noqa: TRY301 - one message for every shape
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{folder}: damaged grid results for {variant_key!r} ({exc})"
        ) from exc
    return variant, summary


def promote_variant(
    workspace: Workspace, variant_key: str, *, folder: Path | None = None, reason: str | None = None
) -> Rule:
    """Write the next version of the grid's rule with the variant's indicators, targets,
    direction and sizing (``rule bump`` with those values); returns the new version.

    Raises:
        ItaVcError: no grid results, or no such variant in them.
        DataValidationError: damaged grid results.
        RuleValidationError: the bump was refused (nothing changed, an invalid result).
    """
    from ita_vc.rules import RuleRegistry

    folder = folder if folder is not None else default_grid_folder(workspace)
    variant, summary = _read_row(folder, variant_key)
    registry = RuleRegistry(workspace)
    setup_id = summary["setup_id"]
    graded = registry.get(setup_id, summary["rule_version"])  # the version the grid swept
    latest = registry.get(setup_id)  # the version `rule bump` starts from
    try:
        indicators = [{"name": n, "params": dict(p)} for n, p in variant["indicators"]]
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{folder}: damaged grid results for {variant_key!r} ({exc})"
        ) from exc
    direction = variant.get("direction", graded.direction)
    sizing = variant.get("sizing", graded.sizing)
    sets = [
        f"indicators={json.dumps(indicators)}",
        f"targets.sl_pct={json.dumps(variant.get('sl_pct'))}",
        f"targets.tp_pct={json.dumps(variant.get('tp_pct'))}",
    ]
    if latest.direction != direction:
        sets.append(f"direction={json.dumps(direction)}")
    if latest.sizing != sizing:
        sets.append(f"sizing={json.dumps(sizing)}")
    return registry.bump(setup_id, sets=sets, reason=reason or f"grid variant {variant_key}")
