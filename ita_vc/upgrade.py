"""``ita-vc init --upgrade``: bring a workspace made by an older ``ita-vc init`` up to today's
templates, showing every change first and writing only when told to.

What it changes, and only that (a user's own stages, parameters and comments stay):

* ``dvc.yaml``: each ``python -m ita_vc.pipeline <stage>`` command pins this ita-vc's engine
  (``--engine X``), so ``dvc status`` shows those stages as changed after an engine change;
  a time-series plot (``x: time``) without a template gets ``configs/plots/time_series.json``
  (DVC's default template draws ISO times as nothing); the report stage (``report``, reading
  ``results/backtest``) depends on ``results/prepared`` too: its price chart reads the candles;
* the ``validate`` stage (the validation suite, docs/validation.md) is added next to a ``grid``
  stage of ``python -m ita_vc.pipeline grid`` - only when ``params.yaml`` has a
  ``validation:`` section (DVC refuses a stage whose declared params are missing); the grid
  stage then declares ``validation.overfitting`` (it writes the per-variant daily returns when
  that is set). Without the section, :func:`upgrade_notes` says how to get the stage;
* ``configs/plots/time_series.json``: written when missing;
* ``.gitignore``: the entries ``init`` writes today (``/dvc_plots/`` among them).

``params.yaml`` is the user's: it is never changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ConfigError
from ita_vc.initialize import (
    PLOTS_TEMPLATE_RELPATH,
    _gitignore_lines,
    _template,
    read_ignore_file,
)
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.workspace import Workspace
from ita_vc.yaml_read import YamlError, load_yaml_text, read_text_file
from ita_vc.yaml_rewrite import YamlEditError, dump_rt, load_rt

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FileChange", "apply_upgrade", "plan_upgrade", "upgrade_notes"]

_STAGE_CMD = re.compile(
    r"python -m ita_vc\.pipeline (prepare|backtest|report|grid|validate)"
    r"(?: --engine (\S+))?"
)


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file the upgrade would write: its current and its new text."""

    path: str
    old: str | None  # None: the file does not exist
    new: str
    why: str

    def diff(self) -> str:
        """A unified diff (``/dev/null`` for a new file; bytes that are not UTF-8 shown as
        replacement characters)."""

        def shown(text: str) -> str:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

        before = shown(self.old or "").splitlines(keepends=True)
        after = shown(self.new).splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                before,
                after,
                fromfile="/dev/null" if self.old is None else f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def _pin(cmd: str, engine: str) -> str:
    """The stage command pinned to ``engine`` - unless it pins a newer engine already (never
    moved down: that stage refuses to run until an ita-vc with that engine is installed)."""
    match = _STAGE_CMD.fullmatch(cmd.strip())
    if match is None:
        return cmd
    pinned = match.group(2)
    if pinned is not None and _version(pinned) > _version(engine):
        return cmd.strip()
    return f"python -m ita_vc.pipeline {match.group(1)} --engine {engine}"


def _stage_kind(body: Any) -> str | None:
    """Which ita-vc pipeline stage a stage body runs (None: a user's own)."""
    cmd = body.get("cmd") if isinstance(body, dict) else None
    match = _STAGE_CMD.fullmatch(cmd.strip()) if isinstance(cmd, str) else None
    return match.group(1) if match else None


def _add_validate(stages: Any, engine: str, validation: Any) -> bool:
    """Add the template's ``validate`` stage beside our grid stage when params.yaml has a
    ``validation:`` section, and make the grid stage declare ``validation.overfitting`` when
    params.yaml has that key (also for a validate stage added earlier: the grid stage then
    re-runs when the setting changes and writes the per-variant returns)."""
    if not isinstance(validation, dict):
        return False
    kinds = {name: _stage_kind(body) for name, body in stages.items()}
    grid = next((name for name, kind in kinds.items() if kind == "grid"), None)
    if grid is None:
        return False
    changed = False
    params = stages[grid].get("params")
    if (
        "overfitting" in validation
        and isinstance(params, list)
        and not {"validation.overfitting", "validation"} & {p for p in params if isinstance(p, str)}
    ):
        params.append("validation.overfitting")
        changed = True
    if "validate" not in kinds.values() and "validate" not in stages:
        template = load_rt(_template("dvc.yaml.in").replace("@ENGINE@", engine), "dvc.yaml")
        stages["validate"] = template["stages"]["validate"]
        changed = True
    return changed


def _upgrade_dvc_yaml(text: str, engine: str, template: str, validation: Any = None) -> str:
    try:
        load_yaml_text(text, "dvc.yaml", allow_aliases=True)  # the safe loader's limits first
        doc = load_rt(text, "dvc.yaml", allow_aliases=True)
    except (YamlError, YamlEditError) as exc:
        raise ConfigError(f"dvc.yaml: {exc}") from exc
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        return text
    changed = _add_validate(stages, engine, validation)
    for stage in stages.values():  # a foreach stage's commands are under `do`
        bodies = [stage, stage.get("do")] if isinstance(stage, dict) else []
        for body in bodies:
            if isinstance(body, dict):
                changed |= _upgrade_stage(body, engine, template)
    return dump_rt(doc) if changed else text


def _report_deps(body: Any) -> bool:
    """The report stage's deps name the prepared candles (its price chart reads them)."""
    deps = body.get("deps")
    if _stage_kind(body) != "report" or not isinstance(deps, list):
        return False
    if "results/backtest" not in deps or "results/prepared" in deps:
        return False
    deps.insert(deps.index("results/backtest"), "results/prepared")
    return True


def _upgrade_stage(body: Any, engine: str, template: str) -> bool:
    """Pin one stage body's ita-vc commands, template its time-series plots and complete the
    report stage's deps."""
    changed = _report_deps(body)
    cmd = body.get("cmd")
    if isinstance(cmd, str) and _pin(cmd, engine) != cmd.strip():
        body["cmd"] = _pin(cmd, engine)
        changed = True
    elif isinstance(cmd, list):
        for i, item in enumerate(cmd):
            if isinstance(item, str) and _pin(item, engine) != item.strip():
                cmd[i] = _pin(item, engine)
                changed = True
    return _template_plots(body.get("plots"), template) or changed


def _template_plots(plots: Any, template: str) -> bool:
    changed = False
    for item in plots if isinstance(plots, list) else []:
        if not isinstance(item, dict):
            continue
        for props in item.values():
            if isinstance(props, dict) and props.get("x") == "time" and "template" not in props:
                props["template"] = template
                changed = True
    return changed


def plan_upgrade(root: Path) -> list[FileChange]:
    """The files ``init --upgrade`` would write, with their new text (nothing is written).

    Raises:
        ConfigError: an unreadable ``dvc.yaml`` or config.
        NotInitializedError: ``root`` is not a workspace.
    """
    from ita_vc.backtest.run import ENGINE_VERSION  # lazy: backtest.run imports numpy

    Workspace.at(root)  # a workspace, with a valid config
    changes: list[FileChange] = []
    dvc_yaml = root / "dvc.yaml"
    if dvc_yaml.is_file():
        try:
            old = read_text_file(dvc_yaml)
        except YamlError as exc:
            raise ConfigError(f"{exc} (dvc.yaml must be UTF-8 YAML)") from exc
        new = _upgrade_dvc_yaml(
            old, ENGINE_VERSION, PLOTS_TEMPLATE_RELPATH, _params_validation(root)
        )
        if new != old:
            changes.append(
                FileChange(
                    "dvc.yaml",
                    old,
                    new,
                    f"pin engine {ENGINE_VERSION} (readable reports and charts; Sharpe/Sortino "
                    "of non-crypto markets over 252 trading days: docs/backtest-model.md); "
                    "time-series plot template; report deps; the validate stage when "
                    "params.yaml has a validation: section",
                )
            )
    plots = root / PLOTS_TEMPLATE_RELPATH
    if not plots.exists():
        changes.append(
            FileChange(
                PLOTS_TEMPLATE_RELPATH,
                None,
                _template("time_series.json"),
                "the dvc plots template for time series",
            )
        )
    ignore = root / ".gitignore"
    old_ignore = read_ignore_file(ignore) if ignore.is_file() else None
    present = {line.strip() for line in (old_ignore or "").splitlines()}
    missing = [line for line in _gitignore_lines(root) if line not in present]
    if missing:
        prefix = old_ignore or ""
        if prefix and not prefix.endswith("\n"):
            prefix += "\n"
        changes.append(
            FileChange(
                ".gitignore",
                old_ignore,
                prefix + "".join(f"{line}\n" for line in missing),
                "ignore " + ", ".join(missing),
            )
        )
    return changes


def _params_validation(root: Path) -> Any:
    """params.yaml's ``validation:`` section (None when absent or unreadable: the stages
    check the file themselves)."""
    path = root / "params.yaml"
    try:
        data = load_yaml_text(read_text_file(path), "params.yaml", allow_aliases=True)
    except (YamlError, OSError):
        return None
    return data.get("validation") if isinstance(data, dict) else None


def upgrade_notes(root: Path) -> list[str]:
    """What the upgrade leaves to the user: the validate stage needs a ``validation:`` section
    in params.yaml first (``params.yaml`` is never changed)."""
    dvc_yaml = root / "dvc.yaml"
    try:
        doc = load_yaml_text(read_text_file(dvc_yaml), "dvc.yaml", allow_aliases=True)
    except (YamlError, OSError):
        return []
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        return []
    kinds = {_stage_kind(body) for body in stages.values()}
    validation = _params_validation(root)
    if "grid" in kinds and "validate" not in kinds and validation is None:
        return [
            "the validation suite (docs/validation.md) is a `validate` stage: add a "
            "`validation:` section to params.yaml (ita-vc's template: `ita-vc init` in an empty "
            "folder writes one), then run `ita-vc init --upgrade` again to add the stage"
        ]
    if "validate" in kinds and not (isinstance(validation, dict) and "overfitting" in validation):
        return [
            "once you set `validation.overfitting` in params.yaml, run `ita-vc init --upgrade` "
            "again: the grid stage then declares it (and writes the per-variant daily returns)"
        ]
    return []


def apply_upgrade(root: Path, changes: list[FileChange], *, wait: float = 0) -> None:
    """Write ``changes`` (atomically, file by file) under the workspace lock.

    Raises:
        WorkspaceLockedError: another command holds the workspace.
        ConfigError: a file changed since the plan was made.
    """
    workspace = Workspace.at(root)
    with workspace.lock(timeout=wait, purpose="ita-vc init --upgrade"):
        for change in changes:
            target = workspace.contained(change.path)
            now = read_ignore_file(target) if target.is_file() else None
            if now != change.old:
                raise ConfigError(
                    f"{change.path} changed while upgrading; run `ita-vc init --upgrade` again"
                )
        for change in changes:
            atomic_write_bytes(
                workspace.contained(change.path), change.new.encode("utf-8", "surrogateescape")
            )
