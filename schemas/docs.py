"""Keeps the column reference in docs/schema.md generated from schemas/ (``make docs``).

Blocks between ``<!-- BEGIN schema:<table> -->`` and ``<!-- END schema:<table> -->``
are replaced by the table's column list; a test fails when docs/schema.md is stale.
This is the only file the tool writes.
"""

from __future__ import annotations

import pathlib
import re
import sys

from schemas.article import DEDUP_INDEX, TABLES, markdown_table

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA_DOC = PROJECT_ROOT / "docs" / "schema.md"
_BLOCK = re.compile(r"(<!-- BEGIN schema:(?P<name>[a-z_]+) -->\n).*?(<!-- END schema:(?P=name) -->)", re.S)
_ALL_TABLES = {**TABLES, DEDUP_INDEX.name: DEDUP_INDEX}


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        table = _ALL_TABLES[match["name"]]
        return f"{match.group(1)}{markdown_table(table)}\n{match.group(3)}"
    return _BLOCK.sub(replace, text)


def main() -> int:
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    updated = render(text)
    if updated != text:
        SCHEMA_DOC.write_text(updated, encoding="utf-8")
        print(f"updated the column reference in {SCHEMA_DOC.relative_to(PROJECT_ROOT)}")
    else:
        print(f"{SCHEMA_DOC.relative_to(PROJECT_ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
