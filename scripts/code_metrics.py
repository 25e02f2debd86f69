"""Code-health numbers quoted in closing notes: radon grades, `Any` density, lazy imports.

Usage: python scripts/code_metrics.py [PACKAGE_DIR]   (needs `radon`, in the dev group)

- complexity: functions at radon grade D or worse (cyclomatic complexity > 20), and the worst five;
- ``Any`` per 1,000 lines: occurrences of the name ``Any`` in code (not in strings or comments);
- function-level imports in the core: ``import`` statements inside a function body outside
  ``ita_vc/cli/`` (the CLI boundary imports lazily on purpose: ``--help`` and hook speed).
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

from radon.complexity import cc_rank, cc_visit


def _any_count(source: str) -> int:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return sum(1 for tok in tokens if tok.type == tokenize.NAME and tok.string == "Any")


def _function_imports(tree: ast.AST) -> int:
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and inner is not node:
                    count += 1
    return count


def main(root: Path) -> None:
    blocks: list[tuple[int, str]] = []
    lines = anys = lazy = 0
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        rel = path.as_posix()
        lines += source.count("\n")
        anys += _any_count(source)
        if "/cli/" not in rel:
            lazy += _function_imports(ast.parse(source))
        for block in cc_visit(source):
            name = getattr(block, "fullname", block.name)
            blocks.append((block.complexity, f"{rel}:{name}"))
    bad = sorted((b for b in blocks if cc_rank(b[0]) in "DEF"), reverse=True)
    print(f"lines: {lines}")
    print(f"functions at grade D or worse: {len(bad)} (the worst five:)")
    for complexity, name in bad[:5]:
        print(f"  {cc_rank(complexity)} {complexity:3d}  {name}")
    print(f"Any per 1,000 lines: {1000 * anys / lines:.1f} ({anys} in {lines} lines)")
    print(f"function-level imports outside ita_vc/cli/: {lazy}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "ita_vc"))
