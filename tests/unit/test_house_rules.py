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

# Debt being paid off under issue 9, named so it cannot grow and cannot hide: each entry
# must still be over the limit (delete it once it is split) and no larger than written.
KNOWN_LONG_FILES: dict[str, int] = {
}
KNOWN_LONG_FUNCTIONS: dict[str, int] = {
}


def product_files() -> list[Path]:
    return sorted(
        path for path in ROOT.rglob("*.py")
        if not EXCLUDED & set(path.relative_to(ROOT).parts[:-1])
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    )


def long_functions(path: Path, root: Path = ROOT) -> dict[str, int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found[f"{path.relative_to(root)} {node.name}"] = length
    return found


def over_the_limit(found: dict[str, int], known: dict[str, int]) -> list[str]:
    """What breaks the rule and is not known debt, or is known debt that grew."""
    return [f"{name} ({size} lines)" for name, size in sorted(found.items())
            if size > known.get(name, 0)]


def test_product_files_are_found():
    names = {str(path.relative_to(ROOT)) for path in product_files()}
    assert "app.py" in names
    assert not any(name.startswith("tests/") for name in names)


def long_files() -> dict[str, int]:
    return {str(path.relative_to(ROOT)): count for path in product_files()
            if (count := len(path.read_text().splitlines())) > MAX_FILE_LINES}


def all_long_functions() -> dict[str, int]:
    return {name: size for path in product_files()
            for name, size in long_functions(path).items()}


def test_no_product_file_over_the_limit():
    long = over_the_limit(long_files(), KNOWN_LONG_FILES)
    assert not long, f"files over {MAX_FILE_LINES} lines: split them: {long}"


def test_no_function_over_the_limit():
    long = over_the_limit(all_long_functions(), KNOWN_LONG_FUNCTIONS)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_known_debt_is_still_owed():
    paid = sorted((set(KNOWN_LONG_FILES) - set(long_files()))
                  | (set(KNOWN_LONG_FUNCTIONS) - set(all_long_functions())))
    assert not paid, f"no longer over the limit: delete them from the known lists: {paid}"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 79, 0),
    ("def f():\n" + "    x = 1\n" * 80, 1),
    ("class A:\n    def m(self):\n" + "        x = 1\n" * 80, 1),
])
def test_the_function_check_can_fail(tmp_path, source, expected):
    sample = tmp_path / "sample.py"
    sample.write_text(source)
    assert len(long_functions(sample, root=tmp_path)) == expected
