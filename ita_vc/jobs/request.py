"""``ita-vc jobs submit``: a request frozen as canonical JSON, checked as ``ita-vc run`` checks.

The request holds what a worker on any machine needs to run the job and nothing of the
workspace's state: the git commit, the params (``params.yaml`` with the ``-S`` edits), the
rule version and its ``params_hash``, the candles (path, DVC md5 and sha256), the grid request
and its hash, the pinned engine, and the ita-vc version. ``request_hash`` is the sha256 of its
canonical JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ita_vc._version import __version__
from ita_vc.errors import ConfigError, DataValidationError, DirtyWorkspaceError, UsageError
from ita_vc.jobs.model import JOB_KINDS
from ita_vc.utils.hashing import hash_canonical, hash_file_md5

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ita_vc.workspace import Workspace

__all__ = ["FrozenRequest", "freeze_request"]


class FrozenRequest:
    """A checked request: ``kind``, the JSON-able ``body`` and its ``request_hash``."""

    def __init__(self, kind: str, body: dict[str, Any]) -> None:
        self.kind = kind
        self.body = body
        self.request_hash = hash_canonical(body)


def freeze_request(
    workspace: Workspace,
    kind: str,
    overrides: Iterable[tuple[str, object]] = (),
    *,
    allow_dirty: bool = False,
) -> FrozenRequest:
    """Check and freeze a ``grid`` or ``backtest`` request of the workspace at HEAD.

    Raises:
        UsageError: an unknown kind.
        ConfigError: jobs are disabled (``jobs.enabled: false``).
        DirtyWorkspaceError: uncommitted changes (without ``allow_dirty``), no commit yet, or
            an uncommitted rule version (even with ``allow_dirty``).
        DataValidationError: bad params, grid or ``-S`` values; no candles.
        RuleValidationError: an invalid rule version.
    """
    from ita_vc.pipeline.engine_pin import pinned_engine
    from ita_vc.pipeline.stages import grid_request
    from ita_vc.rules.registry import RuleRegistry
    from ita_vc.snapshot.runner import (
        _dirty_message,
        _dirty_paths,
        _load_params_document,
        _read_params,
        _validated_params,
        apply_param_overrides,
    )
    from ita_vc.vcs import gitcli

    if kind not in JOB_KINDS:
        raise UsageError(f"the job kind must be one of {', '.join(JOB_KINDS)}, got {kind!r}")
    if not workspace.config.jobs.enabled:
        raise ConfigError(
            "configs/config.yaml: jobs.enabled is false: jobs are turned off in this workspace"
        )
    root = workspace.root
    commit = gitcli.head(root)
    if commit is None:
        raise DirtyWorkspaceError(
            "the repository has no commit yet: commit the workspace first (git add -A && "
            "git commit)"
        )
    dirty = _dirty_paths(root)
    if dirty and not allow_dirty:
        raise DirtyWorkspaceError(
            _dirty_message(dirty).replace(
                "the snapshot records them",
                "the job records them; a worker runs the committed files",
            )
        )
    text = _read_params(workspace.contained("params.yaml"))
    edits = list(overrides)
    if edits:
        text = apply_param_overrides(text, edits)
    raw, params = _validated_params(workspace, text)
    doc = _load_params_document(text)
    if not params.setup_id or not params.version:
        raise DataValidationError("params.yaml: rule.setup_id and rule.version are required")
    registry = RuleRegistry(workspace)
    rule = registry.get(params.setup_id, params.version)
    rel = registry.relpath(params.setup_id, rule.version)
    if not gitcli.git(["ls-files", "--", rel], root).strip() or rel in gitcli.status_paths(root):
        raise DirtyWorkspaceError(
            f"{rel} is not committed: a job's rule version must be in its commit; commit it "
            "first (`git add` + `git commit`), even with --allow-dirty"
        )
    body: dict[str, Any] = {
        "kind": kind,
        "git_commit": commit,
        "params": raw,
        "rule": {
            "setup_id": rule.setup_id,
            "version": rule.version.tag,
            "params_hash": rule.params_hash,
        },
        "engine": pinned_engine(root),
        "ita_vc_version": __version__,
        "dirty": dirty,
    }
    if kind == "grid":
        _rule, run_params, request = grid_request(workspace, doc.data, index=doc.index)
        _check_overfitting_size(doc, request)
        body["grid_request"] = request.to_dict()
        body["grid_request_hash"] = hash_canonical(request.to_dict())
    else:
        run_params = params
    body["data"] = _candles(workspace, run_params)
    return FrozenRequest(kind, body)


def _check_overfitting_size(doc: Any, request: Any) -> None:
    """The grid stage's overfitting statistics hold every Stage A variant: refused at submit
    when there are more than ``validation.overfitting.max_variants`` (as the stage would).

    Raises:
        DataValidationError: too many Stage A variants (or a bad validation section).
    """
    from itertools import islice

    from ita_vc.grid.returns import too_many_variants
    from ita_vc.pipeline.stages import read_validation

    validation = read_validation(doc.data, doc.index)
    if validation is None or validation.overfitting is None:
        return
    limit = validation.overfitting.max_variants
    count, exact = request.count_stage_a()
    if exact and count > limit:
        raise too_many_variants(count, limit)
    if not exact and count > limit:  # an upper bound: count the real ones, up to the limit
        real = sum(1 for _ in islice(request.base_variants(), limit + 1))
        if real > limit:
            raise too_many_variants(real, limit)


def _candles(workspace: Workspace, params: Any) -> dict[str, Any]:
    """The candles file of the request: path, DVC md5 (what a worker checks out) and sha256.

    Raises:
        DataValidationError: no such dataset.
    """
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.vcs.dvc import local_objects

    data = params.data
    candles = CandleStore(workspace)
    rel = candles.relpath(data.market, data.symbol, data.source_timeframe)
    path = workspace.root / rel
    if not candles.exists(data.market, data.symbol, data.source_timeframe) or not path.is_file():
        raise DataValidationError(
            f"no candles for {data.market} {data.symbol} {data.source_timeframe} ({rel}): "
            f"import them with `ita-vc data import FILE --market {data.market} --symbol "
            f"{data.symbol} --commit`"
        )
    sha, md5, size = hash_file_md5(path)
    if not local_objects(workspace.root, [md5]):
        raise DirtyWorkspaceError(
            f"{rel} is not in the DVC cache as it is now (md5 {md5}): a worker takes the "
            "candles from the cache; commit them (`ita-vc data import ... --commit`, or "
            "`dvc add data` and commit data.dvc)"
        )
    return {
        "market": data.market,
        "symbol": data.symbol,
        "timeframe": data.timeframe,
        "source_timeframe": data.source_timeframe,
        "path": rel,
        "md5": md5,
        "sha256": sha,
        "bytes": size,
    }
