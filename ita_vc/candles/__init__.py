"""Candles: import, validation, the canonical store, rollup and the sample dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.candles.dataset import CandleStore, DatasetInfo, ImportReport, RemoveReport
    from ita_vc.candles.importers import read_candle_file
    from ita_vc.candles.merge import merge_candles
    from ita_vc.candles.rollup import RollupReport, rollup_candles, rollup_with_report
    from ita_vc.candles.schema import (
        CANONICAL_COLUMNS,
        TIMEFRAMES,
        infer_timeframe,
        instrument_key,
        timeframe_ms,
    )
    from ita_vc.candles.validate import validate_candles

_EXPORTS = {
    "CANONICAL_COLUMNS": "ita_vc.candles.schema",
    "TIMEFRAMES": "ita_vc.candles.schema",
    "CandleStore": "ita_vc.candles.dataset",
    "DatasetInfo": "ita_vc.candles.dataset",
    "ImportReport": "ita_vc.candles.dataset",
    "RemoveReport": "ita_vc.candles.dataset",
    "RollupReport": "ita_vc.candles.rollup",
    "infer_timeframe": "ita_vc.candles.schema",
    "instrument_key": "ita_vc.candles.schema",
    "merge_candles": "ita_vc.candles.merge",
    "read_candle_file": "ita_vc.candles.importers",
    "rollup_candles": "ita_vc.candles.rollup",
    "rollup_with_report": "ita_vc.candles.rollup",
    "timeframe_ms": "ita_vc.candles.schema",
    "validate_candles": "ita_vc.candles.validate",
}

__all__ = [
    "CANONICAL_COLUMNS",
    "TIMEFRAMES",
    "CandleStore",
    "DatasetInfo",
    "ImportReport",
    "RemoveReport",
    "RollupReport",
    "infer_timeframe",
    "instrument_key",
    "merge_candles",
    "read_candle_file",
    "rollup_candles",
    "rollup_with_report",
    "timeframe_ms",
    "validate_candles",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
