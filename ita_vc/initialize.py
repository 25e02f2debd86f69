"""``ita-vc init``: turn a folder into an ita-vc workspace (idempotent, never overwrites)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from ita_vc.config import CONFIG_RELPATH, default_config_text, load_config
from ita_vc.errors import ItaVcError, VcsError
from ita_vc.rules.hook_install import install_hooks as install
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.vcs import dvc as dvc_vcs
from ita_vc.vcs import gitcli

__all__ = [
    "PLOTS_TEMPLATE_RELPATH",
    "InitReport",
    "dvc_yaml_text",
    "init_workspace",
    "read_ignore_file",
]

PLOTS_TEMPLATE_RELPATH = "configs/plots/time_series.json"
"""The ``dvc plots`` template of time series (a temporal x axis: ISO times draw a line)."""


@dataclass(slots=True)
class InitReport:
    """What ``init_workspace`` did: each item a repo-relative path or a step name."""

    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """False when the folder already was a complete workspace."""
        return bool(self.created)


def _template(name: str) -> str:
    return resources.files("ita_vc.templates").joinpath(name).read_text("utf-8")


def read_ignore_file(path: Path) -> str:
    """A ``.gitignore``-style file as text, any bytes kept (git accepts non-UTF-8 patterns:
    they round-trip through ``surrogateescape``); empty when missing."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return ""


def dvc_yaml_text() -> str:
    """The ``dvc.yaml`` ``ita-vc init`` writes, its stages pinned to this engine."""
    from ita_vc.backtest.run import ENGINE_VERSION  # lazy: backtest.run imports numpy

    return _template("dvc.yaml.in").replace("@ENGINE@", ENGINE_VERSION)


def _write_new(root: Path, relpath: str, text: str, report: InitReport) -> None:
    target = root / relpath
    if target.exists():
        report.kept.append(relpath)
        return
    atomic_write_bytes(target, text.encode("utf-8"), overwrite=False)
    report.created.append(relpath)


def _gitignore_lines(root: Path) -> list[str]:
    paths = load_config(root).paths
    state = PurePosixPath(paths.index_path).parent
    lines = [f"/{state}/"] if state.parts else [f"/{paths.index_path}*", "/workspace.lock"]
    for local in (paths.trash_root, paths.cache_root):  # the trash, the feature cache
        if not (state.parts and PurePosixPath(local).is_relative_to(state)):
            lines.append(f"/{local}/")
    lines += [
        f"/{paths.logs_root}/",
        "__pycache__/",
        "/dvc_plots/",
        # `ita-vc grid run` writes here outside DVC (the grid stage may never have run,
        # so DVC has not ignored it yet): never commit it into git by accident
        f"/{paths.results_root}/grid/",
    ]
    return list(dict.fromkeys(lines))


def _update_gitignore(root: Path, report: InitReport) -> None:
    target = root / ".gitignore"
    existing = read_ignore_file(target)
    present = {line.strip() for line in existing.splitlines()}
    missing = [line for line in _gitignore_lines(root) if line not in present]
    if not missing:
        report.kept.append(".gitignore")
        return
    prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
    text = prefix + _template("gitignore") + "".join(f"{line}\n" for line in missing)
    atomic_write_bytes(target, text.encode("utf-8", "surrogateescape"))
    report.created.append(".gitignore (" + ", ".join(missing) + ")")


def _update_dvcignore(root: Path, report: InitReport) -> None:
    """Keep the store's in-flight temp files out of ``dvc add``."""
    target = root / ".dvcignore"
    existing = read_ignore_file(target)
    present = {x.strip() for x in existing.splitlines()}
    missing = [line for line in ("*.ita-tmp", "__pycache__/") if line not in present]
    if not missing:
        return
    prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
    text = prefix + "# ita-vc: temp files of atomic writes in progress, python caches\n"
    text += "".join(f"{line}\n" for line in missing)
    atomic_write_bytes(target, text.encode("utf-8", "surrogateescape"))
    report.created.append(f".dvcignore ({', '.join(missing)})")


def init_workspace(path: str | Path, *, install_hooks: bool = False) -> InitReport:
    """Make ``path`` an ita-vc workspace: git, DVC, config, params, pipeline, rules, ignores.

    Safe to run again: existing files are kept as they are and reported as kept.
    ``install_hooks`` also installs the rule-check git hooks (``ita-vc hooks install``).

    Raises:
        ItaVcError: ``path`` is a file, or lies inside another git work tree.
        VcsError: git or DVC failed.
        ConfigError: an existing ``configs/config.yaml`` is invalid.
    """
    root = Path(path).resolve()
    if root.exists() and not root.is_dir():
        raise ItaVcError(f"{root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    report = InitReport(root=root)

    top = gitcli.find_toplevel(root)
    if top is None:
        gitcli.init(root)
        report.created.append("git repository")
    elif top != root:
        raise VcsError(
            f"{root} is inside the git work tree {top}; run `ita-vc init` at that top level "
            "(DVC and ita-vc expect the workspace root to be the repository root)"
        )
    else:
        report.kept.append("git repository")

    if dvc_vcs.is_dvc_repo(root):
        report.kept.append("DVC repository")
    else:
        dvc_vcs.init_dvc(root)
        report.created.append("DVC repository")
    if dvc_vcs.disable_analytics(root):
        report.created.append("DVC analytics off (.dvc/config)")

    _write_new(root, CONFIG_RELPATH, default_config_text(), report)
    config = load_config(root)  # validates an existing user config too
    _write_new(root, "configs/indicators.yaml", _template("indicators.yaml"), report)
    _write_new(root, "configs/retention.yaml", _template("retention.yaml"), report)
    _write_new(root, "params.yaml", _template("params.yaml"), report)
    _write_new(root, "dvc.yaml", dvc_yaml_text(), report)
    _write_new(root, PLOTS_TEMPLATE_RELPATH, _template("time_series.json"), report)
    rules = root / config.paths.rules_root
    if rules.is_dir():
        report.kept.append(config.paths.rules_root + "/")
    else:
        _write_new(root, f"{config.paths.rules_root}/.gitkeep", "", report)
    _update_gitignore(root, report)
    _update_dvcignore(root, report)
    if install_hooks:
        hooks = install(root)
        report.created += [f"git hook {name}" for name in hooks.written]
    return report
