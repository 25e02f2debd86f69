from __future__ import annotations

import pytest

from ita_vc.config import default_config_text, load_config, parse_config
from ita_vc.errors import ConfigError


def test_defaults_parse_and_are_what_init_writes():
    config = parse_config(default_config_text())
    assert config.paths.data_root == "data"
    assert config.paths.results_root == "results"
    assert config.paths.provenance_root == "provenance"
    assert config.store.kinds["candles"] == "data/candles"
    assert config.store.parquet_compression == "zstd"


def test_missing_keys_take_defaults_and_user_values_win():
    config = parse_config(
        "paths:\n  logs_root: var/logs\nstore:\n  kinds:\n    extra: data/x\n    candles: data/c\n"
    )
    assert config.paths.logs_root == "var/logs"
    assert config.paths.data_root == "data"
    assert config.store.kinds == {
        "extra": "data/x",
        "candles": "data/c",
        "retention": ".ita/retention",
    }  # always present
    assert config.candles.markets[0] == "binance-spot"


def test_empty_file_is_all_defaults():
    assert parse_config("").paths == parse_config(default_config_text()).paths


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("paths:\n  data_rot: data\n", r"config.yaml:2: paths.data_rot: unknown key"),
        ("colour: blue\n", r"colour: unknown key"),
        (
            "paths:\n  data_root: 5\n",
            r"config.yaml:2: paths.data_root: must be a non-empty relative path, got 5 \(integer\)",
        ),
        ("paths: [a]\n", r"paths: must be a mapping"),
        ("paths:\n  data_root: /abs/data\n", r"must be relative to the repository"),
        ("paths:\n  data_root: ../outside\n", r"must not leave the repository"),
        ("paths:\n  results_root: data/results\n", r"overlaps data_root data: DVC forbids"),
        ("paths:\n  provenance_root: data/results/provenance\n", r"overlaps data_root"),
        ("paths:\n  data_root: .git/x\n", r"must not point inside \.git/"),
        ("paths:\n  trash_root: data/trash\n", r"trash_root: data/trash must not be inside"),
        ("paths:\n  data_root: 'a\\b'\n", r"use '/' as the separator"),
        ("paths:\n  data_root: .\n", r"must name a folder below the repository root"),
        (
            "store:\n  parquet_compression: lzma\n",
            r"yaml:2: store.parquet_compression: 'lzma' is not one of zstd, snappy, gzip",
        ),
        ("store:\n  kinds: {}\n", r"at least one artifact kind"),
        ("store:\n  kinds: {png: data/png}\n", r"needs a 'candles' kind"),
        ("candles:\n  layout: '{market}/{symbol}.parquet'\n", r"missing: \{timeframe\}"),
        ("candles:\n  layout: '{market}/{symbol}/{timeframe}.csv'\n", r"ending in .parquet"),
        ("candles:\n  markets: []\n", r"non-empty list of market names"),
        (
            "candles:\n  markets: 3\n",
            r"yaml:2: candles.markets: must be a non-empty list of market names, got 3 \(integer\)",
        ),
        ("store:\n  kinds:\n    bad-name: x\n", r"kind names are identifiers"),
        ("store:\n  kinds: 3\n", r"store.kinds: must be a mapping"),
        ("schema_version: 2\n", r"unsupported version 2"),
        (
            "schema_version: true\n",
            r"yaml:1: schema_version: must be an integer, got True \(boolean\)",
        ),
        ("paths:\n  data_root: data\n  data_root: x\n", r"yaml:3: duplicate key 'data_root'"),
        ("paths: {data_root: [\n", r"config.yaml"),
        ("a: !!python/object:os.system {}\n", r"tag not allowed"),
    ],
)
def test_invalid_configs_name_file_key_and_line(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(text)


def test_every_problem_is_reported_with_its_line():
    text = (
        "schema_version: 1\n"
        "paths:\n"
        "  data_root: /abs\n"
        "  logs_rot: x\n"
        "store:\n"
        "  parquet_compression: lzma\n"
        "  kinds: {candles: data/c, bad-name: x}\n"
        "candles:\n"
        "  markets: [binance, 3]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).splitlines() == [
        "configs/config.yaml:3: paths.data_root: must be relative to the repository, got "
        "absolute '/abs'",
        "configs/config.yaml:4: paths.logs_rot: unknown key (allowed: cache_root, data_root, "
        "index_path, logs_root, provenance_root, results_root, rules_root, trash_root)",
        "configs/config.yaml:6: store.parquet_compression: 'lzma' is not one of zstd, snappy, "
        "gzip, lz4, brotli, none",
        "configs/config.yaml:7: store.kinds.bad-name: kind names are identifiers (letters, "
        "digits, _), got 'bad-name'",
        "configs/config.yaml:9: candles.markets.1: must be a market name, got 3 (integer)",
    ]


def test_every_cross_field_problem_is_reported():
    text = "paths:\n  results_root: data/r\n  logs_root: rules/logs\nstore:\n  kinds: {}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).splitlines() == [
        "configs/config.yaml:2: paths.results_root: data/r overlaps data_root data: DVC forbids "
        "pipeline outputs inside a tracked directory, keep them apart",
        "configs/config.yaml:3: paths.logs_root: rules/logs must not be inside rules_root rules",
        "configs/config.yaml:5: store.kinds: must name at least one artifact kind",
        "configs/config.yaml:5: store.kinds: needs a 'candles' kind (where canonical candles "
        "are stored)",
    ]


def test_paths_are_normalised():
    config = parse_config("paths:\n  data_root: ./data/./in\nstore:\n  kinds: {candles: ./c/}\n")
    assert config.paths.data_root == "data/in"
    assert config.store.kinds["candles"] == "c"
    assert config.raw["paths"]["data_root"] == "data/in"


def test_load_config_reads_the_workspace_file(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_text("paths:\n  logs_root: mylogs\n")
    assert load_config(tmp_path).paths.logs_root == "mylogs"


def test_load_config_rejects_non_utf8(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_bytes(b"paths:\n  logs_root: \xff\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(tmp_path)


def test_config_error_exit_code():
    assert ConfigError.exit_code == 8


def test_the_jobs_section_has_the_issues_defaults_and_is_checked():
    jobs = parse_config("").jobs
    assert (jobs.enabled, jobs.url, jobs.top_k_persisted_default, jobs.max_active_jobs) == (
        True,
        None,
        500,
        2,
    )
    assert (jobs.lease_seconds, jobs.heartbeat_seconds, jobs.claim_poll_seconds) == (60, 5, 1)
    assert jobs.max_attempts == 3
    custom = parse_config("jobs:\n  url: postgresql://ita@db:5432/jobs\n  lease_seconds: 30\n")
    assert custom.jobs.url == "postgresql://ita@db:5432/jobs"
    assert custom.jobs.lease_seconds == 30.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("jobs:\n  url: postgresql://ita:pw@db/jobs\n", r"jobs.url: must not hold a password"),
        ("jobs:\n  url: mysql://db/jobs\n", r"jobs.url: must be postgresql://"),
        ("jobs:\n  lease_seconds: 0\n", r"jobs.lease_seconds: must be a number of seconds >= 1"),
        ("jobs:\n  heartbeat_seconds: 1e-7\n", r"jobs.heartbeat_seconds: must be a number"),
        ("jobs:\n  url: sqlite:///etc/passwd\n", r"jobs.url: must be postgresql://"),
        ("jobs:\n  lease_seconds: .nan\n", r"jobs.lease_seconds: must be a number of seconds"),
        ("jobs:\n  max_active_jobs: 0\n", r"jobs.max_active_jobs: must be a whole number >= 1"),
        ("jobs:\n  max_attempts: true\n", r"jobs.max_attempts: must be a whole number >= 1"),
        ("jobs:\n  heartbeat_seconds: 40\n", r"jobs.heartbeat_seconds: 40 s must be at most half"),
        ("jobs:\n  workers: 3\n", r"jobs.workers: unknown key"),
    ],
)
def test_bad_jobs_settings_name_the_key(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(text)
