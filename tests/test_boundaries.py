"""Boundaries the tools enforce: no import cycle at module level, entry points that stay light,
and git/DVC reached only through ``ita_vc.vcs`` (ruff's banned-api rule, checked by ``ruff``)."""

from __future__ import annotations

import sys
from pathlib import Path

from ita_vc.retention.trash import Trash
from tests.helpers import REPO_ROOT, run


def test_no_module_level_import_cycle_and_light_entry_points():
    proc = run(
        [sys.executable, str(REPO_ROOT / "scripts" / "import_graph.py")], cwd=REPO_ROOT, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cycles (module-level imports): 0" in proc.stdout
    for entry in ("import ita_vc", "ita-vc --help", "the pre-commit hook"):
        assert f"{entry}: imports nothing heavy" in proc.stdout


def test_the_graph_script_names_a_cycle_and_a_heavy_entry_point():
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import import_graph as graph
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    edges = {"ita_vc.a": {"ita_vc.b"}, "ita_vc.b": {"ita_vc.a", "pandas"}, "ita_vc.c": set()}
    assert graph.cycles(edges) == [["ita_vc.a", "ita_vc.b"]]
    assert graph.reach(edges, "ita_vc.a")["pandas"] == ["ita_vc.a", "ita_vc.b", "pandas"]


def test_verify_finds_trashed_objects_where_the_trash_puts_them(workspace):
    oid = "0123456789abcdef0123456789abcdef.dir"
    trash = Trash(workspace, Path(workspace.root / ".dvc" / "cache"))
    assert (
        workspace.trashed_object_path(oid)
        == trash.trash_path(oid)
        == trash.objects / "01" / oid[2:]
    )


def test_only_vcs_imports_dvc_or_gitpython():
    """ruff's banned-api covers the core; ``ita_vc/cli/`` is exempt from it (for typer and
    rich), so this checks the whole package, the CLI included."""
    import ast

    banned = ("dvc", "dvc_data", "dvc_objects", "git")
    offenders = []
    for path in sorted((REPO_ROOT / "ita_vc").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith("ita_vc/vcs/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [f"{rel}:{node.lineno}: {n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []
