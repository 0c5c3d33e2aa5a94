"""The house rules a newcomer can rely on: small files, short functions (issue 9).

Product code only: tests, migrations and benchmarks are excluded. The limits are the
issue's: no file over 600 lines, no function over 80.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = {"tests", "migrations", "bench", ".venv", ".venv-lock", "node_modules"}
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def product_files() -> list[Path]:
    return sorted(
        path for path in ROOT.rglob("*.py")
        if not EXCLUDED & set(path.relative_to(ROOT).parts[:-1])
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    )


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_product_files_are_found():
    names = {str(path.relative_to(ROOT)) for path in product_files()}
    assert "app.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_no_product_file_over_the_limit():
    long = [f"{path.relative_to(ROOT)} ({count} lines)" for path in product_files()
            if (count := len(path.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, f"files over {MAX_FILE_LINES} lines: split them: {long}"


def test_no_function_over_the_limit():
    long = [entry for path in product_files() for entry in long_functions(path)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 79, 0),
    ("def f():\n" + "    x = 1\n" * 80, 1),
    ("class A:\n    def m(self):\n" + "        x = 1\n" * 80, 1),
])
def test_the_function_check_can_fail(tmp_path, source, expected):
    sample = tmp_path / "sample.py"
    sample.write_text(source)
    assert len(long_functions(sample, root=tmp_path)) == expected
