"""The feature cache: indicator state series reused across backtests and grids (docs/cache.md)."""

from __future__ import annotations

from ita_vc.features.cache import (
    CacheInfo,
    FeatureCache,
    FeatureCacheSettings,
    FeatureSession,
    FeatureSource,
    activate,
    active_settings,
    cache_settings,
    feature_source,
    sync_feature_cache,
    worth_caching,
)
from ita_vc.features.hashing import FEATURE_CODE_VERSION, candle_hash, code_version, feature_hash

__all__ = [
    "FEATURE_CODE_VERSION",
    "CacheInfo",
    "FeatureCache",
    "FeatureCacheSettings",
    "FeatureSession",
    "FeatureSource",
    "activate",
    "active_settings",
    "cache_settings",
    "candle_hash",
    "code_version",
    "feature_hash",
    "feature_source",
    "sync_feature_cache",
    "worth_caching",
]
