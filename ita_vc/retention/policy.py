"""The retention policy (``configs/retention.yaml``) and the pure planning step.

Planning takes *facts* (objects with the paths and times of the revisions that reference them,
runs with their pins and rule versions) and returns one decision per object. It never touches
the cache: :mod:`ita_vc.retention.facts` gathers the facts through DVC, and
:mod:`ita_vc.retention.apply` executes a plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import voluptuous as vol

from ita_vc.errors import ConfigError
from ita_vc.schema import (
    Invalid,
    Problems,
    boolean,
    finite_number,
    integer,
    listing_allowed,
    nullable,
    sequence_of,
    strict,
    text,
    type_name,
)
from ita_vc.yaml_read import YamlError, load_yaml_document, read_text_file

__all__ = [
    "CLASS_SCHEMA",
    "POLICY_RELPATH",
    "SETTINGS_SCHEMA",
    "STRATEGIES",
    "STRATEGY_ALIASES",
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
STRATEGY_ALIASES = {"archive_to_s3": "archive", "prune_old": "delete"}
"""The seed's strategy names: ``archive_to_s3`` is ``archive`` to an S3 remote (refused at gc
time when ``archive_remote`` is not ``s3://``); ``prune_old`` (embeddings, vector data) is
``delete`` once older than ``retain_days``."""
_SETTINGS = {
    "keep_last_runs",
    "max_runs",
    "safety_window_days",
    "confirm_above_gb",
    "exceptions",
    "archive_remote",
}
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
    strategy: str  # delete | archive | keep_forever (an alias resolved)
    patterns: tuple[re.Pattern[str], ...] = field(repr=False, default=())
    written: str = ""  # the strategy as the file writes it (an alias stays visible)

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


def _glob(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a glob, got {value!r} ({type_name(value)})")
    try:
        glob_to_regex(value)
    except (ValueError, re.error) as exc:
        raise Invalid(str(exc)) from None
    return value


def _globs(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be a non-empty list of globs, got {value!r} ({type_name(value)})")
    globs: list[str] = sequence_of(_glob)(value)
    return globs


def _strategy(value: object) -> str:
    if not isinstance(value, str) or (value not in STRATEGIES and value not in STRATEGY_ALIASES):
        names = ", ".join([*STRATEGIES, *STRATEGY_ALIASES])
        raise Invalid(f"unknown strategy {value!r} (one of {names})")
    return value


CLASS_SCHEMA = strict(
    {
        vol.Required("paths"): _globs,
        vol.Optional("retain_days", default=None): nullable(integer(minimum=0)),
        vol.Required("strategy"): _strategy,
    }
)
"""One retention class (a top-level key that is not a setting)."""

SETTINGS_SCHEMA = strict(
    {
        vol.Optional("keep_last_runs", default=5): integer(minimum=0),
        vol.Optional("max_runs", default=100): nullable(integer(minimum=0)),
        vol.Optional("safety_window_days", default=7): integer(minimum=0),
        vol.Optional("confirm_above_gb", default=10): finite_number(minimum=0),
        vol.Optional("archive_remote", default="archive"): text(what="a DVC remote name"),
        vol.Optional("exceptions", default=None): nullable(
            listing_allowed(
                strict(
                    {
                        vol.Optional("tags", default=None): nullable(
                            sequence_of(text(what="a tag name"))
                        ),
                        vol.Optional("active_rules", default=True): boolean(),
                    }
                )
            )
        ),
    }
)
"""The settings of ``configs/retention.yaml`` (every other top-level key is a class)."""


def _check_names(raw: Mapping[object, object], problems: Problems) -> None:
    """Class and setting names are strings; a non-mapping that is no setting is a mistake."""
    for name, body in raw.items():
        if not isinstance(name, str):
            problems.add(
                str(name), f"class and setting names are strings, got {name!r} ({type_name(name)})"
            )
        elif name not in _SETTINGS and not isinstance(body, Mapping):
            problems.add(
                name,
                "unknown setting, or a class that is not a mapping, got "
                f"{body!r} ({type_name(body)}) (settings: {', '.join(sorted(_SETTINGS))})",
            )


def _parse_class(name: str, body: Mapping[str, Any], problems: Problems) -> RetentionClass | None:
    """A class, checked against :data:`CLASS_SCHEMA`; a null ``retain_days`` needs
    ``keep_forever``."""
    valid = problems.check(CLASS_SCHEMA, body, prefix=f"{name}.")
    if valid is None:
        return None
    if valid["retain_days"] is None and valid["strategy"] != "keep_forever":
        problems.add(
            f"{name}.retain_days",
            "null means forever; use strategy keep_forever, or give a number of days",
        )
        return None
    return RetentionClass(
        name,
        tuple(valid["paths"]),
        valid["retain_days"],
        STRATEGY_ALIASES.get(valid["strategy"], valid["strategy"]),
        tuple(glob_to_regex(p) for p in valid["paths"]),
        valid["strategy"],
    )


def parse_policy(
    raw: Any,
    source: str = POLICY_RELPATH,
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
) -> RetentionPolicy:
    """Validate a policy mapping (``index``: the file's node index, for line numbers).

    Raises:
        ConfigError: every problem found (unknown types/keys, negative days, bad globs,
            unknown strategies), each with its field and, given the index, its line.
    """
    problems = Problems(source, index or {})
    if not isinstance(raw, Mapping):
        problems.add("", f"must be a mapping of classes and settings, got {type_name(raw)}")
        problems.fail(ConfigError)
    _check_names(raw, problems)
    classes = [
        _parse_class(name, body, problems)
        for name, body in raw.items()
        if isinstance(name, str) and name not in _SETTINGS and isinstance(body, Mapping)
    ]
    settings = problems.check(SETTINGS_SCHEMA, {k: v for k, v in raw.items() if k in _SETTINGS})
    problems.raise_for(ConfigError)
    exceptions = settings["exceptions"] or {"tags": None, "active_rules": True}
    return RetentionPolicy(
        classes=tuple(c for c in classes if c is not None),
        keep_last_runs=settings["keep_last_runs"],
        max_runs=settings["max_runs"],
        safety_window_days=settings["safety_window_days"],
        confirm_above_gb=float(settings["confirm_above_gb"]),
        exception_tags=tuple(exceptions["tags"] or ()),
        active_rules=exceptions["active_rules"],
        archive_remote=settings["archive_remote"],
    )


def load_policy(root: str | Path) -> RetentionPolicy:
    """``configs/retention.yaml`` of a workspace, else the embedded default.

    Raises:
        ConfigError: invalid file.
    """
    path = Path(root) / POLICY_RELPATH
    try:
        if path.exists() or path.is_symlink():  # no anchors; 1 MiB, depth 50, 10,000 nodes
            document = load_yaml_document(read_text_file(path), POLICY_RELPATH)
            return parse_policy(document.data, POLICY_RELPATH, index=document.index)
        text = resources.files("ita_vc.templates").joinpath("retention.yaml").read_text("utf-8")
        document = load_yaml_document(text, "<embedded retention.yaml>")
        return parse_policy(document.data, "<embedded retention.yaml>", index=document.index)
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
        return {
            "oid": self.oid,
            "size": self.size,
            "path": self.path,
            "class": self.cls,
            "action": self.action,
            "reason": self.reason,
        }


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
            row = rows.setdefault(
                d.cls or "(no class)",
                {
                    "class": d.cls or "(no class)",
                    "keep": 0,
                    "keep_bytes": 0,
                    "delete": 0,
                    "delete_bytes": 0,
                    "archive": 0,
                    "archive_bytes": 0,
                    "keep_reasons": {},
                },
            )
            row[d.action] += 1
            row[f"{d.action}_bytes"] += d.size
            if d.action == "keep":
                head = d.reason.split(" (")[0].split(": ")[0]
                row["keep_reasons"][head] = row["keep_reasons"].get(head, 0) + 1
        return list(rows.values())

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        removed = [d for d in self.decisions if d.action != "keep"]
        return {
            "now": self.now,
            "summary": self.summary(),
            "objects_to_remove": len(removed),
            "bytes_to_remove": sum(d.size for d in removed),
            "decisions": [d.to_dict() for d in self.decisions],
        }


@dataclass(frozen=True)
class _Context:
    """What every decision of one plan needs besides the object."""

    policy: RetentionPolicy
    now: int
    active_versions: set[tuple[str, str]]
    by_id: Mapping[str, RunFacts]
    newest: set[str]  # the newest keep_last_runs runs
    capped: set[str]  # the runs beyond the newest max_runs


def _class_keep(obj: ObjectFacts, cls: RetentionClass) -> str | None:
    """Why an object is kept whatever its runs, or None."""
    if cls.strategy == "keep_forever":
        return f"keep_forever: class {cls.name}"
    if obj.in_workspace:
        return "used by the workspace"
    if obj.protected_by:
        return f"exception: {obj.protected_by}"
    return None


def _run_keep(run_facts: list[RunFacts], ctx: _Context) -> str | None:
    """Why an object is kept for a run that references it (pinned, active rule, newest)."""
    pinned = next((r for r in run_facts if r.pinned), None)
    if pinned is not None:
        return f"pinned run: {pinned.run_id} ({pinned.pinned})"
    active = next(
        (
            r
            for r in run_facts
            if ctx.policy.active_rules and (r.setup_id, r.rule_version) in ctx.active_versions
        ),
        None,
    )
    if active is not None:
        return f"active rule: {active.setup_id} {active.rule_version} (run {active.run_id})"
    recent = next((r for r in run_facts if r.run_id in ctx.newest), None)
    if recent is not None:
        return f"newest {ctx.policy.keep_last_runs} runs: {recent.run_id}"
    return None


def _age_decision(
    obj: ObjectFacts, cls: RetentionClass, run_facts: list[RunFacts], ctx: _Context
) -> tuple[str, str]:
    """The class's strategy once the object is older than ``retain_days`` or only referenced by
    runs beyond ``max_runs``; else keep."""
    age_days = (ctx.now - obj.last_ref) / DAY_S if obj.last_ref else float("inf")
    if cls.retain_days is not None and age_days > cls.retain_days:
        return cls.strategy, (
            f"older than {cls.retain_days} days (last referenced {age_days:.0f} days ago)"
        )
    if run_facts and all(r.run_id in ctx.capped for r in run_facts):
        return cls.strategy, f"max_runs: only runs beyond the newest {ctx.policy.max_runs}"
    return "keep", f"within {cls.retain_days} days (last referenced {age_days:.0f} days ago)"


def _decide(obj: ObjectFacts, ctx: _Context) -> Decision:
    """One object's decision: the first keep reason that applies, else its age decides."""
    if not obj.path and not obj.runs:
        return Decision(
            obj.oid, obj.size, obj.path, None, "keep", "referenced by no commit (left to `dvc gc`)"
        )
    cls = ctx.policy.classify(obj.path)
    if cls is None:
        return Decision(obj.oid, obj.size, obj.path, None, "keep", "no class matches")
    run_facts = [ctx.by_id[r] for r in sorted(obj.runs) if r in ctx.by_id]
    reason = _class_keep(obj, cls) or _run_keep(run_facts, ctx)
    action, reason = ("keep", reason) if reason else _age_decision(obj, cls, run_facts, ctx)
    return Decision(obj.oid, obj.size, obj.path, cls.name, action, reason)


def make_plan(
    objects: list[ObjectFacts],
    runs: list[RunFacts],
    policy: RetentionPolicy,
    now: int,
    active_versions: set[tuple[str, str]],
) -> Plan:
    """Decide every object (pure: same facts, same plan)."""
    ordered = sorted(runs, key=lambda r: (r.time, r.run_id), reverse=True)
    ctx = _Context(
        policy,
        now,
        active_versions,
        by_id={r.run_id: r for r in runs},
        newest={r.run_id for r in ordered[: policy.keep_last_runs]},
        capped={r.run_id for r in ordered[policy.max_runs :]}
        if policy.max_runs is not None
        else set(),
    )
    return Plan([_decide(obj, ctx) for obj in sorted(objects, key=lambda o: (o.path, o.oid))], now)
