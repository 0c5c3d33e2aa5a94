"""The house rules a newcomer can rely on: small files, short functions (issue 9).

Product code only: tests, migrations and benchmarks are excluded. The limits are the
issue's: no file over 600 lines, no function over 80. The browser scripts (static/**/*.js)
are held to the file limit too; their functions are not measured, as that would need a
JavaScript parser here (keep them to one concern each, as static/driver/ does).
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


def browser_scripts(root: Path = ROOT) -> list[Path]:
    return sorted(path for path in (root / "static").rglob("*.js")
                  if "node_modules" not in path.parts)


def test_browser_scripts_are_found():
    names = {str(path.relative_to(ROOT)) for path in browser_scripts()}
    assert "static/driver/common.js" in names


def line_counts(paths: list[Path], root: Path = ROOT) -> dict[str, int]:
    """A simple line count per file, for the files over the limit."""
    return {str(path.relative_to(root)): count for path in paths
            if (count := len(path.read_text().splitlines())) > MAX_FILE_LINES}


def long_files() -> dict[str, int]:
    return line_counts(product_files() + browser_scripts())


@pytest.mark.parametrize("lines, expected", [(MAX_FILE_LINES, 0), (MAX_FILE_LINES + 1, 1)])
def test_the_file_check_can_fail_for_a_browser_script(tmp_path, lines, expected):
    (tmp_path / "static" / "driver").mkdir(parents=True)
    (tmp_path / "static" / "driver" / "big.js").write_text("let x = 1;\n" * lines)
    assert len(line_counts(browser_scripts(tmp_path), root=tmp_path)) == expected


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
