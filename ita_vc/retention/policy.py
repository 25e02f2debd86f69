"""The retention policy (``configs/retention.yaml``) and the pure planning step.

Planning takes *facts* (objects with the paths and times of the revisions that reference them,
runs with their pins and rule versions) and returns one decision per object. It never touches
the cache: :mod:`ita_vc.retention.facts` gathers the facts through DVC, and
:mod:`ita_vc.retention.apply` executes a plan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ita_vc.errors import ConfigError

__all__ = [
    "POLICY_RELPATH",
    "STRATEGIES",
    "Decision",
    "ObjectFacts",
    "Plan",
    "RetentionClass",
    "RetentionPolicy",
    "RunFacts",
    "glob_to_regex",
    "load_policy",
    "make_plan",
    "parse_policy",
]

POLICY_RELPATH = "configs/retention.yaml"
STRATEGIES = ("delete", "archive", "keep_forever")
_SETTINGS = {"keep_last_runs", "max_runs", "safety_window_days", "confirm_above_gb",
             "exceptions", "archive_remote"}
DAY_S = 86_400


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """``**`` any folders, ``*`` within one folder, ``?`` one character, ``[...]`` a set.

    Raises:
        ValueError: an unbalanced ``[`` or an empty pattern.
    """
    if not pattern or pattern.startswith("/"):
        raise ValueError(f"bad glob {pattern!r}: use a repo-relative pattern like 'data/png/**'")
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"bad glob {pattern!r}: unbalanced '['")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class RetentionClass:
    """One class of objects: which paths, how long, and what happens after."""

    name: str
    paths: tuple[str, ...]
    retain_days: int | None
    strategy: str
    patterns: tuple[re.Pattern[str], ...] = field(repr=False, default=())

    def matches(self, path: str) -> bool:
        """True if one of the globs matches ``path``."""
        return any(p.match(path) for p in self.patterns)


@dataclass(frozen=True)
class RetentionPolicy:
    """A validated policy."""

    classes: tuple[RetentionClass, ...]
    keep_last_runs: int = 5
    max_runs: int | None = 100
    safety_window_days: int = 7
    confirm_above_gb: float = 10.0
    exception_tags: tuple[str, ...] = ("important",)
    active_rules: bool = True
    archive_remote: str = "archive"

    def classify(self, path: str) -> RetentionClass | None:
        """The first class whose globs match ``path`` (None: no class, the object is kept)."""
        return next((c for c in self.classes if c.matches(path)), None)


def _int(value: Any, where: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "a whole number >= 0" + (" or null" if nullable else "")
        raise ConfigError(f"{where}: must be {kind}, got {value!r}")
    return value


def parse_policy(  # noqa: PLR0912 - one check per setting
    raw: Any, source: str = POLICY_RELPATH
) -> RetentionPolicy:
    """Validate a policy mapping.

    Raises:
        ConfigError: unknown types/keys, negative days, bad globs, unknown strategies.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: must be a mapping of classes and settings")
    classes = []
    for name, body in raw.items():
        if not isinstance(name, str):
            raise ConfigError(f"{source}: {name!r}: class and setting names are strings")
        if name in _SETTINGS:
            continue
        where = f"{source}: {name}"
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: unknown setting, or a class that is not a mapping "
                              f"(settings: {', '.join(sorted(_SETTINGS))})")
        unknown = sorted(map(str, set(body) - {"paths", "retain_days", "strategy"}))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              "(a class has paths, retain_days, strategy)")
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ConfigError(f"{where}.paths: must be a non-empty list of globs")
        try:
            patterns = tuple(glob_to_regex(p) for p in paths)
        except (ValueError, re.error) as exc:
            raise ConfigError(f"{where}.paths: {exc}") from exc
        strategy = body.get("strategy")
        if strategy not in STRATEGIES:
            raise ConfigError(f"{where}.strategy: unknown strategy {strategy!r} "
                              f"(one of {', '.join(STRATEGIES)})")
        days = _int(body.get("retain_days"), f"{where}.retain_days", nullable=True)
        if days is None and strategy != "keep_forever":
            raise ConfigError(f"{where}.retain_days: null means forever; use strategy "
                              "keep_forever, or give a number of days")
        classes.append(RetentionClass(str(name), tuple(paths), days, str(strategy), patterns))
    exceptions = raw.get("exceptions") or {}
    if not isinstance(exceptions, Mapping) or set(exceptions) - {"tags", "active_rules"}:
        raise ConfigError(f"{source}: exceptions: a mapping with tags (list) and active_rules")
    tags = exceptions.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(f"{source}: exceptions.tags: must be a list of tag names")
    active = exceptions.get("active_rules", True)
    if not isinstance(active, bool):
        raise ConfigError(f"{source}: exceptions.active_rules: must be true or false")
    confirm = raw.get("confirm_above_gb", 10)
    if isinstance(confirm, bool) or not isinstance(confirm, int | float) \
            or not math.isfinite(confirm) or confirm < 0:
        raise ConfigError(f"{source}: confirm_above_gb: must be a finite number >= 0, got "
                          f"{confirm!r}")
    remote = raw.get("archive_remote", "archive")
    if not isinstance(remote, str) or not remote:
        raise ConfigError(f"{source}: archive_remote: must be a DVC remote name")
    return RetentionPolicy(
        classes=tuple(classes),
        keep_last_runs=_int(raw.get("keep_last_runs", 5), f"{source}: keep_last_runs") or 0,
        max_runs=_int(raw.get("max_runs", 100), f"{source}: max_runs", nullable=True),
        safety_window_days=_int(raw.get("safety_window_days", 7),
                                f"{source}: safety_window_days") or 0,
        confirm_above_gb=float(confirm), exception_tags=tuple(tags), active_rules=active,
        archive_remote=remote,
    )


def load_policy(root: str | Path) -> RetentionPolicy:
    """``configs/retention.yaml`` of a workspace, else the embedded default.

    Raises:
        ConfigError: invalid file.
    """
    from importlib import resources

    from ita_vc.yaml_read import YamlError, load_yaml_text, read_text_file

    path = Path(root) / POLICY_RELPATH
    try:
        if path.exists() or path.is_symlink():  # no anchors; 1 MiB, depth 50, 10,000 nodes
            text = read_text_file(path)
            return parse_policy(load_yaml_text(text, POLICY_RELPATH), POLICY_RELPATH)
        text = resources.files("ita_vc.templates").joinpath("retention.yaml").read_text("utf-8")
        return parse_policy(load_yaml_text(text, "<embedded retention.yaml>"))
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc


@dataclass(frozen=True)
class RunFacts:
    """A recorded run: when, which rule version, whether something pins it."""

    run_id: str
    time: int  # epoch seconds
    setup_id: str | None
    rule_version: str | None
    pinned: str | None = None  # the reason, when pinned (ita/keep tag or an exception tag)


@dataclass
class ObjectFacts:
    """A DVC cache object and everything that references it."""

    oid: str
    size: int
    path: str  # its path in the newest revision that references it
    last_ref: int  # epoch seconds of that revision (0: no revision)
    runs: set[str] = field(default_factory=set)
    in_workspace: bool = False
    protected_by: str | None = None  # e.g. "tag important" from a protected revision
    in_trash: bool = False  # soft-deleted by an earlier gc (not in the cache now)


@dataclass(frozen=True)
class Decision:
    """What the plan does with one object, and why."""

    oid: str
    size: int
    path: str
    cls: str | None
    action: str  # keep | delete | archive
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {"oid": self.oid, "size": self.size, "path": self.path, "class": self.cls,
                "action": self.action, "reason": self.reason}


@dataclass
class Plan:
    """All decisions, and totals by class."""

    decisions: list[Decision]
    now: int

    def by_action(self, action: str) -> list[Decision]:
        """Decisions with this action."""
        return [d for d in self.decisions if d.action == action]

    def summary(self) -> list[dict[str, Any]]:
        """Objects and bytes to keep / delete / archive per class, with the keep reasons."""
        rows: dict[str, dict[str, Any]] = {}
        for d in self.decisions:
            row = rows.setdefault(d.cls or "(no class)", {
                "class": d.cls or "(no class)", "keep": 0, "keep_bytes": 0, "delete": 0,
                "delete_bytes": 0, "archive": 0, "archive_bytes": 0, "keep_reasons": {}})
            row[d.action] += 1
            row[f"{d.action}_bytes"] += d.size
            if d.action == "keep":
                head = d.reason.split(" (")[0].split(": ")[0]
                row["keep_reasons"][head] = row["keep_reasons"].get(head, 0) + 1
        return list(rows.values())

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        removed = [d for d in self.decisions if d.action != "keep"]
        return {"now": self.now, "summary": self.summary(),
                "objects_to_remove": len(removed),
                "bytes_to_remove": sum(d.size for d in removed),
                "decisions": [d.to_dict() for d in self.decisions]}


def make_plan(
    objects: list[ObjectFacts], runs: list[RunFacts], policy: RetentionPolicy, now: int,
    active_versions: set[tuple[str, str]],
) -> Plan:
    """Decide every object (pure: same facts, same plan)."""
    ordered = sorted(runs, key=lambda r: (r.time, r.run_id), reverse=True)
    newest = {r.run_id for r in ordered[: policy.keep_last_runs]}
    capped = {r.run_id for r in ordered[policy.max_runs:]} if policy.max_runs is not None \
        else set()
    by_id = {r.run_id: r for r in runs}
    decisions = []
    for obj in sorted(objects, key=lambda o: (o.path, o.oid)):
        if not obj.path and not obj.runs:
            decisions.append(Decision(obj.oid, obj.size, obj.path, None, "keep",
                                      "referenced by no commit (left to `dvc gc`)"))
            continue
        cls = policy.classify(obj.path)

        def decide(action: str, reason: str, obj: ObjectFacts = obj,
                   cls: RetentionClass | None = cls) -> None:
            decisions.append(Decision(obj.oid, obj.size, obj.path, cls.name if cls else None,
                                      action, reason))

        if cls is None:
            decide("keep", "no class matches")
            continue
        if cls.strategy == "keep_forever":
            decide("keep", f"keep_forever: class {cls.name}")
            continue
        if obj.in_workspace:
            decide("keep", "used by the workspace")
            continue
        if obj.protected_by:
            decide("keep", f"exception: {obj.protected_by}")
            continue
        run_facts = [by_id[r] for r in sorted(obj.runs) if r in by_id]
        pinned = next((r for r in run_facts if r.pinned), None)
        if pinned is not None:
            decide("keep", f"pinned run: {pinned.run_id} ({pinned.pinned})")
            continue
        active = next((r for r in run_facts if policy.active_rules
                       and (r.setup_id, r.rule_version) in active_versions), None)
        if active is not None:
            decide("keep", f"active rule: {active.setup_id} {active.rule_version} "
                           f"(run {active.run_id})")
            continue
        recent = next((r for r in run_facts if r.run_id in newest), None)
        if recent is not None:
            decide("keep", f"newest {policy.keep_last_runs} runs: {recent.run_id}")
            continue
        age_days = (now - obj.last_ref) / DAY_S if obj.last_ref else float("inf")
        expired = cls.retain_days is not None and age_days > cls.retain_days
        beyond_cap = bool(run_facts) and all(r.run_id in capped for r in run_facts)
        if expired:
            decide(cls.strategy, f"older than {cls.retain_days} days "
                                 f"(last referenced {age_days:.0f} days ago)")
        elif beyond_cap:
            decide(cls.strategy, f"max_runs: only runs beyond the newest {policy.max_runs}")
        else:
            decide("keep", f"within {cls.retain_days} days "
                           f"(last referenced {age_days:.0f} days ago)")
    return Plan(decisions, now)
