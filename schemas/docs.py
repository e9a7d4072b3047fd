"""Keeps the README's column reference generated from schemas/ (``make docs``).

Blocks between ``<!-- BEGIN schema:<table> -->`` and ``<!-- END schema:<table> -->``
are replaced by the table's column list; a test fails when the README is stale.
"""

from __future__ import annotations

import pathlib
import re
import sys

from schemas.article import DEDUP_INDEX, TABLES, markdown_table

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
README = PROJECT_ROOT / "README.md"
_BLOCK = re.compile(r"(<!-- BEGIN schema:(?P<name>[a-z_]+) -->\n).*?(<!-- END schema:(?P=name) -->)", re.S)
_ALL_TABLES = {**TABLES, DEDUP_INDEX.name: DEDUP_INDEX}


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        table = _ALL_TABLES[match["name"]]
        return f"{match.group(1)}{markdown_table(table)}\n{match.group(3)}"
    return _BLOCK.sub(replace, text)


def replace_block(start: str, end: str, content: str, path: pathlib.Path = README) -> None:
    """Replace the text between the ``start`` and ``end`` markers (generated figures)."""
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{content}\n{end}{tail}", encoding="utf-8")


def main() -> int:
    text = README.read_text(encoding="utf-8")
    updated = render(text)
    if updated != text:
        README.write_text(updated, encoding="utf-8")
        print(f"updated the column reference in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
