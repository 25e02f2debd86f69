"""``params.yaml: validation:`` (issue #16): which tests run and with what settings.

A test whose section is absent or null is skipped (its summary key is null); ``{}`` runs it with
the defaults. Declared once as an :mod:`ita_vc.schema` schema; every problem is reported at once
with its line (exit 11), before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import voluptuous as vol

from ita_vc.errors import DataValidationError
from ita_vc.schema import Invalid, Problems, choice, integer, nullable, number, strict

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog

__all__ = [
    "VALIDATION_SCHEMA",
    "BootstrapParams",
    "OverfittingParams",
    "ValidationParams",
    "WfoParams",
    "check_params",
    "parse_validation",
]

_NUMERIC_METRICS = (
    "Total Return [%]", "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio", "Max. Drawdown [%]",
    "Win Rate [%]", "Expectancy", "SQN", "Total Profit", "Avg. Trade [%]",
)  # fmt: skip
"""Walk-forward objectives: metrics where larger is better once read as documented (Max.
Drawdown [%] is <= 0, so larger is a shallower drawdown)."""


MAX_BLOCK = 100_000
"""The longest bootstrap block accepted (days; a block longer than the returns wraps whole)."""


def _block_size(value: object) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BLOCK:
        raise Invalid(f'must be "auto" or an integer in 1..{MAX_BLOCK:,}, got {value!r}')
    return value


def _partitions(value: object) -> int:
    checked: int = integer(minimum=2, maximum=20)(value)
    if checked % 2:
        raise Invalid(f"must be even (the halves are equal), got {checked}")
    return checked


def _confidence(value: object) -> float:
    checked = number(minimum=0, exclusive_minimum=True)(value)
    if checked >= 1:
        raise Invalid(f"must be between 0 and 1 (exclusive), got {checked}")
    return float(checked)


def _section(schema: Mapping[Any, Any]) -> Any:
    return nullable(strict(schema))


VALIDATION_SCHEMA = strict(
    {
        vol.Optional("seed", default=0): integer(minimum=0, maximum=2**63 - 1),
        vol.Optional("permutation", default=None): _section(
            {vol.Optional("n", default=1000): integer(minimum=1, maximum=10**7)}
        ),
        vol.Optional("block_bootstrap", default=None): _section(
            {
                vol.Optional("n", default=2000): integer(minimum=1, maximum=10**7),
                vol.Optional("block_size", default="auto"): _block_size,
                vol.Optional("confidence", default=0.95): _confidence,
            }
        ),
        vol.Optional("monte_carlo", default=None): _section(
            {vol.Optional("n", default=2000): integer(minimum=1, maximum=10**7)}
        ),
        vol.Optional("wfo", default=None): _section(
            {
                vol.Optional("windows", default=4): integer(minimum=1, maximum=1000),
                vol.Optional("in_sample_ratio", default=3): integer(minimum=1, maximum=1000),
                vol.Optional("mode", default="rolling"): choice(("rolling", "anchored")),
                vol.Optional("objective", default="Total Return [%]"): choice(_NUMERIC_METRICS),
            }
        ),
        vol.Optional("overfitting", default=None): _section(
            {
                vol.Optional("partitions", default=16): _partitions,
                vol.Optional("max_variants", default=20000): integer(minimum=2, maximum=10**6),
            }
        ),
    }
)


@dataclass(frozen=True, slots=True)
class BootstrapParams:
    n: int
    block_size: int | Literal["auto"]
    confidence: float


@dataclass(frozen=True, slots=True)
class WfoParams:
    windows: int
    in_sample_ratio: int
    mode: Literal["rolling", "anchored"]
    objective: str


@dataclass(frozen=True, slots=True)
class OverfittingParams:
    partitions: int
    max_variants: int


@dataclass(frozen=True, slots=True)
class ValidationParams:
    """The tests to run (None: skipped) and the seed of the randomised ones."""

    seed: int
    permutation_n: int | None
    block_bootstrap: BootstrapParams | None
    monte_carlo_n: int | None
    wfo: WfoParams | None
    overfitting: OverfittingParams | None


def parse_validation(
    raw: object,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    source: str = "params.yaml",
) -> ValidationParams | None:
    """The ``validation:`` section of params.yaml (``raw``), or None when it is absent or null.

    Raises:
        DataValidationError: every problem, each ``params.yaml:<line>: validation.<key>: ...``.
    """
    if raw is None:
        return None
    problems = Problems(source, index or {})
    valid = problems.check(VALIDATION_SCHEMA, raw, prefix="validation.")
    if problems or valid is None:
        problems.fail(DataValidationError)
    boot, wfo, over = valid["block_bootstrap"], valid["wfo"], valid["overfitting"]
    return ValidationParams(
        seed=valid["seed"],
        permutation_n=None if valid["permutation"] is None else valid["permutation"]["n"],
        block_bootstrap=None if boot is None else BootstrapParams(**boot),
        monte_carlo_n=None if valid["monte_carlo"] is None else valid["monte_carlo"]["n"],
        wfo=None if wfo is None else WfoParams(**wfo),
        overfitting=None if over is None else OverfittingParams(**over),
    )


def check_params(
    raw: Mapping[str, Any] | None,
    catalog: Catalog,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    engine: str | None = None,
) -> tuple[RunParams, ValidationParams | None]:
    """params.yaml whole: its run sections and ``grid:``
    (:func:`ita_vc.grid.check_params_and_grid`) and its ``validation:`` section, every problem
    of all of them in one message (each with its line when ``index`` is given).

    Raises:
        DataValidationError: every problem found.
    """
    from ita_vc.grid.request import check_params_and_grid

    errors: list[str] = []
    params = validation = None
    try:
        params = check_params_and_grid(raw, catalog, index=index, engine=engine)
    except DataValidationError as exc:
        errors.append(str(exc))
    try:
        validation = parse_validation((raw or {}).get("validation"), index=index)
    except DataValidationError as exc:
        errors.append(str(exc))
    if errors or params is None:
        raise DataValidationError("\n".join(errors))
    return params, validation
