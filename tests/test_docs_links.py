"""Every relative link (and image) in README.md and docs/*.md resolves: the file exists, and an
#anchor names a heading of that file (GitHub's slug rules). The README stays a guide (<= 400 lines)."""

from __future__ import annotations

import pathlib
import re

import pytest

PROJECT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted([PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links(path: pathlib.Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [m.group(1) for m in LINK.finditer(text)]


def broken(path: pathlib.Path) -> list[str]:
    wrong = []
    for target in links(path):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            wrong.append(f"{target}: {resolved} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            wrong.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return wrong


@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(PROJECT).as_posix() for p in DOCS])
def test_relative_links_resolve(path):
    assert broken(path) == []


def test_the_checker_sees_broken_links(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n[ok](#title) [file](b.md) [gone](c.md) [bad](b.md#nope)\n"
                                   "`[not](a-link.md)`\n```\n[in code](x.md)\n```\n")
    (tmp_path / "b.md").write_text("## Some `Heading`, here\n")
    assert broken(tmp_path / "a.md") == [f"c.md: {tmp_path / 'c.md'} does not exist", "b.md#nope: no heading #nope in b.md"]
    assert anchors(tmp_path / "b.md") == {"some-heading-here"}


def test_readme_is_a_guide_not_a_manual():
    lines = (PROJECT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 400, f"README.md has {len(lines)} lines; move depth into docs/"


def test_every_doc_is_reachable_from_the_readme():
    readme_links = {t.partition("#")[0] for t in links(PROJECT / "README.md")}
    for doc in (PROJECT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in readme_links, f"README.md does not link docs/{doc.name}"
