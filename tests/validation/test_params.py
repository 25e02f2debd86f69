"""params.yaml: validation: - defaults, skipped tests, every problem with its line."""

from __future__ import annotations

import pytest

from ita_vc.errors import DataValidationError
from ita_vc.validation.params import parse_validation
from ita_vc.yaml_read import load_yaml_document


def test_absent_or_null_skips_and_empty_runs_with_defaults():
    assert parse_validation(None) is None
    only = parse_validation({"permutation": {}, "wfo": None})
    assert only is not None and only.seed == 0 and only.permutation_n == 1000
    assert only.block_bootstrap is None and only.wfo is None and only.monte_carlo_n is None
    full = parse_validation(
        {"seed": 7, "block_bootstrap": {}, "monte_carlo": {}, "wfo": {}, "overfitting": {}}
    )
    assert full.block_bootstrap.block_size == "auto" and full.block_bootstrap.confidence == 0.95
    assert full.monte_carlo_n == 2000
    assert (full.wfo.windows, full.wfo.in_sample_ratio, full.wfo.mode) == (4, 3, "rolling")
    assert full.wfo.objective == "Total Return [%]"
    assert (full.overfitting.partitions, full.overfitting.max_variants) == (16, 20000)


def test_every_problem_with_its_line():
    text = (
        "validation:\n"
        "  seed: -1\n"
        "  permutation: {n: 0}\n"
        "  block_bootstrap: {block_size: 0, confidence: 1.5}\n"
        "  wfo: {mode: sideways, objective: Luck}\n"
        "  overfitting: {partitions: 7}\n"
        "  colour: red\n"
    )
    doc = load_yaml_document(text, "params.yaml")
    with pytest.raises(DataValidationError) as caught:
        parse_validation(doc.data["validation"], index=doc.index)
    message = str(caught.value)
    for expected in (
        "params.yaml:2: validation.seed",
        "params.yaml:3: validation.permutation.n",
        "validation.block_bootstrap.block_size",
        "validation.block_bootstrap.confidence",
        "validation.wfo.mode",
        "validation.wfo.objective",
        "params.yaml:6: validation.overfitting.partitions: must be even",
        "validation.colour",
    ):
        assert expected in message, (expected, message)


@pytest.mark.parametrize("partitions", [0, 1, 22, 3, True, 4.0, "16"])
def test_bad_partitions(partitions):
    with pytest.raises(DataValidationError, match="validation.overfitting.partitions"):
        parse_validation({"overfitting": {"partitions": partitions}})


@pytest.mark.parametrize("bad", [[], "x", 3])
def test_the_section_must_be_a_mapping(bad):
    with pytest.raises(DataValidationError, match="validation"):
        parse_validation(bad)


@pytest.mark.parametrize("size", [0, 100_001, 10**20, True, 2.0, "AUTO"])
def test_block_sizes_out_of_range_are_refused(size):
    with pytest.raises(DataValidationError, match="block_size"):
        parse_validation({"block_bootstrap": {"block_size": size}})
