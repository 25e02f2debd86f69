"""Fewer points for display, the same picture: per-bucket minimum and maximum (in time order).

A line of 1M bars drawn at 1,000 pixels shows, per pixel column, the range the values span;
keeping each bucket's first, minimum, maximum and last point keeps that range, the shape and
every spike. Trade markers are never decimated: charts draw them from the trades table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from ita_vc.utils.arrays import IntArray

__all__ = ["MAX_POINTS", "decimate_index"]

MAX_POINTS = 5_000
"""Points per series above which charts decimate (4 per bucket: about 1,250 buckets)."""


def decimate_index(values: npt.ArrayLike, max_points: int = MAX_POINTS) -> IntArray:
    """Sorted indices into ``values`` to draw: all of them when there are at most
    ``max_points``, else each bucket's first, min, max and last (NaNs ignored for min/max).
    Deterministic: the same values give the same indices."""
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:]
    filled = np.where(np.isnan(y), np.inf, y)
    lows = np.minimum.reduceat(filled, starts)
    filled = np.where(np.isnan(y), -np.inf, y)
    highs = np.maximum.reduceat(filled, starts)
    picks = [starts, ends - 1]
    # first index in each bucket equal to its min / max
    bucket_of = np.repeat(np.arange(buckets), ends - starts)
    is_low = y == lows[bucket_of]
    is_high = y == highs[bucket_of]
    for mask in (is_low, is_high):
        idx = np.flatnonzero(mask)
        if len(idx):
            first = np.r_[True, bucket_of[idx][1:] != bucket_of[idx][:-1]]
            picks.append(idx[first])
    return np.unique(np.concatenate(picks)).astype(np.int64)
