"""Hostile YAML (issue 12 item 4): alias bombs, deep nesting, huge and non-regular files.

Every YAML file ita-vc reads goes through one bounded loader (ita_vc.yaml_read): 1 MiB, nesting
depth 50, 10,000 nodes after expanding aliases; anchors and aliases are refused outright except
in params.yaml, where the expansion is capped. The CLI cases run as real subprocesses under a
1 GiB address-space limit and a generous timeout (on the old loader a 550-byte bomb ran 30 s+
at ~80 MB/s), assert the exact exit code and message, and that no stored file changed.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ita_vc.yaml_read import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    YamlError,
    compose_yaml,
    load_yaml_document,
    load_yaml_file,
    load_yaml_text,
    node_index,
    read_text_file,
)
from tests.helpers import VENV_BIN

pytestmark = pytest.mark.slow

#: The classic billion laughs: 9 levels of 9 aliases, 9^9 = 387 million strings expanded.
BOMB = (
    "\n".join(
        [f"lol1: &l1 [{', '.join(['lol'] * 9)}]"]
        + [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(2, 10)]
    )
    + "\n"
)
_GiB = 1 << 30


def _under(key: str, body: str = BOMB) -> str:
    return f"{key}:\n" + textwrap.indent(body, "  ")


def _limited() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (_GiB, _GiB))


def _cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``ita-vc ARGS`` as a real process with 1 GiB of address space and a timeout."""
    return subprocess.run(
        [str(VENV_BIN / "ita-vc"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limited,
        check=False,
    )


def _digest(root: Path) -> dict[str, str]:
    """Every stored file of the workspace (not .git internals or .ita state) -> its sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".git/", ".ita/", "logs/", ".dvc/tmp/")) or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _commit_all(repo, message: str = "hostile") -> None:
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-verify", "-m", message)


# -- the loader ---------------------------------------------------------------------------------
def test_the_bomb_is_small():
    assert len(BOMB) < 600


def test_a_bomb_is_refused_where_aliases_are_not_allowed():
    with pytest.raises(
        YamlError,
        match=r"^rules/X/v1\.0\.yaml:1: anchors and aliases are not "
        r"allowed in rules/X/v1\.0\.yaml",
    ) as info:
        load_yaml_text(BOMB, "rules/X/v1.0.yaml")
    assert info.value.line == 1


def test_a_bomb_is_capped_where_aliases_are_allowed():
    with pytest.raises(
        YamlError, match=f"params.yaml:5: more than {MAX_NODES:,} nodes after expanding aliases"
    ):
        load_yaml_text(BOMB, "params.yaml", allow_aliases=True)


def test_legitimate_anchors_in_params_are_expanded():
    text = "base: &b {fast: 10, slow: 20}\nx: *b\ny: {<<: *b, fast: 12}\n"
    assert load_yaml_text(text, "params.yaml", allow_aliases=True) == {
        "base": {"fast": 10, "slow": 20},
        "x": {"fast": 10, "slow": 20},
        "y": {"fast": 12, "slow": 20},
    }
    with pytest.raises(YamlError, match="anchors and aliases are not allowed in c.yaml"):
        load_yaml_text(text, "c.yaml")


def test_the_node_limit_counts_the_expansion_exactly():
    """10 aliases of a 1,000-node list: 10,000 expanded nodes + the root, key and list."""
    items = ", ".join(["1"] * 999)
    fits = f"a: &a [{items}]\nb: [{', '.join(['*a'] * 8)}]\n"  # 1 + 2 + 1000 + 1 + 8000
    assert len(load_yaml_text(fits, "p", allow_aliases=True)["b"]) == 8
    over = f"a: &a [{items}]\nb: [{', '.join(['*a'] * 9)}]\n"
    with pytest.raises(YamlError, match="more than 10,000 nodes after expanding aliases"):
        load_yaml_text(over, "p", allow_aliases=True)
    plain = "[" + ", ".join(["1"] * MAX_NODES) + "]"
    with pytest.raises(YamlError, match="more than 10,000 nodes \\(the limit"):
        load_yaml_text(plain, "p")


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [1, *a]",
        "a: &a {b: *a}",
    ],
)
def test_a_recursive_alias_is_refused(text):
    with pytest.raises(YamlError, match=r"p:1: recursive alias \*a"):
        load_yaml_text(text, "p", allow_aliases=True)


def test_an_alias_cannot_smuggle_depth():
    deep = "[" * 30 + "1" + "]" * 30
    text = f"a: &a {deep}\nb: {'[' * 25}*a{']' * 25}\n"
    with pytest.raises(YamlError, match=r"p:2: nesting deeper than 50 levels after expanding \*a"):
        load_yaml_text(text, "p", allow_aliases=True)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("flow sequences", "[" * 100_000, 1),
        ("flow mappings", "{a: " * 100_000, 1),
        ("compact block sequences", "- " * 100_000 + "x", 1),
        ("block mappings", "".join(" " * i + "a:\n" for i in range(1_400)), MAX_DEPTH + 1),
    ],
)
def test_deep_nesting_is_refused_at_the_limit(name, text, line):
    assert len(text.encode()) <= MAX_BYTES, name
    with pytest.raises(YamlError, match="nesting deeper than 50 levels") as info:
        load_yaml_text(text, "deep.yaml", allow_aliases=True)
    assert info.value.line == line
    assert node_index(text) == {}


def test_depth_50_is_fine():
    assert load_yaml_text("[" * MAX_DEPTH + "]" * MAX_DEPTH) == _nested(MAX_DEPTH)


def _nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_deep_nesting_cannot_crash_the_c_loader():
    """In a child process: a segfault or a hang would show as a signal or a timeout."""
    code = textwrap.dedent("""
        from ita_vc.yaml_read import YamlError, load_yaml_text, node_index
        from ita_vc.yaml_rewrite import YamlEditError, load_rt
        for text in ("[" * 1_000_000, "{a: " * 200_000, "- " * 500_000 + "x",
                     "a: " + "[" * 60 + "]" * 60):
            for fn in (load_yaml_text, load_rt):
                try:
                    fn(text)
                except (YamlError, YamlEditError) as exc:
                    assert "nesting deeper than 50" in str(exc) or "limit" in str(exc), exc
                else:
                    raise SystemExit("accepted")
            assert node_index(text) == {}
        print("ok")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr


def test_size_limit_and_non_regular_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_BYTES)
    with pytest.raises(
        YamlError,
        match=r"big.yaml: file is 1,048,579 bytes, the limit is "
        r"1,048,576",
    ):
        load_yaml_file(big)
    with pytest.raises(YamlError, match="the limit"):
        load_yaml_text("a: " + "é" * (MAX_BYTES // 2))
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(YamlError, match="fifo.yaml: not a regular file"):
        read_text_file(fifo)  # never blocks waiting for a writer
    with pytest.raises(YamlError, match="not a regular file"):
        read_text_file("/dev/zero")
    with pytest.raises(YamlError, match="not valid UTF-8 text"):
        load_yaml_text("a: \ud800")


def test_node_index_reuses_the_composed_graph_and_walks_shared_nodes_once():
    text = "a: &a {x: 1, y: [1, 2]}\nb: *a\nc: [*a, *a]\n"
    root = compose_yaml(text, allow_aliases=True)
    index = node_index(root)
    assert index["a.x"] == (1, "1")
    assert index["a.y.1"] == (1, "2")
    assert "b.x" not in index and "c.0.x" not in index  # the shared mapping is indexed once
    assert index["b"] == (2, None) and index["c"] == (3, None)
    assert index["c.1"] == (1, None)  # an alias item points at the anchored node
    doc = load_yaml_document(text, "p", allow_aliases=True)
    assert doc.data["c"][1] == {"x": 1, "y": [1, 2]}
    assert doc.line("c") == 3 and doc.raw("a.x") == "1"


def test_values_yaml_cannot_construct_name_their_line():
    with pytest.raises(YamlError, match=r"p:2: cannot read the value '2021-02-30'"):
        load_yaml_text("a: 1\nb: 2021-02-30\n", "p")
    with pytest.raises(YamlError, match=r"p:1: cannot read the value '9999"):
        load_yaml_text("a: " + "9" * 5000, "p")


def test_round_trip_loads_see_only_text_within_the_limits():
    from ita_vc.yaml_rewrite import YamlEditError, load_rt

    with pytest.raises(YamlEditError, match="anchors and aliases are not allowed in r.yaml"):
        load_rt(BOMB, "r.yaml")
    with pytest.raises(YamlEditError, match="more than 10,000 nodes after expanding"):
        load_rt(BOMB, "params.yaml", allow_aliases=True)
    assert load_rt("a: &x 1\nb: *x\n", "params.yaml", allow_aliases=True)["b"] == 1


# -- every command that reads these files ------------------------------------------------------
_CONFIG_MSG = (
    "configs/config.yaml:{line}: anchors and aliases are not allowed in configs/config.yaml"
)


@pytest.mark.parametrize(
    "command",
    [
        ("data", "status"),
        ("rule", "list"),
        ("rule", "check"),
        ("rule", "check", "--all"),
        ("gc", "--dry-run"),
    ],
)
def test_a_bomb_in_config_yaml_is_refused_fast(tmp_repo, command):
    config = tmp_repo / "configs/config.yaml"
    lines = config.read_text().count("\n")
    config.write_text(config.read_text() + _under("x_bomb"))
    _commit_all(tmp_repo)
    before = _digest(tmp_repo)
    proc = _cli(tmp_repo, *command)
    assert proc.returncode == 8, proc.stderr
    assert _CONFIG_MSG.format(line=lines + 2) in proc.stderr
    assert _digest(tmp_repo) == before


def test_a_bomb_in_a_rule_file_is_refused_by_list_check_and_the_hook(tmp_repo):
    from ita_vc.rules.hook_install import install_hooks
    from ita_vc.rules.registry import RuleRegistry
    from ita_vc.workspace import Workspace

    install_hooks(tmp_repo, with_dvc=False)
    RuleRegistry(Workspace.at(tmp_repo)).new("Frank", author="t")
    rule = tmp_repo / "rules/Frank/v1.0.yaml"
    rule.write_text(rule.read_text() + _under("rules_bomb"))
    tmp_repo.git("add", "-A")
    before = _digest(tmp_repo)
    head = tmp_repo.git("rev-parse", "HEAD").stdout
    message = (
        "rules/Frank/v1.0.yaml:22: anchors and aliases are not allowed in rules/Frank/v1.0.yaml"
    )
    for command in (("rule", "check"), ("rule", "check", "--all"), ("rule", "list")):
        proc = _cli(tmp_repo, *command)
        assert proc.returncode == 4, (command, proc.stderr)
        assert message in proc.stderr
    hook = subprocess.run(
        [str(tmp_repo / ".git/hooks/pre-commit")],
        cwd=tmp_repo,
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )
    assert hook.returncode == 4 and message in hook.stderr
    commit = subprocess.run(
        ["git", "commit", "-q", "-m", "bomb"],
        cwd=tmp_repo,
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )
    assert commit.returncode == 1 and message in commit.stderr  # git: 1 when a hook refuses
    assert tmp_repo.git("rev-parse", "HEAD").stdout == head
    assert _digest(tmp_repo) == before


def test_a_bomb_in_a_lifecycle_file(tmp_repo):
    from ita_vc.rules.registry import RuleRegistry
    from ita_vc.workspace import Workspace

    RuleRegistry(Workspace.at(tmp_repo)).new("Frank", author="t")
    (tmp_repo / "rules/Frank/lifecycle.yaml").write_text(
        "schema_version: 1\nsetup_id: Frank\nversions: {}\n" + _under("extra")
    )
    before = _digest(tmp_repo)
    message = "rules/Frank/lifecycle.yaml:5: anchors and aliases are not allowed"
    for command in (
        ("rule", "list"),
        ("rule", "check", "--all"),
        ("rule", "activate", "Frank", "1.0"),
    ):
        proc = _cli(tmp_repo, *command)
        assert proc.returncode == 4, (command, proc.stderr)
        assert message in proc.stderr
    assert _digest(tmp_repo) == before


@pytest.mark.parametrize(
    ("file", "command"),
    [
        ("configs/indicators.yaml", ("rule", "check", "--all")),
        ("configs/indicators.yaml", ("indicators", "list")),
        ("configs/retention.yaml", ("gc", "--dry-run")),
    ],
)
def test_a_bomb_in_the_catalog_or_the_retention_policy(tmp_repo, file, command):
    path = tmp_repo / file
    lines = path.read_text().count("\n")
    path.write_text(path.read_text() + _under("x_bomb"))
    _commit_all(tmp_repo)
    before = _digest(tmp_repo)
    proc = _cli(tmp_repo, *command)
    assert proc.returncode == 8, proc.stderr
    assert f"{file}:{lines + 2}: anchors and aliases are not allowed in {file}" in proc.stderr
    assert _digest(tmp_repo) == before


def test_a_bomb_in_params_yaml_is_capped(tmp_repo):
    params = tmp_repo / "params.yaml"
    lines = params.read_text().count("\n")
    params.write_text(params.read_text() + _under("x_bomb"))
    _commit_all(tmp_repo)
    before = _digest(tmp_repo)
    for command in (("run",), ("grid", "run")):
        proc = _cli(tmp_repo, *command)
        assert proc.returncode == 11, (command, proc.stderr)
        assert (
            f"params.yaml:{lines + 6}: more than 10,000 nodes after expanding aliases"
            in proc.stderr
        )
    assert _digest(tmp_repo) == before


def test_anchors_in_params_yaml_still_work(tmp_repo):
    from ita_vc.pipeline.stages import load_params_file

    params = tmp_repo / "params.yaml"
    params.write_text(
        params.read_text().replace(
            "  market: binance-spot", "  market: &m binance-spot\n  other_market: *m"
        )
    )
    assert load_params_file(tmp_repo)["data"]["other_market"] == "binance-spot"


def test_a_fifo_as_retention_yaml_does_not_hang(tmp_repo):
    policy = tmp_repo / "configs/retention.yaml"
    policy.unlink()
    os.mkfifo(policy)
    proc = _cli(tmp_repo, "gc", "--dry-run", timeout=60)
    assert proc.returncode == 8
    assert "configs/retention.yaml: not a regular file" in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: *b", r"p:1: anchors and aliases are not allowed in p \(found \*b\)"),
        ("a: &x 1\nb: &x 2", r"p:2: duplicate anchor &x"),
        ("a: 1\n---\nb: 2", r"p:2: expected a single document in the stream, but found another"),
        ("x" * (MAX_BYTES + 1), r"p: more than 1,048,576 bytes \(the limit\)"),
        ("a: [1, 2", r"p:2: did not find expected ',' or '\]'"),
        ("a: !!timestamp x", r"p:1: cannot read the value 'x'"),
    ],
)
def test_loader_refusals_name_the_line(text, message):
    allow = "duplicate" in message
    with pytest.raises(YamlError, match=message):
        load_yaml_text(text, "p", allow_aliases=allow)


def test_reading_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(YamlError, match="missing.yaml: cannot read: No such file"):
        read_text_file(tmp_path / "missing.yaml")
    with pytest.raises(YamlError, match="not a regular file"):
        read_text_file(tmp_path)


_PARAM = "{type: int, min: 2, max: 500, step: 1, default: 20}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  1: {params: {}}", "2: indicators.1: indicator names are identifiers, got 1"),
        (
            f"  sma:\n    params: {{1: {_PARAM}}}",
            "3: indicators.sma.params.1: parameter names are identifiers, got 1",
        ),
        (
            "  sma:\n    params: {w: {type: int}}",
            "3: indicators.sma.params.w.default: is required\n"
            "configs/indicators.yaml:3: indicators.sma.params.w.max: is required\n"
            "configs/indicators.yaml:3: indicators.sma.params.w.min: is required\n"
            "configs/indicators.yaml:3: indicators.sma.params.w.step: is required$",
        ),
        (
            "  sma:\n    params: {w: {type: [1], min: 1, max: 2, step: 1, default: 1}}",
            r"3: indicators.sma.params.w.type: \[1\] is not a parameter type: int, float",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('500', '1' + '0' * 400)}}}",
            "3: indicators.sma.params.w.max: must be a finite number, got an integer of 1329 bits",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('step: 1', 'step: .inf')}}}",
            "3: indicators.sma.params.w.step: must be a finite number, got inf",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('step: 1', 'step: 0')}}}",
            "3: indicators.sma.params.w.step: must be > 0, got 0",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('default: 20', 'default: 1')}}}",
            r"3: indicators.sma.params.w.default: inconsistent default: 1 is outside the "
            r"catalog range \[2, 500\]",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('default: 20', 'default: 2.5')}}}",
            "3: indicators.sma.params.w.default: inconsistent default: must be a whole number, "
            "got 2.5",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('min: 2', 'min: 600')}}}",
            "3: indicators.sma.params.w.min: inconsistent bounds: min 600 > max 500",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM.replace('type: int', 'type: int, kind: x')}}}",
            r"3: indicators.sma.params.w.kind: unknown key "
            r"\(allowed: default, max, min, step, type\)",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM}}}\n    constraint: ['w < w']",
            r"4: indicators.sma.constraint: unknown key "
            r"\(allowed: constraints, description, params\)",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM}}}\n    constraints: 5",
            r"4: indicators.sma.constraints: must be a list such as \['fast < slow'\], got 5",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM}}}\n    constraints: ['w < x']",
            "4: indicators.sma.constraints.0: cannot read 'w < x'",
        ),
        (
            f"  sma:\n    params: {{w: {_PARAM}}}\n    description: [1]",
            r"4: indicators.sma.description: must be a string, got \[1\] \(list\)",
        ),
    ],
)
def test_a_hostile_catalog_is_a_config_error(tmp_path, body, message):
    from ita_vc.catalog import CATALOG_RELPATH, load_catalog
    from ita_vc.errors import ConfigError

    path = tmp_path / CATALOG_RELPATH
    path.parent.mkdir(parents=True)
    path.write_text(f"indicators:\n{body}\n")
    with pytest.raises(ConfigError, match=f"^configs/indicators.yaml:{message}"):
        load_catalog(tmp_path)


def test_a_catalog_reports_every_problem_at_once(tmp_path):
    from ita_vc.catalog import CATALOG_RELPATH, load_catalog
    from ita_vc.errors import ConfigError

    path = tmp_path / CATALOG_RELPATH
    path.parent.mkdir(parents=True)
    path.write_text(
        "schema_version: 1\n"
        "indicators:\n"
        "  sma:\n"
        "    params:\n"
        "      w: {type: int, min: 2, max: 50, step: 0, default: 99}\n"
        "    constraints: ['w < v']\n"
        "  ema:\n"
        "    params: {n: {type: real, min: 1, max: 2, step: 1, default: 1}}\n"
        "colour: blue\n"
    )
    with pytest.raises(ConfigError) as info:
        load_catalog(tmp_path)
    assert str(info.value).splitlines() == [
        "configs/indicators.yaml:8: indicators.ema.params.n.type: 'real' is not a parameter "
        "type: int, float",
        "configs/indicators.yaml:9: colour: unknown key (allowed: indicators, schema_version)",
    ]  # the shape first: the named checks run on a catalog of the right shape
    path.write_text(path.read_text().replace("real", "float").replace("colour: blue\n", ""))
    with pytest.raises(ConfigError) as info:
        load_catalog(tmp_path)
    assert str(info.value).splitlines() == [
        "configs/indicators.yaml:5: indicators.sma.params.w.default: inconsistent default: 99 "
        "is outside the catalog range [2, 50]",
        "configs/indicators.yaml:5: indicators.sma.params.w.step: must be > 0, got 0",
        "configs/indicators.yaml:6: indicators.sma.constraints.0: cannot read 'w < v': write "
        "'<param> < <param>' or '<=' over w",
    ]


def test_catalog_parameter_checks_never_crash():
    from ita_vc.catalog import load_catalog

    sma = load_catalog(None).get("sma")
    assert sma is not None
    window = sma.params["window"]
    assert window.check(10**400) == f"must be finite, got {10**400!r}"
    assert window.check(True) == "must be a number, got True"
    assert window.check(2.5) == "must be a whole number, got 2.5"
    assert window.check(float("nan")) == "must be finite, got nan"
