"""docs/schema.md's column reference is generated from schemas/ and must not drift."""

from schemas.docs import SCHEMA_DOC, _ALL_TABLES, render


def test_column_reference_matches_the_schema():
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    for name in _ALL_TABLES:
        assert f"<!-- BEGIN schema:{name} -->" in text, f"docs/schema.md lacks the column reference of {name}"
    assert render(text) == text, "docs/schema.md column reference is stale: run `make docs`"


def test_render_replaces_a_stale_block():
    stale = "<!-- BEGIN schema:errors -->\n| old |\n<!-- END schema:errors -->"
    fresh = render(stale)
    assert "| old |" not in fresh and "`stage`" in fresh
