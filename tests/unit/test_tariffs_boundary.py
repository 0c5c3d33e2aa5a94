"""The tariff engine depends on nothing else of ScanCharge (issue 9, DESIGN.md: module
boundaries): no ocpi/, no charging/, no app; payments.money, the pure money rules, and i18n,
the gettext catalogues and Babel's formats the tariff in words is written with (Babel alone at
import, no Flask), are the exceptions. The protocol edge converts to the engine's own types,
never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"tariffs", "payments.money", "i18n"}


def first_party() -> set[str]:
    names = {p.stem for p in ROOT.glob("*.py")}
    names |= {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    return names - {"tests", "migrations", "bench"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_tariff_engine_imports_nothing_else_of_scancharge() -> None:
    ours = first_party()
    assert {"ocpi", "charging", "payments", "tariffs"} <= ours
    wrong = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "tariffs").glob("*.py"))
        for name in imports(path)
        if name.split(".")[0] in ours
        and not any(name == ok or name.startswith(ok + ".") for ok in ALLOWED)
    )
    assert not wrong, wrong
