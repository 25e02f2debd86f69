"""Hostile params.yaml values (issue 12 items 6 and 7): fees and slippage outside [0, 100) %,
a non-positive init_cash, setup ids that climb out of rules/, dates pandas cannot hold - refused
with exit 11 naming params.yaml, the field and the value, by every command that reads params,
before any computation; nothing already stored changes. Real processes."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.helpers import VENV_BIN, ita_vc_subprocess, make_pipeline_repo, run

CASES = [
    # (section, key, YAML value, what the message must say)
    (
        "backtest",
        "slippage_pct",
        "100",
        "params.yaml: backtest.slippage_pct: 100: slippage_pct must be >= 0 and < 100 (percent)",
    ),
    ("backtest", "slippage_pct", "250", "params.yaml: backtest.slippage_pct: 250: "),
    ("backtest", "slippage_pct", ".nan", "params.yaml: backtest.slippage_pct: nan: "),
    (
        "backtest",
        "fee_pct",
        "100",
        "params.yaml: backtest.fee_pct: 100: fee_pct must be >= 0 and < 100 (percent)",
    ),
    ("backtest", "fee_pct", "-1", "params.yaml: backtest.fee_pct: -1: "),
    ("backtest", "init_cash", ".inf", "params.yaml: backtest.init_cash: inf: "),
    ("backtest", "init_cash", "0", "params.yaml: backtest.init_cash: 0: init_cash must be > 0"),
    ("backtest", "warmup_bars", "'200'", "params.yaml: backtest.warmup_bars: '200': "),
    (
        "rule",
        "setup_id",
        "Frank_raid/../example_ma_cross",
        "params.yaml: rule.setup_id: 'Frank_raid/../example_ma_cross': ",
    ),
    ("rule", "setup_id", "../../..", "params.yaml: rule.setup_id: '../../..': "),
    ("rule", "setup_id", "[a]", "params.yaml: rule.setup_id: ['a']: must be a string"),
    ("rule", "version", "1.10", "params.yaml: rule.version: 1.1"),
    (
        "data",
        "start",
        "1677-09-20",
        "params.yaml: data.start: datetime.date(1677, 9, 20): outside the time range",
    ),
    ("data", "end", "'9999-12-31'", "params.yaml: data.end: '9999-12-31': outside the time range"),
    ("data", "market", "../../etc", "params.yaml: data.market: '../../etc': not a market name"),
    ("data", "symbol", "BTC/USDT", "params.yaml: data.symbol: 'BTC/USDT': "),
    ("data", "timeframe", "[1h]", "params.yaml: data.timeframe: ['1h']: unknown timeframe"),
]


def _stored(repo) -> dict[str, str]:
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
        and ".git" not in p.parts
        and "logs" not in p.parts
        and not p.name.endswith((".lock", ".lock.info"))
    }


def _set(repo, section, key, value) -> None:
    params = repo / "params.yaml"
    lines = params.read_text().splitlines()
    start = lines.index(f"{section}:")
    for i in range(start + 1, len(lines)):
        if lines[i].strip().startswith(f"{key}:"):
            lines[i] = f"  {key}: {value}"
            break
    else:
        lines.insert(start + 1, f"  {key}: {value}")
    params.write_text("\n".join(lines) + "\n")


@pytest.fixture
def pipeline(tmp_repo):
    make_pipeline_repo(tmp_repo)
    original = (tmp_repo / "params.yaml").read_text()
    # prepared candles exist, so a stage that does not refuse would run the engine on them
    done = run(
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "prepare"], cwd=tmp_repo, check=False
    )
    assert done.returncode == 0, done.stderr
    return tmp_repo, original


@pytest.mark.parametrize(("section", "key", "value", "message"), CASES)
def test_commands_reading_params_refuse_with_exit_11(pipeline, section, key, value, message):
    repo, original = pipeline
    (repo / "params.yaml").write_text(original)
    _set(repo, section, key, value)
    stored = _stored(repo)
    commands = [
        [str(VENV_BIN / "ita-vc"), "grid", "run", "--workers", "1"],
        [str(VENV_BIN / "python"), "-m", "ita_vc.pipeline", "backtest"],
        [
            str(VENV_BIN / "ita-vc"),
            "backtest",
            "run",
            "--candles",
            str(repo / "results/prepared/candles.parquet"),
            "--rule",
            str(repo / "rules/example_ma_cross/v1.0.yaml"),
            "--params",
            str(repo / "params.yaml"),
            "--out",
            str(repo.parent / "out"),
        ],
    ]
    for command in commands:
        proc = run(command, cwd=repo, check=False)
        assert proc.returncode == 11, (command[1:3], proc.stderr[-1500:])
        # `grid run` and `backtest run --params` read the file themselves: they add its line
        located = re.sub(r"params\.yaml:\d+: ", "params.yaml: ", proc.stderr)
        assert message in located, (command[1:3], proc.stderr)
        if command[1] in ("grid", "backtest"):
            assert re.search(r"params\.yaml:\d+: ", proc.stderr), proc.stderr
        assert "Traceback" not in proc.stderr
        assert _stored(repo) == stored
        assert not (repo.parent / "out").exists()


def test_the_issue_recipe_slippage_100_no_longer_divides_by_zero(pipeline, tmp_path):
    repo, _original = pipeline
    _set(repo, "backtest", "slippage_pct", "100")
    proc = ita_vc_subprocess(
        "backtest",
        "run",
        "--candles",
        str(repo / "results/prepared/candles.parquet"),
        "--rule",
        str(repo / "rules/example_ma_cross/v1.0.yaml"),
        "--params",
        str(repo / "params.yaml"),
        "--out",
        str(tmp_path / "o"),
        cwd=repo,
    )
    assert proc.returncode == 11, proc.stderr
    assert "ZeroDivision" not in proc.stderr and not (tmp_path / "o").exists()
    _set(repo, "backtest", "slippage_pct", "99.99")  # the bound is exclusive: just below runs
    below = ita_vc_subprocess(
        "backtest",
        "run",
        "--candles",
        str(repo / "results/prepared/candles.parquet"),
        "--rule",
        str(repo / "rules/example_ma_cross/v1.0.yaml"),
        "--params",
        str(repo / "params.yaml"),
        "--out",
        str(tmp_path / "o"),
        cwd=repo,
    )
    assert below.returncode == 0, below.stderr
