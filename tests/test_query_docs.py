"""Every ```sql block (and the ```python block) of docs/querying.md and of the README's
"Querying with DuckDB" section runs against real output, so the documented queries cannot
drift from the views.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings, seeds_with_duplicate_and_dead_letter

from analyst.views import connect
from analyst.query import run_statements

HEADING = "## Querying with DuckDB"
GUIDE = PROJECT / "docs" / "querying.md"
FEED_VIEWS = ("feed_health", "feed_status")
MIN_SQL_BLOCKS = 8  # docs/querying.md documents at least this many queries; fewer means it was cut


def readme_section() -> str:
    """The README's querying section (up to the next heading of level 1 or 2)."""
    lines = (PROJECT / "README.md").read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == HEADING]
    assert starts, f"README.md has no '{HEADING}' section"
    end = next((i for i in range(starts[0] + 1, len(lines)) if re.match(r"^#{1,2} ", lines[i])), len(lines))
    return "\n".join(lines[starts[0]:end])


def querying_section() -> tuple[str, str]:
    """(source file, text) of the full query guide."""
    return GUIDE.name, GUIDE.read_text(encoding="utf-8")


def blocks(language: str, text: str | None = None) -> list[str]:
    if text is None:
        text = querying_section()[1] + "\n" + readme_section()
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)]


SQL_BLOCKS = blocks("sql")
PYTHON_BLOCKS = blocks("python")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """cwd-relative ./output roots: seeds; seeds + a duplicate + a dead letter; a folder with no files."""
    from pipeline.batch import run_batch

    roots = {}
    base = tmp_path_factory.mktemp("docs")
    roots["seed"] = base / "seed"
    run_batch(make_settings(roots["seed"] / "output", [str(SEEDS / "*.txt")]), now=FIXED_NOW)
    roots["rich"] = base / "rich"
    rich_input = seeds_with_duplicate_and_dead_letter(base / "rich_in")
    run_batch(make_settings(roots["rich"] / "output", [rich_input]), now=FIXED_NOW)
    roots["empty"] = base / "empty"
    (roots["empty"] / "output").mkdir(parents=True)
    return roots


def test_section_documents_the_queries():
    source, section = querying_section()
    assert len(blocks("sql", section)) >= MIN_SQL_BLOCKS, f"{source}: only {len(SQL_BLOCKS)} sql blocks"
    for view in ("daily_topics", "article_topics", "clusters", "runs", "dead_letters", "feed_health"):
        assert any(view in block for block in SQL_BLOCKS), f"no documented query uses {view}"


@pytest.mark.parametrize("index", range(len(SQL_BLOCKS)))
@pytest.mark.parametrize("which", ["seed", "rich", "empty"])
def test_documented_sql_runs(index, which, outputs):
    sql = SQL_BLOCKS[index]
    con = connect(str(outputs[which] / "output"))
    rel = run_statements(con, sql)
    assert rel is not None, "a documented query returns rows"
    rows = rel.fetchall()
    if which == "empty":
        assert rows == [] or all(v in (None, 0) for row in rows for v in row)
    elif which == "rich" and not any(view in sql for view in FEED_VIEWS):
        assert rows, f"documented query returned nothing on the seed output with a duplicate and a dead letter:\n{sql}"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_documented_python_runs(index, outputs, monkeypatch, capsys):
    monkeypatch.chdir(outputs["seed"])
    namespace: dict = {}
    exec(compile(PYTHON_BLOCKS[index], f"<querying python block {index}>", "exec"), namespace)  # noqa: S102 (the documented example)
    assert "nato_spending" in capsys.readouterr().out
    assert isinstance(namespace.get("rows"), list) and namespace["rows"]


def test_documented_views_match_views_sql():
    """The table of views in the section names exactly the views views.sql creates."""
    from analyst.views import VIEWS

    _, section = querying_section()
    documented = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert sorted(documented) == sorted(VIEWS)
    assert os.path.basename(str(PROJECT / "analyst" / "sql" / "views.sql")) in section
