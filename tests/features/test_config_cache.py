"""The cache keys of configs/config.yaml: defaults, validation, the git-ignore of init."""

from __future__ import annotations

import pytest

from ita_vc.config import CacheConfig, parse_config
from ita_vc.errors import ConfigError


def test_defaults():
    config = parse_config("")
    assert config.paths.cache_root == ".ita/cache"
    assert config.cache == CacheConfig(enabled=True, max_bytes=1 << 30)


def test_values_and_errors_name_the_key_and_value():
    config = parse_config("cache:\n  enabled: false\n  max_bytes: 0\npaths:\n  cache_root: tmp/c\n")
    assert config.cache == CacheConfig(enabled=False, max_bytes=0)
    assert config.paths.cache_root == "tmp/c"
    with pytest.raises(ConfigError) as info:
        parse_config("cache:\n  enabled: 'yes'\n  max_bytes: 1.5\n  size: 3\n")
    text = str(info.value)
    assert "configs/config.yaml:2: cache.enabled: must be true or false, got 'yes'" in text
    assert "cache.max_bytes: must be a whole number of bytes >= 0, got 1.5" in text
    assert "cache.size" in text
    with pytest.raises(ConfigError, match="paths.cache_root"):
        parse_config("paths:\n  cache_root: results/cache\n")


def test_init_ignores_a_cache_root_outside_the_state_folder(tmp_path):
    from ita_vc.initialize import _gitignore_lines

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_text("paths:\n  cache_root: feature-cache\n")
    lines = _gitignore_lines(tmp_path)
    assert "/feature-cache/" in lines and "/.ita/" in lines
    (tmp_path / "configs" / "config.yaml").write_text("")
    default = _gitignore_lines(tmp_path)
    assert "/.ita/" in default and "/.ita/cache/" not in default  # covered by /.ita/
