"""The pipeline files as data: the stages of ``dvc.yaml`` and the run hash of ``dvc.lock``.

Shared by :mod:`ita_vc.snapshot.runner` (which runs the pipeline) and
:mod:`ita_vc.snapshot.capture` (which records what ran), so neither imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ita_vc.errors import ConfigError, VcsError
from ita_vc.utils.hashing import hash_canonical
from ita_vc.yaml_read import YamlError, load_lockfile, load_yaml_file

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["lock_inputs", "pipeline_stage_names", "run_hash_of"]


def pipeline_stage_names(root: Path) -> list[str]:
    """The stage names of the workspace's ``dvc.yaml``, in file order.

    Raises:
        ConfigError: dvc.yaml is missing or unreadable.
    """
    try:
        doc = load_yaml_file(root / "dvc.yaml", max_bytes=1 << 20, allow_aliases=True)
    except YamlError as exc:
        raise ConfigError(f"dvc.yaml: {exc}") from exc
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict) or not stages:
        raise ConfigError("dvc.yaml has no stages (`ita-vc init` writes the pipeline)")
    return [str(name) for name in stages]


def lock_inputs(lock: dict[str, Any], closure: list[str], mode: str) -> dict[str, Any]:
    """What makes two runs the same run: each stage's command, dependency hashes and
    parameters in ``dvc.lock``, and the run mode."""
    stages = (lock.get("stages") or {}) if isinstance(lock, dict) else {}
    inputs: dict[str, Any] = {"mode": mode, "stages": {}}
    for name in closure:
        body = stages.get(name) or {}
        inputs["stages"][name] = {
            "cmd": body.get("cmd"),
            "deps": {str(d.get("path")): d.get("md5") for d in body.get("deps") or []},
            "params": body.get("params") or {},
        }
    return inputs


def run_hash_of(root: Path, closure: list[str], mode: str) -> str | None:
    """The run hash of the current ``dvc.lock`` for these stages (None without a lock)."""
    path = root / "dvc.lock"
    if not path.is_file():
        return None
    try:
        lock = load_lockfile(path) or {}
    except YamlError as exc:
        raise VcsError(f"dvc.lock: {exc}; restore it with `git checkout dvc.lock`") from exc
    inputs = lock_inputs(lock, closure, mode)
    if any(
        not inputs["stages"][name]["deps"] and not inputs["stages"][name]["cmd"] for name in closure
    ):
        return None
    return hash_canonical(inputs)
