"""The rules table of the index (seed 001's DB record of a rule version), rebuilt from ``rules/``.

One row per version file ``rules/<setup_id>/v<X.Y>.yaml``: ``id`` (``SETUP@vX.Y``),
``setup_id``, ``version`` (``vX.Y``), ``file_path``, ``author`` and ``created_at`` (from the
rule file's metadata; the git log of the file when the metadata leaves them empty), ``active``
(1 when the lifecycle status is active) and ``params_hash``. The files stay the source of truth.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ita_vc.errors import RuleValidationError, VcsError
from ita_vc.rules.model import LifecycleEntry
from ita_vc.rules.registry import RuleRegistry
from ita_vc.store.index import MetadataIndex
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = ["rule_rows", "rules_table", "sync_rules"]

_log = logging.getLogger(__name__)


def _git_first(workspace: Workspace, rel: str) -> tuple[str | None, str | None]:
    """``(author, ISO date)`` of the commit that added ``rel`` (None when uncommitted)."""
    try:
        raw = gitcli.git(
            ["log", "--diff-filter=A", "--format=%an%x09%aI", "--", rel],
            workspace.root,
            check=False,
        ).decode("utf-8", "replace")
    except VcsError:
        return None, None
    lines = raw.strip().splitlines()
    if not lines:
        return None, None
    author, _, date = lines[-1].partition("\t")
    return author or None, date or None


def rule_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """The rules-table rows of every valid rule version in the workspace, by id. Invalid
    version or lifecycle files are skipped (logged; ``ita-vc rule check`` names the problem)."""
    registry = RuleRegistry(workspace)
    rows = []
    try:
        setups = registry.setups()
    except RuleValidationError as exc:
        _log.warning("rules table: rules/ cannot be listed: %s", exc)
        return []
    for setup_id in setups:
        try:
            lifecycle = registry.lifecycle(setup_id)
        except RuleValidationError as exc:
            _log.warning("rules table: %s lifecycle skipped: %s", setup_id, exc)
            lifecycle = {}
        for version in registry.versions(setup_id):
            try:
                rule = registry.get(setup_id, version)
            except RuleValidationError as exc:
                _log.warning("rules table: %s %s skipped: %s", setup_id, version.tag, exc)
                continue
            rel = registry.relpath(setup_id, version)
            author, created = rule.author or None, rule.created or None
            if author is None or created is None:
                git_author, git_date = _git_first(workspace, rel)
                author, created = author or git_author, created or git_date
            rows.append(
                {
                    "id": f"{setup_id}@{version.tag}",
                    "setup_id": setup_id,
                    "version": version.tag,
                    "file_path": rel,
                    "author": author,
                    "active": int(lifecycle.get(version, LifecycleEntry()).active),
                    "created_at": created,
                    "params_hash": rule.params_hash,
                }
            )
    return sorted(rows, key=lambda r: str(r["id"]))


def sync_rules(workspace: Workspace) -> int:
    """Recreate the rules table from ``rules/``; the number of rule versions."""
    rows = rule_rows(workspace)
    MetadataIndex(workspace.index_path).replace_rows("rules", rows)
    return len(rows)


def rules_table(
    workspace: Workspace, *, setup_id: str | None = None, active: bool | None = None
) -> list[dict[str, Any]]:
    """Rows of the rules table (of one setup, and/or only active or inactive versions), by id."""
    return MetadataIndex(workspace.index_path).rows(
        "rules", setup_id=setup_id, active=None if active is None else int(active)
    )
