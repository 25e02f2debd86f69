"""Working as a team: ``ita-vc push``, ``ita-vc pull`` and ``ita-vc clone`` over a git remote
and a DVC remote (S3-compatible object storage or any DVC remote). Retention on the remote is
``ita_vc.retention.cloud`` (``ita-vc gc --cloud``).

Names are imported on first use (PEP 562): DVC loads only when a command reaches a remote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ita_vc._lazy import lazy_exports

if TYPE_CHECKING:
    from ita_vc.team.sync import (
        PullReport,
        PushReport,
        RunCheck,
        clone_workspace,
        pull_workspace,
        push_workspace,
    )

_EXPORTS = dict.fromkeys(
    ("PullReport", "PushReport", "RunCheck", "clone_workspace", "pull_workspace", "push_workspace"),
    "ita_vc.team.sync",
)

__all__ = [
    "PullReport",
    "PushReport",
    "RunCheck",
    "clone_workspace",
    "pull_workspace",
    "push_workspace",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
