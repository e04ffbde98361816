"""Size limits (issue 18): no module in src/ over 600 lines, no function over 60, so each
reads in one sitting. Nested functions and methods count on their own, from `def` to
their last line."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "dmvpnkit"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def oversized(root: Path) -> list[str]:
    """Each module and function over its limit, as `path:line: what (length)`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        shown = path.relative_to(root.parents[1])
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{shown}:1: module is {lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{shown}:{node.lineno}: function {node.name} is {length} lines "
                                 f"(limit {MAX_FUNCTION_LINES})")
    return found


def test_no_module_or_function_is_oversized() -> None:
    found = oversized(SRC)
    assert not found, f"{len(found)} over the size limits:\n" + "\n".join(found)


def test_an_oversized_function_is_named(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (pkg / "long.py").write_text("\n\ndef fine() -> None:\n    pass\n\n\ndef long() -> None:\n" + body)
    (pkg / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert oversized(pkg) == [
        f"src/pkg/big.py:1: module is {MAX_MODULE_LINES + 1} lines (limit {MAX_MODULE_LINES})",
        f"src/pkg/long.py:7: function long is {MAX_FUNCTION_LINES + 1} lines (limit {MAX_FUNCTION_LINES})",
    ]
