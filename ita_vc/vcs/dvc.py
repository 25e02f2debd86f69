"""DVC adapter: the only module of ita-vc that imports ``dvc``.

``dvc.repo.Repo`` is not a released API (treeverse/dvc#5050), so every use is wrapped here in a
typed function, dvc's major version is pinned (``dvc>=3,<4``) and the functions are covered by
functional tests on real repositories.

dvc is imported inside the functions that use it (lazily): the store, the candles and the
pipeline stages import this module but reach DVC only on some paths (``cache_dir`` for a
symbolic link out of the workspace, ``track_path`` on import), and the light helpers here
(:func:`check_pipeline_files`, :func:`is_dvc_repo`) never do; none of them should pay for
importing dvc (0.2-0.5 s) otherwise.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ConfigError, DataValidationError, ItaVcError, VcsError
from ita_vc.utils.mappings import flatten
from ita_vc.vcs import gitcli
from ita_vc.yaml_read import (
    LOCKFILE_MAX_BYTES,
    LOCKFILE_MAX_NODES,
    MAX_BYTES,
    YamlError,
    compose_yaml,
    load_yaml_document,
    read_text_file,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ita_vc.yaml_read import YamlDocument

__all__ = [
    "CacheScan",
    "cache_dir",
    "cache_paths",
    "check_params_values",
    "check_pipeline_files",
    "check_pipeline_history",
    "checkout",
    "checkout_workspace",
    "commit_stages",
    "data_source_changes",
    "describe_error",
    "disable_analytics",
    "init_dvc",
    "is_dvc_repo",
    "local_objects",
    "missing_stage_params",
    "pipeline_outputs",
    "pipeline_status",
    "scan_revisions",
    "shared_cache_reason",
    "stage_closure",
    "stage_paths",
    "track_path",
    "tracked_paths",
    "workspace_objects",
]


def describe_error(exc: BaseException) -> str:
    """DVC's message with its cause (a YAML error in dvc.lock names the file and line there)."""
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text


def is_dvc_repo(root: str | Path) -> bool:
    """True if ``root`` holds a ``.dvc`` folder."""
    return (Path(root) / ".dvc").is_dir()


def init_dvc(root: str | Path) -> None:
    """``dvc init`` at ``root`` (which must be a git work tree top).

    Raises:
        VcsError: DVC refused.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        Repo.init(root_dir=str(root)).close()
    except DvcException as exc:
        raise VcsError(f"dvc init failed in {root}: {exc}") from exc


def disable_analytics(root: str | Path) -> bool:
    """Set ``core.analytics = false`` in the repo's ``.dvc/config``; True if it changed.

    Raises:
        VcsError: the DVC config cannot be edited.
    """
    from dvc.config import Config  # lazy: see the module docstring
    from dvc.exceptions import DvcException

    try:
        config = Config(dvc_dir=str(Path(root) / ".dvc"))
        current = config.load_one("repo").get("core", {}).get("analytics")
        if str(current).lower() in ("false", "0", "no", "off"):
            return False
        with config.edit("repo") as conf:
            conf["core"]["analytics"] = False
    except DvcException as exc:
        raise VcsError(f"cannot edit {root}/.dvc/config: {exc}") from exc
    return True


def track_path(root: str | Path, relpath: str) -> None:
    """``dvc add <relpath>`` (e.g. the data root, writing ``data.dvc``).

    Raises:
        VcsError: DVC refused (e.g. the path overlaps a pipeline output).
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        # DVC prints git hints; the caller reports what happened itself
        check_pipeline_files(root)
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            repo.scm_context.quiet = True
            repo.add([str(Path(root) / relpath)])
    except DvcException as exc:
        raise VcsError(f"dvc add {relpath} failed: {describe_error(exc)}") from exc


def cache_dir(root: str | Path) -> Path:
    """The local cache folder DVC uses for this repository (``dvc cache dir``: ``cache.dir``
    honoured; objects live below it in ``files/md5/``).

    Raises:
        VcsError: DVC cannot open the repository.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return Path(repo.cache.local_cache_dir)
    except DvcException as exc:
        raise VcsError(f"DVC cannot open {root}: {describe_error(exc)}") from exc


def tracked_paths(root: str | Path) -> list[str]:
    """Repo-relative paths DVC manages: every stage out and every ``.dvc`` file's outs.

    Raises:
        VcsError: DVC cannot read dvc.yaml, dvc.lock or a ``.dvc`` file.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        check_pipeline_files(root)
        with Repo(str(root)) as repo:
            return sorted(
                {
                    Path(out.fs_path).relative_to(Path(root).resolve()).as_posix()
                    for out in repo.index.outs
                }
            )
    except DvcException as exc:
        raise VcsError(f"DVC cannot read the pipeline files: {describe_error(exc)}") from exc


def cache_paths(root: str | Path, oids: list[str]) -> dict[str, Path]:
    """Where each object (md5 or ``md5.dir``) lives in the local cache (existing or not).

    Raises:
        VcsError: DVC cannot open the repository.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            odb = repo.cache.local
            return {oid: Path(odb.oid_to_path(oid)) for oid in oids}
    except DvcException as exc:
        raise VcsError(f"DVC cannot open {root}: {describe_error(exc)}") from exc


def _stage_target(root: str | Path, name: str) -> str:
    """``<root>/dvc.yaml:<name>``: DVC resolves targets against the current folder."""
    return f"{Path(root) / 'dvc.yaml'}:{name}"


PIPELINE_FILES = ("params.yaml", "dvc.yaml", "dvc.lock")
"""Files DVC parses with a loader that expands YAML aliases without a limit."""


def check_params_values(doc: YamlDocument) -> None:
    """DVC reads params.yaml as JSON-like values: a YAML date (``end: 2025-03-01``), timestamp
    or binary value makes every DVC command fail (a TypeError inside DVC), so it is refused
    here, before DVC reads it.

    Raises:
        DataValidationError: every such value, with its line and the quoted form to write.
    """
    lines = []
    for dotted, value in flatten(doc.data).items():
        if value is None or isinstance(value, str | int | float | dict | list):
            continue  # (an empty mapping or list is a leaf of flatten)
        raw = doc.raw(dotted) or str(value)
        line = doc.line(dotted)
        where = f"params.yaml:{line}" if line else "params.yaml"
        lines.append(
            f"{where}: {dotted}: {raw} is a YAML {type(value).__name__}, which DVC "
            f"cannot read as a parameter: quote it ('{raw}')"
        )
    if lines:
        raise DataValidationError("\n".join(lines))


def _check_text(name: str, text: str) -> None:
    limits = (
        {"max_bytes": LOCKFILE_MAX_BYTES, "max_nodes": LOCKFILE_MAX_NODES}
        if name == "dvc.lock"
        else {}
    )
    hints = {
        "dvc.lock": "; restore it (`git checkout dvc.lock`) or re-run `dvc repro`",
        "dvc.yaml": "; fix the pipeline file",
    }
    try:
        if name == "params.yaml":  # composed once: limits, then the values DVC cannot read
            check_params_values(load_yaml_document(text, name, allow_aliases=True))
        else:
            compose_yaml(text, name, allow_aliases=True, **limits)
    except YamlError as exc:
        cls = DataValidationError if name == "params.yaml" else ConfigError
        raise cls(f"{exc}{hints.get(name, '')}") from exc


def check_pipeline_files(root: str | Path) -> None:
    """The workspace's ``params.yaml``, ``dvc.yaml`` and ``dvc.lock`` pass ita-vc's bounded
    YAML loader (1 MiB, depth 50, 10,000 nodes after aliases) before DVC reads them: DVC's own
    loader expands an alias bomb until memory runs out.

    Raises:
        DataValidationError: params.yaml. ConfigError: dvc.yaml or dvc.lock.
    """
    for name in PIPELINE_FILES:
        path = Path(root) / name
        if not path.is_file():
            continue
        try:
            text = read_text_file(
                path, max_bytes=LOCKFILE_MAX_BYTES if name == "dvc.lock" else MAX_BYTES
            )
        except YamlError as exc:  # too large, not UTF-8
            cls = DataValidationError if name == "params.yaml" else ConfigError
            raise cls(str(exc)) from exc
        _check_text(name, text)


def check_pipeline_history(root: str | Path) -> int:
    """Every version of ``params.yaml``, ``dvc.yaml`` and ``dvc.lock`` in any commit of any ref
    passes the bounded loader (``gc`` hands every revision to DVC). Returns the number of
    distinct versions checked.

    Raises:
        DataValidationError, ConfigError: a committed version that does not (named with the
            commit that introduced it).
    """
    raw = gitcli.git(
        [
            "log",
            "--all",
            "--format=%H",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--",
            *PIPELINE_FILES,
        ],
        root,
        check=False,
    ).decode("utf-8", "replace")
    blobs: dict[str, tuple[str, str]] = {}
    commit = ""
    for line in raw.splitlines():
        if line and not line.startswith(":"):
            commit = line.strip()
        elif line.startswith(":"):
            meta, _, name = line.partition("\t")
            blob = meta.split()[3]
            if name in PIPELINE_FILES and set(blob) != {"0"}:
                blobs.setdefault(blob, (name, commit))
    contents = gitcli.cat_files(root, list(blobs))
    for blob, (name, introduced) in blobs.items():
        data = contents.get(blob)
        if data is None:
            continue
        try:
            _check_text(name, data.decode("utf-8", "replace"))
        except ItaVcError as exc:
            raise type(exc)(f"{exc} - the version committed in {introduced[:10]}") from exc
    return len(blobs)


@contextlib.contextmanager
def _quiet_repo(root: str | Path) -> Iterator[Any]:
    """A DVC ``Repo`` opened from its root (so the paths DVC reports are repo-relative), with
    its hints on stdout silenced, once its pipeline files passed :func:`check_pipeline_files`."""
    from dvc.repo import Repo  # lazy: see the module docstring

    check_pipeline_files(root)
    with contextlib.chdir(root), contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
        yield repo


def stage_closure(root: str | Path, targets: list[str]) -> list[str]:
    """Names of the ``dvc.yaml`` stages that ``dvc repro TARGETS`` runs: the targets and every
    stage upstream of them, in pipeline order (``.dvc`` data sources are not stages here).

    Raises:
        VcsError: unknown target or unreadable pipeline files.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    try:
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            graph = repo.index.graph
            wanted = []
            for target in targets:
                for stage in repo.stage.collect(
                    _stage_target(root, target), with_deps=True, graph=graph
                ):
                    if isinstance(stage, PipelineStage) and stage.name not in wanted:
                        wanted.append(stage.name)
            order = [s.name for s in repo.index.stages if isinstance(s, PipelineStage)]
    except DvcException as exc:
        raise VcsError(f"dvc.yaml: {describe_error(exc)}") from exc
    return [name for name in order if name in wanted]


def stage_paths(root: str | Path, names: list[str]) -> tuple[list[str], list[str]]:
    """``(deps, outs)``: repo-relative paths of the named ``dvc.yaml`` stages' dependencies
    and outputs (params files left out), in stage order, ``${...}`` resolved.

    Raises:
        VcsError: an unknown stage, or DVC cannot read the pipeline files.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.stage import PipelineStage

    deps: list[str] = []
    outs: list[str] = []
    try:
        with _quiet_repo(root) as repo:
            base = Path(repo.root_dir)
            stages = {s.name: s for s in repo.index.stages if isinstance(s, PipelineStage)}
            for name in names:
                if name not in stages:
                    raise VcsError(f"dvc.yaml has no stage {name!r}")
                for dep in stages[name].deps:
                    if type(dep).__name__ != "ParamsDependency":
                        deps.append(Path(dep.fs_path).relative_to(base).as_posix())
                outs += [Path(o.fs_path).relative_to(base).as_posix() for o in stages[name].outs]
    except DvcException as exc:
        raise VcsError(f"DVC cannot read the pipeline files: {describe_error(exc)}") from exc
    return list(dict.fromkeys(deps)), list(dict.fromkeys(outs))


def missing_stage_params(root: str | Path, names: list[str]) -> list[str]:
    """What DVC would refuse in the named stages' params: each message names the missing keys
    and the params file (``dvc repro`` and ``dvc commit`` fail on them).

    Raises:
        VcsError: DVC cannot read the pipeline files.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.stage import PipelineStage

    problems: list[str] = []
    try:
        with _quiet_repo(root) as repo:
            stages = {s.name: s for s in repo.index.stages if isinstance(s, PipelineStage)}
            for name in names:
                for dep in stages[name].deps if name in stages else []:
                    if type(dep).__name__ == "ParamsDependency":
                        try:
                            dep.get_hash()
                        except DvcException as exc:
                            problems.append(f"stage {name}: {describe_error(exc)}")
    except DvcException as exc:
        raise VcsError(f"DVC cannot read the pipeline files: {describe_error(exc)}") from exc
    return problems


def commit_stages(root: str | Path, names: list[str]) -> None:
    """``dvc commit --force`` of the named stages: their outputs as they are now recorded in
    ``dvc.lock`` (and cached), with the current dependencies and params.

    Raises:
        VcsError: DVC failed.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring

    try:
        with _quiet_repo(root) as repo:
            for name in names:
                repo.commit(_stage_target(root, name), force=True)
    except DvcException as exc:
        raise VcsError(f"dvc commit {' '.join(names)} failed: {describe_error(exc)}") from exc


def pipeline_outputs(root: str | Path) -> list[str]:
    """Repo-relative paths of every ``dvc.yaml`` stage output (outs, metrics, plots): files
    ``dvc repro`` writes, never inputs a run must have committed.

    Raises:
        VcsError: DVC cannot read the pipeline files.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.stage import PipelineStage

    try:
        with _quiet_repo(root) as repo:
            return sorted(
                {
                    Path(out.fs_path).relative_to(Path(repo.root_dir)).as_posix()
                    for stage in repo.index.stages
                    if isinstance(stage, PipelineStage)
                    for out in stage.outs
                }
            )
    except DvcException as exc:
        raise VcsError(f"DVC cannot read the pipeline files: {describe_error(exc)}") from exc


def data_source_changes(root: str | Path) -> list[str]:
    """``.dvc`` files (``dvc add``-ed data) whose data in the workspace differs from what the
    ``.dvc`` file records, as ``"data (data.dvc: modified)"``.

    Raises:
        VcsError: DVC failed.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.stage import PipelineStage

    found = []
    try:
        with _quiet_repo(root) as repo:
            sources = [
                stage.relpath
                for stage in repo.index.stages
                if not isinstance(stage, PipelineStage) and stage.is_data_source
            ]
            status = repo.status(targets=sources) if sources else {}
            for name, entries in status.items():
                for entry in entries:
                    if not isinstance(entry, dict):
                        continue
                    for path, state in (entry.get("changed outs") or {}).items():
                        found.append(f"{path} ({name}: {state})")
    except DvcException as exc:
        raise VcsError(f"dvc status failed: {describe_error(exc)}") from exc
    return sorted(found)


def pipeline_status(root: str | Path, targets: list[str] | None = None) -> dict[str, object]:
    """``dvc status [TARGETS --with-deps]`` as data (empty when up to date).

    Raises:
        VcsError: DVC failed.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring

    try:
        with _quiet_repo(root) as repo:
            status: dict[str, object] = repo.status(
                targets=[f"dvc.yaml:{t}" for t in targets or []] or None, with_deps=bool(targets)
            )
            return status
    except DvcException as exc:
        raise VcsError(f"dvc status failed: {describe_error(exc)}") from exc


def checkout(root: str | Path, targets: list[str]) -> None:
    """``dvc checkout TARGETS`` from the local cache.

    Raises:
        VcsError: objects missing from the cache, or DVC failed.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    try:
        check_pipeline_files(root)
        with contextlib.redirect_stdout(io.StringIO()), Repo(str(root)) as repo:
            repo.checkout(targets=[str(Path(root) / t) for t in targets], force=True)
    except DvcException as exc:
        raise VcsError(f"dvc checkout {' '.join(targets)} failed: {describe_error(exc)}") from exc


def checkout_workspace(root: str | Path) -> list[str]:
    """``dvc checkout`` of the whole workspace from the local cache, without ``--force``:
    data changed in the workspace is left alone (listed in the result, with why), and an
    output whose object is absent (a stage that never ran) is skipped.

    Raises:
        VcsError: DVC failed otherwise.
    """
    from dvc.exceptions import CheckoutError, ConfirmRemoveError, DvcException  # lazy

    quiet = logging.getLogger("dvc_data.index.checkout")  # "No file hash info found for
    level = quiet.level  # <an output that never ran>": expected here, not worth a warning
    quiet.setLevel(logging.ERROR)
    try:
        with _quiet_repo(root) as repo:
            repo.checkout(force=False, allow_missing=True)
    except ConfirmRemoveError as exc:
        return [f"{describe_error(exc)}: your workspace copy was kept"]
    except CheckoutError as exc:
        return [f"not restored: {path}" for path in exc.target_infos] or [describe_error(exc)]
    except DvcException as exc:
        raise VcsError(f"dvc checkout failed: {describe_error(exc)}") from exc
    finally:
        quiet.setLevel(level)
    return []


def workspace_objects(root: str | Path) -> list[tuple[str, str]]:
    """``(repo-relative path, object id)`` of every cached out the workspace's pipeline files
    record (``dvc.lock`` and ``.dvc`` files as they are now); directory outs by their
    ``.dir`` object (see :func:`local_objects` for their files).

    Raises:
        VcsError: DVC cannot read the pipeline files.
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring

    try:
        with _quiet_repo(root) as repo:
            base = Path(repo.root_dir)
            return sorted(
                {
                    (Path(out.fs_path).relative_to(base).as_posix(), str(out.hash_info.value))
                    for out in repo.index.outs
                    if out.use_cache and out.hash_info and out.hash_info.value
                }
            )
    except DvcException as exc:
        raise VcsError(f"DVC cannot read the pipeline files: {describe_error(exc)}") from exc


def local_objects(root: str | Path, oids: list[str]) -> dict[str, Path]:
    """Those of ``oids`` the local cache holds, with their paths.

    Raises:
        VcsError: DVC cannot open the repository.
    """
    return {oid: path for oid, path in cache_paths(root, oids).items() if path.is_file()}


def shared_cache_reason(root: Path) -> str | None:
    """Why the DVC cache cannot be judged from this repository alone, or None."""
    from dvc.repo import Repo  # lazy: see the module docstring

    with Repo(str(root)) as repo:
        cache = Path(repo.cache.local_cache_dir).resolve()
        shared = repo.config.get("cache", {}).get("shared")
    if shared:
        return f"cache.shared = {shared}: the cache is shared with other users/projects"
    if not cache.is_relative_to(root.resolve()):
        return (
            f"cache.dir is {cache}, outside this repository: other projects may use "
            "objects this repository does not reference"
        )
    return None


@dataclass
class CacheScan:
    """What :func:`scan_revisions` found: the outs of every revision and the local cache."""

    cache_dir: Path
    stored: set[str]  # objects in the local cache
    object_path: Callable[[str], str]  # where the local cache keeps an object
    revisions: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    """``(revision, [(repo-relative path, object id)])``; revision ``"workspace"`` last."""
    trees: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Directory object id -> ``[(path inside, object id)]`` (empty if not in the cache)."""


def _tree_entries(out: Any) -> list[tuple[str, str]]:
    try:
        tree = out.get_obj()
    except Exception:  # noqa: BLE001 - a manifest missing from the cache
        tree = None
    return (
        []
        if tree is None
        else [
            ("/".join(key), hi.value)
            for key, (_meta, hi) in tree.iteritems()
            if hi is not None and hi.value
        ]
    )


def _remote_urls(root: str | Path) -> dict[str, Any]:
    """``{"remote": {name: {"url": url}}}`` of the workspace's remotes, merged into the config
    of every revision DVC reads: credentials in ``.dvc/config.local`` for a remote that an old
    revision's ``.dvc/config`` does not define yet would otherwise make that revision's config
    invalid ("expected 'url'") and stop the scan."""
    from dvc.config import Config  # lazy: see the module docstring

    try:
        remotes = Config(dvc_dir=str(Path(root) / ".dvc")).get("remote", {})
    except Exception:  # noqa: BLE001 - an invalid config is reported by the scan itself
        return {}
    return {
        "remote": {name: {"url": conf["url"]} for name, conf in remotes.items() if "url" in conf}
    }


def scan_revisions(root: Path, progress: Callable[[str], None] | None = None) -> CacheScan:
    """The cached outs DVC sees in every commit of every ref and in the workspace
    (``repo.brancher`` + ``repo.index.outs``), with directory outs' tree objects read, and the
    objects the local cache holds (``repo.cache.local.all()``). ``progress(rev)`` is called as
    each revision starts.

    Raises:
        VcsError: DVC cannot read a revision's pipeline files (an invalid dvc.lock).
    """
    from dvc.exceptions import DvcException  # lazy: see the module docstring
    from dvc.repo import Repo

    revisions = 0
    rev = "workspace"
    try:
        with Repo(str(root), config=_remote_urls(root)) as repo:
            odb = repo.cache.local
            scan = CacheScan(Path(repo.cache.local_cache_dir), set(), odb.oid_to_path)
            for rev in repo.brancher(all_commits=True):  # every commit of every ref + workspace
                revisions += 1
                if progress is not None:
                    progress(rev)
                outs: list[tuple[str, str]] = []
                for out in repo.index.outs:
                    info = out.hash_info
                    if not info or not info.value or not out.use_cache:
                        continue
                    fs_path = str(out.fs_path)
                    path = (
                        Path(fs_path).relative_to(root).as_posix()
                        if rev == "workspace"
                        else fs_path.lstrip("/")
                    )
                    outs.append((path, info.value))
                    if info.isdir and info.value not in scan.trees:
                        scan.trees[info.value] = _tree_entries(out)
                scan.revisions.append((rev, outs))
            scan.stored = set(odb.all())
    except DvcException as exc:
        rev_text = f" at revision {rev[:10]}" if revisions and rev != "workspace" else ""
        raise VcsError(
            f"DVC cannot read the pipeline files{rev_text}: {describe_error(exc)}; "
            "fix or restore them (`git checkout dvc.lock`) before gc"
        ) from exc
    return scan
