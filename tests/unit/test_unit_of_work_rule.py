"""No handler ends a transaction by hand: in charging/, only unit_of_work.py commits or
rolls back (issue 9, "each handler runs inside one explicit unit of work")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"unit_of_work.py"}


def hand_made_transactions(path: Path) -> list[str]:
    """Every `.commit()` or `.rollback()` call in the file, as file:line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"commit", "rollback"}]


def test_only_the_unit_of_work_commits_or_rolls_back() -> None:
    files = [p for p in sorted((ROOT / "charging").glob("*.py")) if p.name not in ALLOWED]
    assert len(files) > 10
    found = [hit for path in files for hit in hand_made_transactions(path)]
    assert found == [], f"use charging.unit_of_work instead: {found}"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    db.session.commit()\n", 1),
    ("def f():\n    session.rollback()\n", 1),
    ("def f():\n    with locked_charge(1) as c:\n        c.status = 'X'\n", 0),
    ("def f():\n    commit = 1\n    return commit\n", 0),
])
def test_the_rule_can_fail(tmp_path: Path, source: str, expected: int) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(source)
    assert len(hand_made_transactions(sample)) == expected
