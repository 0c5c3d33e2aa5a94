"""docs/architecture.md lists what the code has: its generated tables are up to date."""

from tools import architecture


def test_the_generated_tables_match_the_code():
    current = architecture.DOC.read_text()
    assert architecture.render(current) == current, (
        "docs/architecture.md is out of date: run python -m tools.architecture"
    )


def test_every_product_module_says_what_it_holds():
    silent = [str(path.relative_to(architecture.ROOT)) for path in architecture.product_modules()
              if not architecture._summary(path) and path.read_text().strip()]
    assert not silent, f"modules without a docstring: {silent}"


def test_a_stale_table_is_noticed():
    stale = "<!-- generated:settings -->\n| old |\n<!-- end:settings -->"
    for name in architecture.SECTIONS:
        if name != "settings":
            stale += f"\n<!-- generated:{name} -->\n<!-- end:{name} -->"
    assert architecture.render(stale) != stale


def test_every_test_file_the_docs_name_exists():
    import re

    named = {(doc.name, path)
             for doc in [*architecture.ROOT.glob("docs/*.md"), architecture.ROOT / "README.md"]
             for path in re.findall(r"tests/[\w/]+\.py", doc.read_text())}
    missing = sorted(item for item in named if not (architecture.ROOT / item[1]).exists())
    assert not missing, f"docs name test files that do not exist: {missing}"
