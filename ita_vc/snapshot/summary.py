"""What a person reads of recorded runs: the one-screen summary of ``runs show`` and the
differences of ``runs diff``, as typed structures the CLI only renders.

Besides the snapshot itself, two records of a run are read when they are at hand (never
required): the backtest's ``summary.json`` of that run, from the DVC cache by the md5 the
snapshot recorded (the effective fee, the bars, the rule parameters the engine used), and else
the rule version file (in the working tree when its ``params_hash`` matches, or at the run's
commit in git).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ita_vc.backtest.format import format_duration, format_metric, format_number, metric_unit
from ita_vc.backtest.metrics import METRIC_NAMES
from ita_vc.backtest.report import annualisation_text, settings_text
from ita_vc.errors import ItaVcError
from ita_vc.rules.registry import RuleRegistry
from ita_vc.snapshot.capture import SnapshotStore
from ita_vc.utils.mappings import flatten
from ita_vc.validation.verdict import verdict_lines
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import cache_paths
from ita_vc.yaml_read import load_yaml_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ita_vc.workspace import Workspace

__all__ = [
    "KEY_PACKAGES",
    "DiffRow",
    "Line",
    "MetricLine",
    "RunDiff",
    "RunFacts",
    "RunSummary",
    "Section",
    "diff_facts",
    "diff_texts",
    "load_facts",
    "run_diff",
    "run_summary",
    "short_hash",
]

KEY_PACKAGES = ("dvc", "numpy", "pandas", "numba", "pyarrow", "matplotlib", "bokeh")
"""The packages ``runs show`` names in its environment section (all are in the snapshot)."""

_RULE_KEYS = ("indicators", "targets", "direction", "sizing")


@dataclass(frozen=True, slots=True)
class Line:
    """One ``label: text`` line of a summary section."""

    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of lines (rule, data, execution, git, outputs, environment)."""

    title: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class MetricLine:
    """One metric: its name, the exact recorded value and the text a person reads."""

    name: str
    value: object
    text: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The one-screen summary of a run (``ita-vc runs show``)."""

    run_id: str
    headline: str
    sections: tuple[Section, ...]
    metrics: tuple[MetricLine, ...]

    def section(self, title: str) -> Section:
        """The section titled ``title``.

        Raises:
            KeyError: no such section.
        """
        for section in self.sections:
            if section.title == title:
                return section
        raise KeyError(title)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (texts as printed, metrics also with their exact values)."""
        return {
            "run_id": self.run_id,
            "headline": self.headline,
            "sections": {s.title: {ln.label: ln.text for ln in s.lines} for s in self.sections},
            "metrics": [{"name": m.name, "value": m.value, "text": m.text} for m in self.metrics],
        }


@dataclass(frozen=True, slots=True)
class RunFacts:
    """A run's snapshot and what else is known of it.

    ``backtest`` is the run's ``results/backtest/summary.json`` (empty when the DVC cache does
    not hold it); ``rule`` the rule parameters (indicators, targets, direction, sizing) and
    ``rule_source`` where they were read; ``status`` the version's lifecycle status now (None
    when the registry cannot say).
    """

    snapshot: Mapping[str, Any]
    backtest: Mapping[str, Any] = field(default_factory=dict)
    rule: Mapping[str, Any] = field(default_factory=dict)
    rule_source: str = "-"
    status: str | None = None


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One difference of ``runs diff``: a key of a section, its values in run A and run B, and
    for two numbers the change ``b - a`` and the percent change relative to ``|a|``."""

    section: str
    key: str
    a: object
    b: object
    delta: float | None = None
    pct: float | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (exact values)."""
        return {
            "section": self.section,
            "key": self.key,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "pct_change": self.pct,
        }


@dataclass(frozen=True, slots=True)
class RunDiff:
    """Everything that differs between two runs, section by section."""

    a: str
    b: str
    rows: tuple[DiffRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``{"a", "b", "differences": [...]}``."""
        return {"a": self.a, "b": self.b, "differences": [r.to_dict() for r in self.rows]}


def short_hash(value: object, length: int = 12) -> str:
    """The first ``length`` hex digits of ``sha256:...`` / an md5 / a commit; ``-`` if none."""
    if not isinstance(value, str) or not value:
        return "-"
    return value.split(":", 1)[-1][:length]


def _plain(value: object) -> str:
    """A recorded value as text: null as ``-``, mappings and lists as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _dict(value: object) -> dict[str, Any]:
    """``value`` if it is a mapping, else ``{}`` (a damaged snapshot never stops a summary)."""
    return dict(value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    """``value`` if it is a list, else ``[]``."""
    return list(value) if isinstance(value, list) else []


def _range(snapshot: Mapping[str, Any]) -> tuple[object, object]:
    """The first and last bar of ``data_range`` (None when not recorded)."""
    bounds = snapshot.get("data_range")
    if isinstance(bounds, list) and len(bounds) == 2:
        return bounds[0], bounds[1]
    return None, None


def _size(num: object) -> str:
    """Bytes as ``23.4 KB``."""
    if not isinstance(num, int | float) or isinstance(num, bool):
        return "-"
    size = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - the loop always returns


# -- reading what is known of a run --------------------------------------------------------


def _cached_json(workspace: Workspace, snapshot: Mapping[str, Any], rel: str) -> dict[str, Any]:
    """``rel`` inside an output directory the snapshot recorded, read from the DVC cache
    (``{}`` when not recorded or not cached)."""
    folder, _, name = rel.rpartition("/")
    for out in _list(snapshot.get("outputs")):
        if not isinstance(out, dict):
            continue
        md5 = out.get("md5")
        if out.get("path") != folder or not isinstance(md5, str) or not md5.endswith(".dir"):
            continue
        try:
            manifest = json.loads(cache_paths(workspace.root, [md5])[md5].read_bytes())
            oid = next(e["md5"] for e in manifest if e.get("relpath") == name)
            data = json.loads(cache_paths(workspace.root, [oid])[oid].read_bytes())
        except (OSError, ValueError, KeyError, TypeError, StopIteration, ItaVcError):
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def _rule_params(
    workspace: Workspace, snapshot: Mapping[str, Any], backtest: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """The rule parameters of a run and where they were read."""
    if all(k in backtest for k in _RULE_KEYS):
        return {k: backtest[k] for k in _RULE_KEYS}, "the run's backtest summary.json"
    setup, version = str(snapshot.get("setup_id")), str(snapshot.get("rule_version"))
    registry = RuleRegistry(workspace)
    try:
        rule = registry.get(setup, version)
        if rule.params_hash == snapshot.get("params_hash"):
            return {k: rule.params.get(k) for k in _RULE_KEYS}, rule.path
    except ItaVcError:
        pass
    commit = snapshot.get("git_commit_hash")
    if not isinstance(commit, str):
        return {}, "-"
    try:
        rel = f"{registry.rules_root}/{setup}/{version}.yaml"
        spec = f"{commit}:{rel}"
        raw = gitcli.cat_files(workspace.root, [spec])[spec]
        doc = load_yaml_text(raw.decode("utf-8"), rel) if raw is not None else None
    except (ItaVcError, ValueError):  # a VcsError, YamlError or UnicodeDecodeError
        return {}, "-"
    if not isinstance(doc, dict):
        return {}, "-"
    return {k: doc.get(k) for k in _RULE_KEYS}, f"{rel} at {commit[:10]}"


def load_facts(workspace: Workspace, run_id: str) -> RunFacts:
    """A run's snapshot with its backtest summary, rule parameters and lifecycle status.

    Raises:
        UsageError: a malformed run id. ItaVcError: no snapshot of that run.
    """
    snapshot = SnapshotStore(workspace).load_snapshot(run_id)
    results = workspace.config.store.kinds["results"]
    backtest = _cached_json(workspace, snapshot, f"{results}/backtest/summary.json")
    rule, source = _rule_params(workspace, snapshot, backtest)
    try:
        status: str | None = (
            RuleRegistry(workspace)
            .status(str(snapshot.get("setup_id")), str(snapshot.get("rule_version")))
            .status
        )
    except ItaVcError:
        status = None
    return RunFacts(snapshot, backtest, rule, source, status)


# -- the summary ---------------------------------------------------------------------------


def _indicators_text(indicators: object) -> str:
    if not isinstance(indicators, list) or not indicators:
        return "-"
    parts = []
    for item in indicators:
        if not isinstance(item, dict):
            parts.append(_plain(item))
            continue
        params = _dict(item.get("params"))
        inner = ", ".join(f"{k}={_plain(v)}" for k, v in params.items())
        parts.append(f"{item.get('name')}({inner})")
    return ", ".join(parts)


def _percent(value: object) -> str:
    return "-" if value is None else f"{_plain(value)} %"


def _rule_section(facts: RunFacts) -> Section:
    s = facts.snapshot
    recorded = s.get("rule_status")
    status = facts.status or "-"
    if recorded and recorded != facts.status:
        status += f" (at the run: {recorded})"
    return Section(
        "rule",
        (
            Line("setup", _plain(s.get("setup_id"))),
            Line("version", _plain(s.get("rule_version"))),
            Line("status", status),
            Line("params_hash", short_hash(s.get("params_hash"))),
            Line("indicators", _indicators_text(facts.rule.get("indicators"))),
            Line("targets", settings_text(facts.rule.get("targets"))),
        ),
    )


def _data_section(facts: RunFacts) -> Section:
    s, rng = facts.snapshot, _dict(facts.backtest.get("range"))
    first, last = _range(s)
    bars = rng.get("bars")
    bars_text = f"{bars:,}" if isinstance(bars, int) else _plain(bars)
    warmup = rng.get("warmup_bars")
    if isinstance(bars, int) and isinstance(warmup, int):
        bars_text += f" (+{warmup:,} warm-up)"
    return Section(
        "data",
        (
            Line("market", _plain(s.get("market"))),
            Line("symbol", _plain(s.get("symbol"))),
            Line("timeframe", _plain(s.get("timeframe"))),
            Line("range", f"{_plain(first)} .. {_plain(last)}"),
            Line("bars", bars_text),
            Line("data_hash", short_hash(s.get("data_hash"))),
        ),
    )


def _execution_section(facts: RunFacts) -> Section:
    bt = facts.backtest
    params = _dict(_dict(facts.snapshot.get("params")).get("backtest"))
    fee = bt.get("fee_pct") if "fee_pct" in bt else params.get("fee_pct")
    fee_text = _percent(fee) if fee is not None else "market default (params fee_pct: null)"
    cash = bt.get("init_cash", params.get("init_cash"))
    return Section(
        "execution",
        (
            Line("direction", _plain(facts.rule.get("direction"))),
            Line("sizing", settings_text(facts.rule.get("sizing"), "mode")),
            Line("fee", fee_text),
            Line("slippage", _percent(bt.get("slippage_pct", params.get("slippage_pct")))),
            Line("init cash", format_metric("Init. Cash", cash)),
            Line("annualised", annualisation_text(bt)),
        ),
    )


def _git_section(s: Mapping[str, Any]) -> Section:
    dirty = s.get("git_dirty")
    paths = _list(s.get("dirty_paths"))
    dirty_text = _plain(dirty) + (f" ({len(paths)} path(s))" if dirty and paths else "")
    return Section(
        "git",
        (
            Line("commit", short_hash(s.get("git_commit_hash"), 10)),
            Line("branch", _plain(s.get("git_branch"))),
            Line("dirty", dirty_text),
        ),
    )


def _outputs_section(s: Mapping[str, Any]) -> Section:
    lines = []
    for out in _list(s.get("outputs")):
        if not isinstance(out, dict):
            continue
        files = f"{out['nfiles']} files, " if out.get("nfiles") else ""
        text = f"{files}{_size(out.get('size'))}, md5 {short_hash(out.get('md5'))}"
        lines.append(Line(str(out.get("path")), text))
    return Section("outputs", tuple(lines))


def _environment_section(s: Mapping[str, Any]) -> Section:
    env = _dict(s.get("env"))
    packages = _dict(env.get("packages"))
    key = ", ".join(f"{name} {packages[name]}" for name in KEY_PACKAGES if name in packages)
    python = _plain(env.get("python"))
    if env.get("implementation"):
        python += f" ({env['implementation']})"
    return Section(
        "environment",
        (
            Line("python", python),
            Line("ita-vc", _plain(s.get("ita_vc_version"))),
            Line("engine", _plain(s.get("engine_version"))),
            Line("packages", key or "-"),
            Line(
                "all packages",
                f"{len(packages)} recorded, sha256 {short_hash(env.get('packages_sha256'))}",
            ),
            Line("os", _plain(env.get("os"))),
        ),
    )


def _validation_section(s: Mapping[str, Any]) -> tuple[Section, ...]:
    """The validate stage's headline numbers, when the run recorded them (schema 3)."""
    validation = s.get("validation")
    if not isinstance(validation, dict):
        return ()
    lines = verdict_lines(validation)
    return (Section("validation", tuple(Line(x[:16].strip(), x[16:].strip()) for x in lines)),)


def _metric_order(metrics: Mapping[str, object]) -> list[str]:
    return [n for n in METRIC_NAMES if n in metrics] + sorted(
        n for n in metrics if n not in METRIC_NAMES
    )


def _summary_from(facts: RunFacts) -> RunSummary:
    s = facts.snapshot
    meta = _dict(s.get("meta"))
    metrics = _dict(s.get("metrics"))
    run_line = [
        Line("recorded", _plain(s.get("timestamp"))),
        Line("mode", _plain(meta.get("run_mode"))),
        Line("author", _plain(meta.get("author"))),
    ]
    if meta.get("note"):
        run_line.append(Line("note", str(meta["note"])))
    stages = _dict(s.get("stages"))
    ran = [name for name, state in stages.items() if state == "run"]
    run_line.append(Line("stages run", ", ".join(ran) or "-"))
    headline = (
        f"{s.get('run_id')}: {s.get('setup_id')} {s.get('rule_version')} on {s.get('market')} "
        f"{s.get('symbol')} {s.get('timeframe')}" + (" [dirty]" if s.get("git_dirty") else "")
    )
    return RunSummary(
        run_id=str(s.get("run_id")),
        headline=headline,
        sections=(
            Section("run", tuple(run_line)),
            _rule_section(facts),
            _data_section(facts),
            _execution_section(facts),
            _git_section(s),
            *_validation_section(s),
            _outputs_section(s),
            _environment_section(s),
        ),
        metrics=tuple(
            MetricLine(n, metrics[n], format_metric(n, metrics[n])) for n in _metric_order(metrics)
        ),
    )


def run_summary(workspace: Workspace, run_id: str) -> RunSummary:
    """The one-screen summary of a run: run, rule, data, execution, git, the metrics (each
    formatted by :func:`~ita_vc.backtest.format.format_metric`), outputs and environment.

    Raises:
        UsageError: a malformed run id. ItaVcError: no snapshot of that run.
    """
    return _summary_from(load_facts(workspace, run_id))


# -- the differences -----------------------------------------------------------------------


def _rule_values(facts: RunFacts) -> dict[str, object]:
    s, rule = facts.snapshot, facts.rule
    values: dict[str, object] = {
        "setup_id": s.get("setup_id"),
        "rule_version": s.get("rule_version"),
        "params_hash": s.get("params_hash"),
        "status": facts.status,
    }
    indicators = _list(rule.get("indicators"))
    names = [i.get("name") for i in indicators if isinstance(i, dict)]
    for i, item in enumerate(indicators):
        if not isinstance(item, dict):
            continue
        name = str(item.get("name"))
        label = name if names.count(name) == 1 else f"{name}#{i}"
        values[f"indicators.{label}"] = None  # present (its params follow)
        for key, value in _dict(item.get("params")).items():
            values[f"indicators.{label}.{key}"] = value
    values.update(flatten({"targets": rule.get("targets")}, lists=False))
    values["direction"] = rule.get("direction")
    values.update(flatten({"sizing": rule.get("sizing")}, lists=False))
    return values


def _run_values(facts: RunFacts) -> dict[str, object]:
    """The run's note and mode (what a person wrote down about it)."""
    meta = _dict(facts.snapshot.get("meta"))
    return {"note": meta.get("note"), "mode": meta.get("run_mode")}


def _execution_values(facts: RunFacts) -> dict[str, object]:
    bt = facts.backtest
    keys = ("fee_pct", "slippage_pct", "init_cash", "conflicting_signals")
    return {**{k: bt.get(k) for k in keys}, "periods_per_year": bt.get("periods_per_year", 365)}


def _data_values(facts: RunFacts) -> dict[str, object]:
    s, rng = facts.snapshot, _dict(facts.backtest.get("range"))
    first, last = _range(s)
    return {
        "market": s.get("market"),
        "symbol": s.get("symbol"),
        "timeframe": s.get("timeframe"),
        "range.first_bar": first,
        "range.last_bar": last,
        "bars": rng.get("bars"),
        "warmup_bars": rng.get("warmup_bars"),
        "data_hash": s.get("data_hash"),
    }


def _code_values(facts: RunFacts) -> dict[str, object]:
    s = facts.snapshot
    env = _dict(s.get("env"))
    return {
        "git_commit_hash": s.get("git_commit_hash"),
        "git_branch": s.get("git_branch"),
        "git_dirty": s.get("git_dirty"),
        "ita_vc_version": s.get("ita_vc_version"),
        "engine_version": s.get("engine_version"),
        "config_hash": s.get("config_hash"),
        "python": env.get("python"),
        "packages_sha256": env.get("packages_sha256"),
    }


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _row(section: str, key: str, a: object, b: object) -> DiffRow:
    na, nb = _number(a), _number(b)
    if na is None or nb is None:
        return DiffRow(section, key, a, b)
    delta = nb - na
    pct = delta / abs(na) * 100 if na else None
    return DiffRow(section, key, a, b, delta, pct)


def _differences(section: str, va: Mapping[str, object], vb: Mapping[str, object]) -> list[DiffRow]:
    keys: Iterable[str] = dict.fromkeys([*va, *vb])
    return [_row(section, k, va.get(k), vb.get(k)) for k in keys if va.get(k) != vb.get(k)]


def diff_facts(fa: RunFacts, fb: RunFacts) -> list[DiffRow]:
    """The differences of two runs' facts, section by section (see :func:`run_diff`)."""
    rows: list[DiffRow] = []
    for section, pick in (
        ("run", _run_values),
        ("rule", _rule_values),
        ("execution", _execution_values),
        ("params", lambda f: flatten(_dict(f.snapshot.get("params")), lists=False)),
        ("data", _data_values),
        ("code", _code_values),
    ):
        rows += _differences(section, pick(fa), pick(fb))
    ma, mb = _dict(fa.snapshot.get("metrics")), _dict(fb.snapshot.get("metrics"))
    order = _metric_order({**ma, **mb})
    rows += _differences("metrics", {k: ma.get(k) for k in order}, {k: mb.get(k) for k in order})
    pa = _dict(_dict(fa.snapshot.get("env")).get("packages"))
    pb = _dict(_dict(fb.snapshot.get("env")).get("packages"))
    rows += [
        DiffRow("packages", name, pa.get(name), pb.get(name))
        for name in sorted({*pa, *pb})
        if pa.get(name) != pb.get(name)
    ]
    return rows


def run_diff(workspace: Workspace, a: str, b: str) -> RunDiff:
    """What differs between runs ``a`` and ``b``: rule parameters (indicator params, targets,
    direction, sizing), execution (effective fee, slippage), params.yaml values, data (range,
    bars, hash), code (commit, versions), every metric (with delta and percent change) and the
    package versions that changed.

    Raises:
        UsageError: a malformed run id. ItaVcError: no snapshot of a run.
    """
    return RunDiff(a, b, tuple(diff_facts(load_facts(workspace, a), load_facts(workspace, b))))


def _signed(text: str) -> str:
    return text if text.startswith("-") or text in ("0", "-") else f"+{text}"


def diff_texts(row: DiffRow) -> tuple[str, str, str, str]:
    """``(a, b, change, percent change)`` as a person reads them: metrics formatted per metric
    (durations as timedeltas), hashes short (12 hex, commits 10), other values as recorded,
    ``-`` where there is nothing."""
    if row.section == "metrics":
        a, b = format_metric(row.key, row.a), format_metric(row.key, row.b)
        unit = metric_unit(row.key)
        if row.delta is None:
            delta = "-"
        elif unit == "duration":
            delta = _signed(format_duration(row.delta))
        else:
            delta = _signed(format_metric(row.key, row.delta))
    elif row.key.endswith(("_hash", "_sha256")) or row.key == "git_commit_hash":
        length = 10 if row.key == "git_commit_hash" else 12
        a, b, delta = short_hash(row.a, length), short_hash(row.b, length), "-"
    else:
        a, b = _plain(row.a), _plain(row.b)
        delta = "-" if row.delta is None else _signed(f"{row.delta:.10g}")
    pct = "-" if row.pct is None else _signed(format_number(row.pct, 2)) + " %"
    return a, b, delta, pct
