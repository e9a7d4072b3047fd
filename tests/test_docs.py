"""The README's column reference is generated from schemas/ and must not drift."""

from schemas.docs import README, _ALL_TABLES, render


def test_readme_column_reference_matches_the_schema():
    text = README.read_text(encoding="utf-8")
    for name in _ALL_TABLES:
        assert f"<!-- BEGIN schema:{name} -->" in text, f"README lacks the column reference of {name}"
    assert render(text) == text, "README column reference is stale: run `make docs`"
