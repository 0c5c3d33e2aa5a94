"""docs/operators.md's roles table says what dashboard/permissions.py grants: every role a
column in ROLES' order, every permission a row with its words and its code, each tick a
grant. A permission or role added to the code without the table (or the other way round)
fails here."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.permissions import PERMISSIONS, ROLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
TICK = "✓"


def _roles_table() -> tuple[list[str], dict[str, tuple[str, set[str]]]]:
    """(the role columns, permission code -> (its words, the roles ticked))."""
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| What one may do |"))
    roles = [cell.strip() for cell in lines[start].strip("|").split("|")][1:]
    rows: dict[str, tuple[str, set[str]]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"(.+) \(`(\w+)`\)", cells[0])
        assert found, f"a row names its permission's code in backticks: {line}"
        ticked = {role for role, cell in zip(roles, cells[1:], strict=True) if cell == TICK}
        assert all(cell in ("", TICK) for cell in cells[1:]), line
        rows[found[2]] = (found[1], ticked)
    return roles, rows


def test_the_roles_table_is_the_code_s() -> None:
    roles, rows = _roles_table()
    assert roles == list(ROLES)
    assert list(rows) == list(PERMISSIONS), "one row per permission, in PERMISSIONS' order"
    for permission, (words, ticked) in rows.items():
        assert words == str(PERMISSIONS[permission]), permission
        assert ticked == {role for role in ROLES if permission in ROLES[role]}, permission


def test_the_contents_list_names_every_section() -> None:
    text = DOC.read_text()
    sections = [h for h in re.findall(r"^## (.+)$", text, re.M) if h != "Contents"]
    listed = re.findall(r"^- \[(.+?)\]\(#", text, re.M)
    assert set(sections) <= set(listed), set(sections) - set(listed)
