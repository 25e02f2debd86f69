"""A workspace with several months of synthetic history, built with real git and DVC.

Timeline (days ago): 240, 180, 120, 60, 30, 15, 0. At each point one backdated commit:
- replaces ``data/png/shot.png`` (unique bytes; `dvc add data`),
- replaces ``results/latest/`` (``result.json``, ``chart.png``, ``scratch.bin``;
  `dvc add results/latest`) - run 240's chart has the same bytes as run 15's (shared object),
- records a run snapshot for it (rule A v1.0 at 240/180, A v1.1 at 120, B v1.0 later).
Lifecycle: A v1.1 active, A v1.0 deprecated. Run 180 is pinned (ita/keep tag); the commit of
day 60 is tagged ``important``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest

from tests.helpers import TmpRepo, run

DAYS = (240, 180, 120, 60, 30, 15, 0)
NOW = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp())
SETUPS = {
    240: ("A", "v1.0"),
    180: ("A", "v1.0"),
    120: ("A", "v1.1"),
    60: ("B", "v1.0"),
    30: ("B", "v1.0"),
    15: ("B", "v1.0"),
    0: ("B", "v1.0"),
}
POLICY = """\
scratch:          {paths: ["results/**/*.bin"], retain_days: 3650, strategy: delete}
raw_candles:      {paths: ["data/candles/**"], retain_days: 365, strategy: archive}
annotated_pngs:   {paths: ["data/png/**", "results/**/*.png"], retain_days: 90, strategy: delete}
backtest_results: {paths: ["results/**"], retain_days: null, strategy: keep_forever}
keep_last_runs: 2
max_runs: 4
safety_window_days: 7
confirm_above_gb: 10
archive_remote: archive
exceptions: {tags: [important], active_rules: true}
"""


def when(days: int) -> int:
    return NOW - days * 86_400


def _commit(repo: TmpRepo, message: str, stamp: int) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": f"@{stamp} +0000",
        "GIT_COMMITTER_DATE": f"@{stamp} +0000",
    }
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "--no-verify", "-m", message], cwd=repo, env=env)


def run_id_of(days: int) -> str:
    stamp = dt.datetime.fromtimestamp(when(days), dt.UTC)
    return f"bt_{stamp:%Y_%m_%d}_001_{days:03x}"[:22]


def build_history(repo: TmpRepo) -> dict[int, dict[str, str]]:
    """Build the timeline; returns {day: {"shot": md5, "chart": md5, "result": md5,
    "scratch": md5, "run_id": id}}."""
    import hashlib

    import yaml

    from ita_vc.rules import RuleRegistry
    from ita_vc.snapshot.capture import seal
    from ita_vc.workspace import Workspace

    (repo / "configs/retention.yaml").write_text(POLICY)
    registry = RuleRegistry(Workspace.at(repo))
    registry.new("A", author="t")
    registry.bump("A", sets=["indicators.0.params.fast=5"])
    registry.new("B", author="t")
    registry.activate("A", "1.1")
    registry.deprecate("A", "1.0", reason="superseded")
    _commit(repo, "rules", when(250))
    facts: dict[int, dict[str, str]] = {}
    for days in DAYS:
        chart_seed = 15 if days == 240 else days
        files = {
            "data/png/shot.png": b"\x89PNG shot " + str(days).encode() * 50,
            "results/latest/result.json": f'{{"day": {days}}}\n'.encode(),
            "results/latest/chart.png": b"\x89PNG chart " + str(chart_seed).encode() * 50,
            "results/latest/scratch.bin": b"scratch " + str(days).encode() * 20,
        }
        repo.gen(files)
        repo.dvc("add", "-q", "data", "results/latest")
        lock = yaml.safe_load((repo / "results/latest.dvc").read_text())
        out = lock["outs"][0]
        setup, version = SETUPS[days]
        run_id = run_id_of(days)
        snapshot = seal(
            {
                "schema_version": 1,
                "run_id": run_id,
                "setup_id": setup,
                "rule_version": version,
                "params_hash": None,
                "data_hash": None,
                "data_range": [None, None],
                "git_commit_hash": None,
                "timestamp": dt.datetime.fromtimestamp(when(days), dt.UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "dvc_lock": {
                    "stages": {
                        "backtest": {
                            "outs": [
                                {
                                    "path": "results/latest",
                                    "md5": out["md5"],
                                    "size": out["size"],
                                    "nfiles": out["nfiles"],
                                }
                            ]
                        }
                    }
                },
                "outputs": [{"path": "results/latest", "md5": out["md5"]}],
                "metrics": {},
                "meta": {"run_mode": "backtest"},
            }
        )
        import json

        (repo / "provenance").mkdir(exist_ok=True)
        (repo / f"provenance/{run_id}.json").write_text(json.dumps(snapshot, indent=2))
        _commit(repo, f"day -{days}", when(days))
        facts[days] = {
            name: hashlib.md5(content, usedforsecurity=False).hexdigest()
            for name, content in (
                ("shot", files["data/png/shot.png"]),
                ("chart", files["results/latest/chart.png"]),
                ("result", files["results/latest/result.json"]),
                ("scratch", files["results/latest/scratch.bin"]),
            )
        }
        facts[days]["run_id"] = run_id
        facts[days]["commit"] = repo.git("rev-parse", "HEAD").stdout.strip()
    repo.git("tag", "-a", f"ita/keep/{run_id_of(180)}", "-m", "paper figure", facts[180]["commit"])
    repo.git("tag", "important", facts[60]["commit"])
    return facts


@pytest.fixture(scope="module")
def history_template(_template_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("history") / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    repo = TmpRepo(root)
    facts = build_history(repo)
    return repo, facts


@pytest.fixture
def history(history_template, tmp_path, monkeypatch):
    template, facts = history_template
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    return TmpRepo(root), facts
