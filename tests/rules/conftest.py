from __future__ import annotations

import pytest

VALID = """\
# a comment that must survive bumps
schema_version: 1
setup_id: {setup_id}
version: "{version}"
author: trader_1
created: "2025-10-15"
components: [Detect_Sessions, Detect_FVG]
indicators:
  - name: ma_cross
    params: {{fast: 10, slow: 20}}
rules: {{session: london}}
targets: {{tp_pct: 2.0, sl_pct: 1.0}}
direction: long-short
sizing: {{mode: all_in}}
"""


def make_rule_text(
    setup_id: str = "Frank",
    version: str = "1.0",
    body: str | None = None,
    params_hash: str | None = None,
) -> str:
    """A valid rule file text (params_hash computed unless given)."""
    from ita_vc.rules.validate import compute_params_hash
    from ita_vc.yaml_read import load_yaml_text

    text = body if body is not None else VALID.format(setup_id=setup_id, version=version)
    if params_hash is None:
        params_hash = compute_params_hash(load_yaml_text(text))
    return text + f"params_hash: {params_hash}\n"


@pytest.fixture
def registry(workspace):
    from ita_vc.rules import RuleRegistry

    return RuleRegistry(workspace)
