"""Regenerate the tables in docs/architecture.md from the code: `python -m tools.architecture`.

The document's prose is written by hand; the parts that list things (modules, settings,
tasks, signal receivers) sit between `<!-- generated:NAME -->` and `<!-- end:NAME -->`
markers and are rebuilt from the code, so they cannot drift. `--check` exits 1 when the
document is out of date (tests/unit/test_architecture_doc.py runs it).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
EXCLUDED = {"tests", "migrations", "bench", "docs", "tools", "static", "templates",
            "translations", "instance"}


def product_modules() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in EXCLUDED or any(part.startswith(".") for part in parts):
            continue
        found.append(path)
    return found


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    if not doc:
        return ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split())


def layout_table() -> str:
    rows = ["| Module | What it holds |", "|---|---|"]
    for path in product_modules():
        name = str(path.relative_to(ROOT))
        rows.append(f"| `{name}` | {_summary(path).replace('|', '/')} |")
    return "\n".join(rows)


def _comment_above(lines: list[str], lineno: int) -> str:
    comment: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        comment.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return " ".join(comment)


def _env_and_default(value: ast.expr) -> tuple[str, str] | None:
    for node in ast.walk(value):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        if name in {"get", "_int", "_bool"} and isinstance(first, ast.Constant) \
                and isinstance(first.value, str):
            default = ast.unparse(node.args[1]) if len(node.args) > 1 else '""'
            return first.value, default
    return None


def settings_table() -> str:
    source = (ROOT / "config.py").read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    config = next(node for node in tree.body
                  if isinstance(node, ast.ClassDef) and node.name == "Config")
    rows = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for node in config.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        found = _env_and_default(node.value)
        if found is None:
            continue
        env, default = found
        meaning = _comment_above(lines, node.lineno).replace("|", "/")
        rows.append(f"| `{target.id}` | `{env}` | `{default}` | {meaning} |")
    return "\n".join(rows)


def _enqueuers() -> dict[str, set[str]]:
    """Which functions enqueue which handle: `name.enqueue(...)` / `.enqueue_after_commit(...)`.

    Keyed by the handle's variable name as call sites write it (the last name before
    `.enqueue`); a call through a variable (`task.enqueue`) is listed under that variable.
    """
    found: dict[str, set[str]] = {}
    for path in product_modules():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in {"enqueue", "enqueue_after_commit"}:
                    target = node.func.value
                    name = target.attr if isinstance(target, ast.Attribute) \
                        else getattr(target, "id", "")
                    found.setdefault(name, set()).add(f"{module}.{function.name}")
    return found


def tasks_table() -> str:
    sys.path.insert(0, str(ROOT))
    import wiring
    from jobs import PeriodicTask

    enqueuers = _enqueuers()
    rows = ["| Task | Function | Runs | Enqueued from |", "|---|---|---|---|"]
    for handle in sorted(wiring.tasks(), key=lambda h: h.name):
        runs = f"every `{handle.setting}`" if isinstance(handle, PeriodicTask) else "when enqueued"
        callers = sorted(enqueuers.get(handle.fn.__name__, set()))
        where = ", ".join(f"`{caller}`" for caller in callers) or "(the worker's schedule)"
        rows.append(f"| `{handle.name}` | `{handle.fn.__module__}.{handle.fn.__name__}` "
                    f"| {runs} | {where} |")
    return "\n".join(rows)


def _signal_owner(signal: object) -> str:
    from ocpi import signals as ocpi_signals
    from payments import signals as payment_signals

    for module in (ocpi_signals, payment_signals):
        for name, value in vars(module).items():
            if value is signal:
                return f"{module.__name__}.{name}"
    raise LookupError(f"signal {signal!r} is not declared in ocpi.signals or payments.signals")


def receivers_table() -> str:
    sys.path.insert(0, str(ROOT))
    import wiring

    rows = ["| Signal | Receiver | Runs |", "|---|---|---|"]
    for receiver in wiring.RECEIVERS:
        handler = receiver.handler
        rows.append(f"| `{_signal_owner(receiver.signal)}` "
                    f"| `{handler.__module__}.{handler.__name__}` | {receiver.kind.value} |")
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "layout": layout_table,
    "settings": settings_table,
    "tasks": tasks_table,
    "receivers": receivers_table,
}


def _replace(table: str, match: re.Match[str]) -> str:
    return match[1] + table + "\n" + match[2]


def render(text: str) -> str:
    for name, build in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"docs/architecture.md has no generated:{name} markers")
        text = pattern.sub(partial(_replace, build()), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is stale")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("docs/architecture.md is out of date: run python -m tools.architecture",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
