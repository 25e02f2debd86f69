"""The sample dataset: deterministic, valid, and restorable offline from a fresh clone."""

from __future__ import annotations

import pytest

from ita_vc.candles.sample import SAMPLE_SPECS, generate_candles
from ita_vc.candles.validate import validate_candles
from ita_vc.store import hash_dataframe
from tests.helpers import REPO_ROOT, VENV_BIN, run


def test_generation_is_deterministic_valid_and_has_gaps():
    spec = SAMPLE_SPECS[0]
    first, second = generate_candles(spec), generate_candles(spec)
    assert hash_dataframe(first) == hash_dataframe(second)
    validate_candles(first, 60_000, "sample")
    assert 30 <= first["gap_flag"].sum() <= 80
    assert len(first) > 0.99 * spec.days * 1440


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    clone = tmp_path_factory.mktemp("clone") / "ita-vc"
    run(["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(clone)], cwd=clone.parent)
    return clone


def test_a_fresh_clone_restores_the_sample_candles_offline(fresh_clone):
    assert not (fresh_clone / "data").exists()
    remote = run([str(VENV_BIN / "dvc"), "remote", "list"], cwd=fresh_clone).stdout
    assert "sample" in remote and "(default)" not in remote  # `dvc push` never writes into git
    run([str(VENV_BIN / "dvc"), "pull", "-r", "sample", "data.dvc"], cwd=fresh_clone)
    status = run([str(VENV_BIN / "dvc"), "status", "data.dvc"], cwd=fresh_clone).stdout
    assert "up to date" in status
    from ita_vc.candles import CandleStore
    from ita_vc.workspace import Workspace

    datasets = {(d.market, d.symbol): d for d in CandleStore(Workspace.at(fresh_clone)).status()}
    for spec in SAMPLE_SPECS:
        info = datasets[(spec.market, spec.symbol)]
        assert info.data_hash == hash_dataframe(generate_candles(spec))
        assert info.rows > 86_000 and info.gaps > 0
