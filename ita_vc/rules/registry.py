"""The Rule & Version Registry: ``rules/<setup_id>/v<X.Y>.yaml`` plus ``lifecycle.yaml``.

A committed version file never changes; changes are new versions (:meth:`RuleRegistry.bump`).
Whether a version is active or deprecated lives in the setup's lifecycle file, which is
git-tracked but not a DVC dependency. Every write is atomic; a new version file is created with
``overwrite=False`` so an existing version can never be replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ita_vc.catalog import Catalog, load_catalog
from ita_vc.errors import RuleValidationError, VcsError
from ita_vc.rules.model import LifecycleEntry, Problem, Rule, RuleVersion
from ita_vc.rules.validate import (
    LIFECYCLE_FILENAME,
    RULE_FIELDS,
    SCHEMA_VERSION,
    check_setup_id,
    compute_params_hash,
    param_fields,
    parse_lifecycle,
    parse_rule,
)
from ita_vc.utils.atomic import AtomicWriteError, atomic_write_bytes
from ita_vc.utils.mappings import flatten
from ita_vc.vcs import gitcli
from ita_vc.yaml_read import YamlError, load_yaml_file, load_yaml_text, read_file_bytes
from ita_vc.yaml_rewrite import YamlEditError, dump_rt, load_rt, parse_set_value, set_path, to_rt

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterable, Iterator, Sequence

    from ita_vc.workspace import Workspace

__all__ = [
    "FieldChange",
    "RehashResult",
    "RuleInfo",
    "RuleRegistry",
    "default_author",
    "parse_version_ref",
]

_DEFAULT_PARAMS: dict[str, Any] = {
    "components": [],
    "indicators": [{"name": "ma_cross", "params": {"fast": 10, "slow": 20}}],
    "rules": {},
    "targets": {"tp_pct": None, "sl_pct": None},
    "direction": "long-short",
    "sizing": {"mode": "all_in"},
}
_SEED_RENAMES = {"tp": "tp_pct", "sl": "sl_pct"}


def default_author(root: str | Path | None = None) -> str:
    """The git user name (``git config user.name``), else ``$USER``, else ``unknown``."""
    with contextlib.suppress(VcsError):  # no git: fall back to the login name
        name = gitcli.config_value(root, "user.name", timeout=10)
        if name:
            return name
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_version_ref(text: str) -> tuple[str, RuleVersion | None]:
    """Split ``SETUP_ID[@vX.Y]``.

    Raises:
        RuleValidationError: a malformed version.
    """
    setup_id, _, version = text.partition("@")
    if not version:
        return setup_id, None
    try:
        return setup_id, RuleVersion.parse(version)
    except ValueError as exc:
        raise RuleValidationError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One row of ``rule list``: a version with its lifecycle status."""

    setup_id: str
    version: RuleVersion
    status: str
    params_hash: str
    created: str
    author: str
    deprecation_reason: str | None

    @property
    def active(self) -> bool:
        """The seed's ``active_flag``."""
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a semantic diff between two versions."""

    field: str
    change: str  # added | removed | changed
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class RehashResult:
    """What :meth:`RuleRegistry.rehash` did."""

    rule: Rule
    old_hash: str | None  # None: the file had no params_hash

    @property
    def changed(self) -> bool:
        """True when the file was rewritten."""
        return self.old_hash != self.rule.params_hash


def _not_regular(rel: str, info: os.stat_result) -> RuleValidationError | None:
    """The refusal for a rule path that is not a regular file (a symlink above all)."""
    if stat.S_ISREG(info.st_mode):
        return None
    what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
    return RuleValidationError(
        f"{rel} is {what}; rule versions and lifecycle files must be regular files in git "
        "(a link's target can change, a committed version cannot): replace it with a copy of "
        "the file itself"
    )


def _raise(problems: Sequence[Problem], headline: str | None = None) -> NoReturn:
    lines = [headline] if headline else []
    lines += [str(p) for p in problems]
    raise RuleValidationError("\n".join(lines))


class RuleRegistry:
    """Read and change the rules of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.rules_root = workspace.config.paths.rules_root
        self._catalog: Catalog | None = None
        self._holding = False

    @contextlib.contextmanager
    def locked(self, *, wait: float = 0, purpose: str | None = None) -> Iterator[None]:
        """Hold the workspace lock for several registry writes (the write methods then do not
        take it again: ``flock`` is not re-entrant across two opens in one process). Do not
        call the write methods while holding ``workspace.lock()`` yourself: use this instead.

        Raises:
            WorkspaceLockedError: another process holds it after ``wait`` seconds (exit 10).
            UsageError: ``wait`` is negative or not a number.
        """
        if self._holding:
            yield
            return
        with self.workspace.lock(timeout=wait, purpose=purpose or "rule registry write"):
            self._holding = True
            try:
                yield
            finally:
                self._holding = False

    @property
    def catalog(self) -> Catalog:
        """The workspace's indicator catalog."""
        if self._catalog is None:
            self._catalog = load_catalog(self.workspace.root)
        return self._catalog

    # -- paths -----------------------------------------------------------------------------
    def _check_id(self, setup_id: str) -> None:
        reason = check_setup_id(setup_id)
        if reason:
            raise RuleValidationError(f"setup_id: {reason}")

    def relpath(self, setup_id: str, version: RuleVersion | None = None) -> str:
        """``rules/<setup_id>/v<X.Y>.yaml`` (or the setup folder)."""
        parts = [self.rules_root, setup_id] + ([version.filename] if version else [])
        return PurePosixPath(*parts).as_posix()

    def lifecycle_relpath(self, setup_id: str) -> str:
        """``rules/<setup_id>/lifecycle.yaml``."""
        return PurePosixPath(self.rules_root, setup_id, LIFECYCLE_FILENAME).as_posix()

    # -- reading ---------------------------------------------------------------------------
    def setups(self) -> list[str]:
        """Every setup folder that holds at least one version file, sorted."""
        root = self.workspace.path(self.rules_root)
        if not root.is_dir():
            return []
        return sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and check_setup_id(p.name) is None and self.versions(p.name)
        )

    def _lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.workspace.path(rel))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RuleValidationError(f"{rel}: cannot read: {exc.strerror or exc}") from exc

    def versions(self, setup_id: str) -> list[RuleVersion]:
        """The versions of a setup (from the file names), in numeric order.

        Raises:
            RuleValidationError: the setup folder or a version file is a symlink (or otherwise
                not a regular folder/file).
        """
        self._check_id(setup_id)
        rel = self.relpath(setup_id)
        info = self._lstat(rel)
        if info is None:
            return []
        if stat.S_ISLNK(info.st_mode):
            raise RuleValidationError(
                f"{rel} is a symbolic link; a setup folder must be a real "
                "folder in git (rule versions are regular files in it)"
            )
        if not stat.S_ISDIR(info.st_mode):
            return []
        found = []
        for path in self.workspace.path(rel).glob("v*.yaml"):
            try:
                version = RuleVersion.parse(path.stem)
            except ValueError:
                continue
            error = _not_regular(self.relpath(setup_id, version), os.lstat(path))
            if error is not None:
                raise error
            found.append(version)
        return sorted(found)

    def _read(self, rel: str) -> bytes | None:
        """The bytes of a rule or lifecycle file (None if absent), refusing a symlink, another
        non-regular file or more than the YAML size limit."""
        info = self._lstat(rel)
        if info is None:
            return None
        error = _not_regular(rel, info)
        if error is not None:
            raise error
        try:
            return read_file_bytes(self.workspace.path(rel), follow_symlinks=False)
        except YamlError as exc:
            raise RuleValidationError(
                str(exc).replace(str(self.workspace.path(rel)), rel, 1)
            ) from exc

    def committed(self, setup_id: str, version: RuleVersion) -> bool:
        """True when the version file is in HEAD (committed, so immutable)."""
        spec = f"HEAD:{self.relpath(setup_id, version)}"
        try:
            return gitcli.cat_files(self.workspace.root, [spec])[spec] is not None
        except VcsError:
            return False

    def latest(self, setup_id: str) -> RuleVersion:
        """The highest version of a setup.

        Raises:
            RuleValidationError: the setup has no versions.
        """
        versions = self.versions(setup_id)
        if not versions:
            raise RuleValidationError(
                f"no rule {setup_id!r} in {self.rules_root}/ "
                f"(create it with `ita-vc rule new {setup_id}`)"
            )
        return versions[-1]

    def _resolve(self, setup_id: str, version: RuleVersion | str | None) -> RuleVersion:
        if version is None:
            return self.latest(setup_id)
        if isinstance(version, str):
            try:
                version = RuleVersion.parse(version)
            except ValueError as exc:
                raise RuleValidationError(str(exc)) from exc
        versions = self.versions(setup_id)
        if not versions:
            raise RuleValidationError(
                f"no rule {setup_id!r} in {self.rules_root}/: create it with "
                f"`ita-vc rule new {setup_id}` (and commit it), or name another rule in "
                "params.yaml (rule.setup_id)"
            )
        if version not in versions:
            have = ", ".join(v.tag for v in versions)
            raise RuleValidationError(
                f"{setup_id} has no version {version.tag} (versions: {have}; "
                f"a new one comes from `ita-vc rule bump {setup_id}`)"
            )
        return version

    def get(self, setup_id: str, version: RuleVersion | str | None = None) -> Rule:
        """A validated rule version (the latest when ``version`` is None).

        Raises:
            RuleValidationError: no such version, or the file is invalid (every problem listed).
        """
        self._check_id(setup_id)
        resolved = self._resolve(setup_id, version)
        rel = self.relpath(setup_id, resolved)
        raw = self._read(rel)
        if raw is None:
            raise RuleValidationError(f"{rel}: no such file")
        rule, problems = parse_rule(raw, rel, catalog=self.catalog, rules_root=self.rules_root)
        if rule is None:
            if any(p.field == "params_hash" for p in problems):  # say which advice applies
                _rule, problems = parse_rule(
                    raw,
                    rel,
                    catalog=self.catalog,
                    rules_root=self.rules_root,
                    committed=self.committed(setup_id, resolved),
                )
            _raise(problems)
        assert rule is not None  # noqa: S101 - for mypy: _raise never returns
        return rule

    def verify(
        self, setup_id: str, version: RuleVersion | str, params_hash: str | None = None
    ) -> Rule:
        """Check a version's file (schema, location, ``params_hash``) and, when given, that its
        hash equals ``params_hash`` (e.g. the one a run snapshot recorded).

        Raises:
            RuleValidationError: any problem.
        """
        rule = self.get(setup_id, version)
        if params_hash is not None and params_hash != rule.params_hash:
            raise RuleValidationError(
                f"{rule.path}: params_hash is {rule.params_hash}, expected {params_hash}"
            )
        return rule

    def lifecycle(self, setup_id: str) -> dict[RuleVersion, LifecycleEntry]:
        """The lifecycle entries of a setup (empty when there is no lifecycle file).

        Raises:
            RuleValidationError: the lifecycle file is invalid.
        """
        self._check_id(setup_id)
        rel = self.lifecycle_relpath(setup_id)
        existing = set(self.versions(setup_id))
        raw = self._read(rel)
        if raw is None:
            return {}
        entries, problems = parse_lifecycle(
            raw, rel, setup_id=setup_id, version_exists=existing.__contains__
        )
        if problems:
            _raise(problems)
        return entries

    def status(self, setup_id: str, version: RuleVersion | str) -> LifecycleEntry:
        """The lifecycle entry of a version (inactive when not listed)."""
        resolved = self._resolve(setup_id, version)
        return self.lifecycle(setup_id).get(resolved, LifecycleEntry())

    def get_active_version(self, setup_id: str) -> RuleVersion | None:
        """The active version of a setup, or None (also when there is no lifecycle file)."""
        active = [v for v, e in self.lifecycle(setup_id).items() if e.active]
        return active[0] if active else None

    def list(self, *, active_only: bool = False, setup_id: str | None = None) -> list[RuleInfo]:
        """Every version (of one setup, or of all), with status, hash and creation date.

        Raises:
            RuleValidationError: a listed file is invalid.
        """
        rows = []
        for sid in [setup_id] if setup_id else self.setups():
            lifecycle = self.lifecycle(sid)
            for version in self.versions(sid):
                entry = lifecycle.get(version, LifecycleEntry())
                if active_only and not entry.active:
                    continue
                rule = self.get(sid, version)
                rows.append(
                    RuleInfo(
                        sid,
                        version,
                        entry.status,
                        rule.params_hash,
                        rule.created,
                        rule.author,
                        entry.deprecation_reason,
                    )
                )
        return rows

    def diff(
        self,
        setup_id: str,
        a: RuleVersion | str,
        b: RuleVersion | str,
    ) -> builtins.list[FieldChange]:
        """Field-by-field semantic difference between two versions (parameters and metadata).

        Raises:
            RuleValidationError: either version is missing or invalid.
        """
        old, new = self.get(setup_id, a).to_dict(), self.get(setup_id, b).to_dict()
        for doc in (old, new):  # identity and the derived hash are not fields to compare
            doc.pop("version", None)
            doc.pop("params_hash", None)
        flat_old, flat_new = flatten(old), flatten(new)
        changes = []
        for field in sorted(set(flat_old) | set(flat_new)):
            if field not in flat_new:
                changes.append(FieldChange(field, "removed", flat_old[field], None))
            elif field not in flat_old:
                changes.append(FieldChange(field, "added", None, flat_new[field]))
            elif flat_old[field] != flat_new[field] or type(flat_old[field]) is not type(
                flat_new[field]
            ):
                changes.append(FieldChange(field, "changed", flat_old[field], flat_new[field]))
        return changes

    # -- writing ---------------------------------------------------------------------------
    def _checked_version(self, setup_id: str, version: RuleVersion, text: str) -> Rule:
        """``text`` as the rule version it would be, or every problem of it (raised)."""
        rel = self.relpath(setup_id, version)
        rule, problems = parse_rule(
            text.encode("utf-8"), rel, catalog=self.catalog, rules_root=self.rules_root
        )
        if rule is None:
            _raise(problems, f"refusing to write an invalid {rel}:")
        return rule

    def _write_version(self, setup_id: str, version: RuleVersion, text: str) -> Rule:
        rel = self.relpath(setup_id, version)
        rule = self._checked_version(setup_id, version, text)
        try:
            atomic_write_bytes(self.workspace.contained(rel), text.encode("utf-8"), overwrite=False)
        except AtomicWriteError as exc:
            raise RuleValidationError(
                f"{rel} already exists; committed versions are immutable "
                f"(create a new one with `ita-vc rule bump {setup_id}`)"
            ) from exc
        assert rule is not None  # noqa: S101
        return rule

    def _read_source(self, path: str | Path) -> dict[str, Any]:
        try:
            doc = load_yaml_file(path, max_bytes=1 << 20)
        except YamlError as exc:
            raise RuleValidationError(str(exc)) from exc
        if not isinstance(doc, dict):
            raise RuleValidationError(f"{path}: must be a YAML mapping")
        targets = doc.get("targets")
        if isinstance(targets, dict):
            doc["targets"] = {_SEED_RENAMES.get(k, k): v for k, v in targets.items()}
        return doc

    def new(
        self,
        setup_id: str,
        *,
        from_file: str | Path | None = None,
        author: str | None = None,
        wait: float = 0,
    ) -> Rule:
        """Create ``rules/<setup_id>/v1.0.yaml`` (from a template or a seed-style file).

        A ``from_file`` in the seed format is accepted: its ``tp``/``sl`` targets become
        ``tp_pct``/``sl_pct``, missing direction/sizing/targets get defaults, and the identity
        fields are set for the new setup. Holds the workspace lock (waiting up to ``wait``
        seconds for it).

        Raises:
            RuleValidationError: invalid id, the setup already exists, or invalid content.
            WorkspaceLockedError: another command holds the workspace lock.
        """
        with self.locked(wait=wait, purpose=f"rule new {setup_id}"):
            return self._new(setup_id, from_file=from_file, author=author)

    def _new(self, setup_id: str, *, from_file: str | Path | None, author: str | None) -> Rule:
        self._check_id(setup_id)
        if self.versions(setup_id):
            raise RuleValidationError(
                f"{setup_id} already exists ({self.latest(setup_id).tag}); "
                f"use `ita-vc rule bump {setup_id}` for a new version"
            )
        params = dict(_DEFAULT_PARAMS)
        if from_file is not None:
            source = param_fields(self._read_source(from_file))
            merged = {
                **{
                    k: v
                    for k, v in _DEFAULT_PARAMS.items()
                    if k in ("targets", "direction", "sizing")
                },
                **source,
            }
            order = [k for k in RULE_FIELDS if k in merged] + [
                k for k in merged if k not in RULE_FIELDS
            ]
            params = {k: merged[k] for k in order}
        version = RuleVersion(1, 0)
        doc = {
            "schema_version": SCHEMA_VERSION,
            "setup_id": setup_id,
            "version": str(version),
            "author": author or default_author(self.workspace.root),
            "created": dt.datetime.now(dt.UTC).date().isoformat(),
            **params,
        }
        try:
            doc["params_hash"] = compute_params_hash(doc)
        except (TypeError, ValueError) as exc:
            raise RuleValidationError(f"{from_file}: {exc}") from exc
        rt = to_rt(doc)
        _quote(rt)
        rt.yaml_set_start_comment(
            f"Rule {setup_id} {version.tag}. Immutable once committed: change it with "
            f"`ita-vc rule bump {setup_id}`."
        )
        return self._write_version(setup_id, version, dump_rt(rt))

    def bump(
        self,
        setup_id: str,
        *,
        major: bool = False,
        sets: Iterable[str] = (),
        from_file: str | Path | None = None,
        reason: str | None = None,
        author: str | None = None,
        wait: float = 0,
    ) -> Rule:
        """Write the next version from the latest one, keeping comments and key order.

        ``sets`` are ``key.path=value`` overrides (values parsed as YAML, like
        ``dvc exp run -S``); ``from_file`` replaces the parameter fields with another file's.
        The reason, if any, is recorded in the lifecycle file for the new version. Holds the
        workspace lock (waiting up to ``wait`` seconds for it).

        Raises:
            RuleValidationError: nothing changed, a bad override, or an invalid result.
            WorkspaceLockedError: another command holds the workspace lock.
        """
        with self.locked(wait=wait, purpose=f"rule bump {setup_id}"):
            return self._bump(
                setup_id, major=major, sets=sets, from_file=from_file, reason=reason, author=author
            )

    def _bump(
        self,
        setup_id: str,
        *,
        major: bool,
        sets: Iterable[str],
        from_file: str | Path | None,
        reason: str | None,
        author: str | None,
    ) -> Rule:
        latest = self.latest(setup_id)
        base = self.get(setup_id, latest)
        rel = self.relpath(setup_id, latest)
        try:
            doc = load_rt(self._text(rel), rel)
        except YamlEditError as exc:
            raise RuleValidationError(str(exc)) from exc
        try:
            if from_file is not None:
                source = param_fields(self._read_source(from_file))
                for key in [k for k in doc if k not in source and k in param_fields(doc)]:
                    del doc[key]
                for key, value in source.items():
                    set_path(doc, key, value)
                doc.move_to_end("params_hash")
            for item in sets:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise RuleValidationError(f"--set needs key.path=value, got {item!r}")
                if key.split(".")[0] in ("setup_id", "version", "params_hash", "schema_version"):
                    raise RuleValidationError(f"--set cannot change {key.split('.')[0]}")
                set_path(doc, key.strip(), parse_set_value(value))
        except YamlEditError as exc:
            raise RuleValidationError(f"--set: {exc}") from exc
        version = latest.bump(major=major)
        doc["version"] = str(version)
        doc["author"] = author or default_author(self.workspace.root)
        doc["created"] = dt.datetime.now(dt.UTC).date().isoformat()
        _quote(doc)
        plain = load_yaml_text(dump_rt(doc), rel)
        try:
            new_hash = compute_params_hash(plain)
        except (TypeError, ValueError) as exc:  # NaN, a date...: name every bad field
            self._checked_version(setup_id, version, dump_rt(doc))
            raise RuleValidationError(f"the new parameters have no canonical form: {exc}") from exc
        if new_hash == base.params_hash:
            raise RuleValidationError(
                f"nothing to bump: the parameters of {setup_id} {version.tag} would equal "
                f"{latest.tag} ({base.params_hash}); change something with --set or --from"
            )
        doc["params_hash"] = new_hash
        _replace_header(
            doc,
            setup_id,
            f"Rule {setup_id} {version.tag} (bumped from {latest.tag}). Immutable "
            f"once committed: change it with `ita-vc rule bump {setup_id}`.",
        )
        rule = self._write_version(setup_id, version, dump_rt(doc))
        if reason:
            self._edit_lifecycle(setup_id, version, author=author, note=reason)
        return rule

    def _edit_lifecycle(
        self,
        setup_id: str,
        version: RuleVersion,
        *,
        author: str | None,
        active: bool | None = None,
        reason: str | None = None,
        note: str | None = None,
    ) -> None:
        self.lifecycle(setup_id)  # validates the current file first
        rel = self.lifecycle_relpath(setup_id)
        path = self.workspace.path(rel)
        raw = self._read(rel)
        if raw is not None:
            try:
                doc = load_rt(raw.decode("utf-8"), rel)
            except YamlEditError as exc:
                raise RuleValidationError(str(exc)) from exc
        else:
            doc = to_rt({"schema_version": 1, "setup_id": setup_id, "versions": {}})
            doc.yaml_set_start_comment(
                f"Lifecycle of {setup_id}: which version is active or deprecated. Edit it with "
                "`ita-vc rule activate` / `ita-vc rule deprecate`."
            )
        if doc.get("versions") is None:
            doc["versions"] = to_rt({})
        by = author or default_author(self.workspace.root)
        now = _now_iso()
        versions = doc["versions"]
        if active:
            for tag, body in versions.items():
                if tag != version.tag and body.get("active"):
                    body["active"] = False
                    body["changed_at"], body["changed_by"] = now, by
        body = versions.get(version.tag)
        if body is None:
            body = to_rt(
                {"active": False, "deprecation_reason": None, "changed_at": now, "changed_by": by}
            )
            versions[version.tag] = body
            _sort_versions(versions)
            body = versions[version.tag]
        if active is not None:
            body["active"] = active
        if reason is not None:
            body["deprecation_reason"] = reason
        if note is not None:
            body["note"] = note
        body["changed_at"], body["changed_by"] = now, by
        text = dump_rt(doc)
        _entries, problems = parse_lifecycle(
            text.encode("utf-8"),
            rel,
            setup_id=setup_id,
            version_exists=set(self.versions(setup_id)).__contains__,
        )
        if problems:
            _raise(problems, f"refusing to write an invalid {rel}:")
        atomic_write_bytes(self.workspace.contained(path), text.encode("utf-8"))

    def activate(
        self,
        setup_id: str,
        version: RuleVersion | str,
        *,
        author: str | None = None,
        wait: float = 0,
    ) -> RuleVersion:
        """Make ``version`` the one active version of its setup (deactivating the others).
        Holds the workspace lock (waiting up to ``wait`` seconds for it).

        Raises:
            RuleValidationError: no such version, it is deprecated, or it is invalid.
            WorkspaceLockedError: another command holds the workspace lock.
        """
        with self.locked(wait=wait, purpose=f"rule activate {setup_id} {version}"):
            return self._activate(setup_id, version, author=author)

    def _activate(
        self, setup_id: str, version: RuleVersion | str, *, author: str | None
    ) -> RuleVersion:
        resolved = self._resolve(setup_id, version)
        self.get(setup_id, resolved)
        entry = self.lifecycle(setup_id).get(resolved, LifecycleEntry())
        if entry.deprecated:
            raise RuleValidationError(
                f"{setup_id} {resolved.tag} is deprecated ({entry.deprecation_reason}); "
                "it cannot be activated: bump a new version instead"
            )
        self._edit_lifecycle(setup_id, resolved, author=author, active=True)
        return resolved

    def deprecate(
        self,
        setup_id: str,
        version: RuleVersion | str,
        *,
        reason: str,
        author: str | None = None,
        wait: float = 0,
    ) -> RuleVersion:
        """Mark ``version`` deprecated (and inactive) with a reason. Holds the workspace lock
        (waiting up to ``wait`` seconds for it).

        Raises:
            RuleValidationError: no such version or an empty reason.
            WorkspaceLockedError: another command holds the workspace lock.
        """
        if not reason or not reason.strip():
            raise RuleValidationError("deprecating a version needs a --reason")
        with self.locked(wait=wait, purpose=f"rule deprecate {setup_id} {version}"):
            resolved = self._resolve(setup_id, version)
            self._edit_lifecycle(
                setup_id, resolved, author=author, active=False, reason=reason.strip()
            )
            return resolved

    def rehash(
        self, setup_id: str, version: RuleVersion | str | None = None, *, wait: float = 0
    ) -> RehashResult:
        """Recompute the ``params_hash`` of a version that was never committed (after editing
        it by hand), keeping comments and key order (ruamel round trip). Nothing else changes;
        a hash that is already right writes nothing. Holds the workspace lock (waiting up to
        ``wait`` seconds for it).

        Raises:
            RuleValidationError: the version is committed in HEAD (immutable: bump instead),
                or the file has problems other than its hash (all listed; nothing written).
            WorkspaceLockedError: another command holds the workspace lock.
        """
        self._check_id(setup_id)
        with self.locked(wait=wait, purpose=f"rule rehash {setup_id}"):
            return self._rehash(setup_id, self._resolve(setup_id, version))

    def _text(self, rel: str) -> str:
        raw = self._read(rel)
        if raw is None:
            raise RuleValidationError(f"{rel}: no such file")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleValidationError(f"{rel}: not valid UTF-8") from exc

    def _rehash(self, setup_id: str, version: RuleVersion) -> RehashResult:
        rel = self.relpath(setup_id, version)
        if self.committed(setup_id, version):
            raise RuleValidationError(
                f"{rel} is committed (it is in HEAD) and immutable; `rule rehash` is only for "
                f"versions never committed: undo the edit (`git checkout HEAD -- {rel}`) and "
                f"put the change in a new version with `ita-vc rule bump {setup_id}`"
            )
        text = self._text(rel)
        rule, problems = parse_rule(
            text.encode("utf-8"),
            rel,
            catalog=self.catalog,
            rules_root=self.rules_root,
            committed=False,
        )
        if rule is not None:
            return RehashResult(rule, rule.params_hash)
        others = [
            p
            for p in problems
            if p.field != "params_hash" and p.message != "missing required field 'params_hash'"
        ]
        if others:
            _raise(others, f"cannot rehash {rel}: fix these first (nothing was written):")
        try:
            doc = load_rt(text, rel)
            plain = load_yaml_text(text, rel)
        except (YamlEditError, YamlError) as exc:  # pragma: no cover - parse_rule read it
            raise RuleValidationError(str(exc)) from exc
        old_hash = plain.get("params_hash")
        doc["params_hash"] = compute_params_hash(plain)
        new_text = dump_rt(doc)
        rule, problems = parse_rule(
            new_text.encode("utf-8"),
            rel,
            catalog=self.catalog,
            rules_root=self.rules_root,
            committed=False,
        )
        if rule is None:
            _raise(problems, f"refusing to write an invalid {rel}:")
        assert rule is not None  # noqa: S101 - for mypy: _raise never returns
        atomic_write_bytes(self.workspace.contained(rel), new_text.encode("utf-8"))
        return RehashResult(rule, old_hash if isinstance(old_hash, str) else None)


def _quote(doc: Any) -> None:
    """Write version and created as double-quoted strings (YAML's float/date traps)."""
    for key in ("version", "created"):
        if key in doc:
            doc[key] = DoubleQuotedScalarString(str(doc[key]))


def _replace_header(doc: Any, setup_id: str, header: str) -> None:
    """Put ``header`` first, dropping only the header ita-vc wrote; keep the user's comments."""
    tokens = doc.ca.comment[1] if doc.ca.comment and doc.ca.comment[1] else []
    ours = f"# Rule {setup_id} v"
    kept = [t.value.rstrip("\n") for t in tokens if not t.value.lstrip().startswith(ours)]
    doc.yaml_set_start_comment("\n".join([header, *kept]))


def _sort_versions(versions: Any) -> None:
    order = sorted(versions, key=lambda tag: RuleVersion.parse(str(tag)))
    for tag in order:
        versions.move_to_end(tag)
