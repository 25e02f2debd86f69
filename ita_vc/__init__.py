"""ita-vc: git-native versioning for trading research, on top of git and DVC.

The public Python API; everything not listed in ``__all__`` is internal. Names are imported on
first use (PEP 562), so ``import ita_vc`` and the CLI's ``--help`` stay fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports
from ita_vc._version import __version__

# a library never configures logging; the CLI and the store attach their file handlers
logging.getLogger("ita_vc").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ita_vc.config import Config, load_config
    from ita_vc.errors import (
        ConfigError,
        DataValidationError,
        DirtyWorkspaceError,
        IndexCorruptError,
        IntegrityError,
        ItaVcError,
        JobStoreError,
        NotInitializedError,
        PersistentStoreError,
        RemoteError,
        RetentionRefusedError,
        RuleValidationError,
        UsageError,
        VcsError,
        WorkspaceLockedError,
    )
    from ita_vc.index_rebuild import rebuild_index
    from ita_vc.initialize import InitReport, init_workspace
    from ita_vc.store import ArtifactRef, PersistentStore, canonical_json, hash_canonical
    from ita_vc.workspace import Workspace

_EXPORTS = {
    "ArtifactRef": "ita_vc.store",
    "Config": "ita_vc.config",
    "ConfigError": "ita_vc.errors",
    "DataValidationError": "ita_vc.errors",
    "DirtyWorkspaceError": "ita_vc.errors",
    "IndexCorruptError": "ita_vc.errors",
    "InitReport": "ita_vc.initialize",
    "IntegrityError": "ita_vc.errors",
    "ItaVcError": "ita_vc.errors",
    "NotInitializedError": "ita_vc.errors",
    "PersistentStore": "ita_vc.store",
    "PersistentStoreError": "ita_vc.errors",
    "JobStoreError": "ita_vc.errors",
    "RemoteError": "ita_vc.errors",
    "RetentionRefusedError": "ita_vc.errors",
    "RuleValidationError": "ita_vc.errors",
    "UsageError": "ita_vc.errors",
    "VcsError": "ita_vc.errors",
    "Workspace": "ita_vc.workspace",
    "WorkspaceLockedError": "ita_vc.errors",
    "canonical_json": "ita_vc.store",
    "hash_canonical": "ita_vc.store",
    "init_workspace": "ita_vc.initialize",
    "load_config": "ita_vc.config",
    "rebuild_index": "ita_vc.index_rebuild",
}

__all__ = [
    "ArtifactRef",
    "Config",
    "ConfigError",
    "DataValidationError",
    "DirtyWorkspaceError",
    "IndexCorruptError",
    "InitReport",
    "IntegrityError",
    "ItaVcError",
    "JobStoreError",
    "NotInitializedError",
    "PersistentStore",
    "PersistentStoreError",
    "RemoteError",
    "RetentionRefusedError",
    "RuleValidationError",
    "UsageError",
    "VcsError",
    "Workspace",
    "WorkspaceLockedError",
    "__version__",
    "canonical_json",
    "hash_canonical",
    "init_workspace",
    "load_config",
    "rebuild_index",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
