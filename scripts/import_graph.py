"""The import graph of ita_vc, read from the source (nothing is imported).

Usage: python scripts/import_graph.py [--heavy MODULE ...] [--why MODULE]

- cycles: strongly connected components among ita_vc modules, once over module-level imports
  only (these break at import time) and once counting function-level imports too (cycles a
  lazy import hides);
- heavy: for each entry point (``import ita_vc``, ``ita-vc --help``, the pre-commit hook), the
  heavy third-party packages (dvc, pandas, pyarrow, numba, matplotlib, git, ...) reached
  through module-level imports alone, with one chain that reaches each;
- ``--heavy M ...``: what module M reaches. ``TYPE_CHECKING`` blocks never count.

Exits 1 on a module-level cycle or an entry point that reaches what it must not. Importing
  ``a.b.c`` also imports the packages ``a`` and ``a.b`` (their ``__init__``).
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ita_vc"
HEAVY = (
    "dvc",
    "dvc_data",
    "dvc_objects",
    "scmrepo",
    "git",
    "pandas",
    "pyarrow",
    "numpy",
    "numba",
    "matplotlib",
    "dask",
)
UI = ("typer", "rich", "click")
ENTRIES = {  # what each entry point imports first, and what it must not reach at import time
    "import ita_vc": (("ita_vc",), HEAVY + UI),
    "ita-vc --help": (("ita_vc.cli", "ita_vc.cli.*"), HEAVY),  # registering imports every command
    # the hook, with the modules its check loads when it runs (rules.check imports them inside)
    "the pre-commit hook": (
        (
            "ita_vc.rules.hook_entry",
            "ita_vc._hook",
            "ita_vc.rules.check",
            "ita_vc.workspace",
            "ita_vc.config",
            "ita_vc.catalog",
        ),
        HEAVY + UI,
    ),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for every runtime import."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, top)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, top) for alias in node.names)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((base, top))
            out.extend((f"{base}.{alias.name}", top) for alias in node.names)
            return
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for stmt in tree.body:
        visit(stmt, True)
    return out


def _expand(name: str, known: dict[str, Path]) -> list[str]:
    """The modules importing ``name`` runs: every parent package, then the module."""
    parts = name.split(".")
    chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
    if parts[0] != PACKAGE:
        return [parts[0]]
    return [m for m in chain if m in known]


def build() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(module-level edges, all edges)``; third-party targets by top-level name."""
    known = _modules()
    top: dict[str, set[str]] = {m: set() for m in known}
    every: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, at_top in _imports(tree, module, path.name == "__init__.py"):
            for target in _expand(name, known):
                if target == module:
                    continue
                every[module].add(target)
                if at_top:
                    top[module].add(target)
        parents = module.split(".")[:-1]
        for i in range(1, len(parents) + 1):  # a submodule's import runs its packages first
            parent = ".".join(parents[:i])
            top[module].add(parent)
            every[module].add(parent)
    return top, every


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring the edge from
    a submodule to its own parent package (that is how packages work, not a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def edges(node: str) -> list[str]:
        return sorted(t for t in graph.get(node, ()) if t in graph and not node.startswith(t + "."))

    sys.setrecursionlimit(10_000)

    def strong(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for target in edges(node):
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in on:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return found


def _collapse(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between subpackages (``ita_vc.snapshot``...) and top-level modules."""

    def unit(name: str) -> str:
        return ".".join(name.split(".")[:2])

    out: dict[str, set[str]] = {}
    for source, targets in graph.items():
        if source == PACKAGE:
            continue
        row = out.setdefault(unit(source), set())
        row.update(
            unit(t) for t in targets if t.startswith(PACKAGE + ".") and unit(t) != unit(source)
        )
    return out


def reach(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module reachable from ``start``, with one shortest chain to it."""
    chains = {start: [start]}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph.get(node, ())):
            if target not in chains:
                chains[target] = [*chains[node], target]
                if target in graph:
                    queue.append(target)
    return chains


def main(argv: list[str]) -> int:
    top, every = build()
    status = 0
    packages = _collapse(every)
    for label, graph in (
        ("module-level", top),
        ("with function-level", every),
        ("between subpackages", packages),
    ):
        found = cycles(graph)
        print(f"cycles ({label} imports): {len(found)}")
        for component in found:
            print("  " + " <-> ".join(component))
        if label == "module-level" and found:
            status = 1
    if "--heavy" in argv:
        entries = {m: ((m,), HEAVY + UI) for m in argv[argv.index("--heavy") + 1 :]}
    else:
        entries = ENTRIES
    for label, (starts, banned) in entries.items():
        chains: dict[str, list[str]] = {}
        for start in starts:
            names = (
                [m for m in sorted(top) if m.startswith(start[:-1])]
                if start.endswith("*")
                else [start]
            )
            for name in names:
                for target, chain in reach(top, name).items():
                    if target not in chains or len(chain) < len(chains[target]):
                        chains[target] = chain
        heavy = {h: chains[h] for h in banned if h in chains}
        print(f"{label}: imports {', '.join(heavy) or 'nothing heavy'}")
        for chain in heavy.values():
            print("    " + " -> ".join(chain))
        status |= bool(heavy)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
