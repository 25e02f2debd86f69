"""``ita-vc index rebuild``: the whole metadata index recreated from the workspace's files.

The index is a cache (git and DVC files are the truth): the artifacts table from the stored
files, then every derived table from committed files - runs (snapshots), run links (manifests,
attachments), rules (``rules/``), presets (``presets/``) - and the feature cache's table from
the entries on disk. The run log (``.ita/runs.jsonl``) is not in the index and survives a
rebuild untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = ["IndexRebuild", "rebuild_index"]


@dataclass
class IndexRebuild:
    """What one rebuild wrote: rows per table, the files skipped (path, reason), seconds."""

    artifacts: int
    skipped: tuple[tuple[str, str], ...]
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def rebuild_index(workspace: Workspace) -> IndexRebuild:
    """Recreate the index of ``workspace`` (see the module docstring).

    Raises:
        PersistentStoreError: the index cannot be written.
    """
    from ita_vc.features import sync_feature_cache  # lazy: each table's module
    from ita_vc.presets import sync_presets
    from ita_vc.rules.table import sync_rules
    from ita_vc.snapshot.links import sync_run_links
    from ita_vc.snapshot.runs import sync_runs
    from ita_vc.store import PersistentStore

    started = time.perf_counter()
    report = PersistentStore(workspace).rebuild()
    result = IndexRebuild(report.count, tuple(report.skipped))
    result.tables["runs"] = len(sync_runs(workspace))
    result.tables["run links"] = sync_run_links(workspace)
    result.tables["rules"] = sync_rules(workspace)
    result.tables["presets"] = sync_presets(workspace)
    result.tables["feature cache entries"] = sync_feature_cache(workspace)
    result.seconds = time.perf_counter() - started
    return result
