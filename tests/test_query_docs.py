"""Every ```sql block (and the ```python block) of the "Querying with DuckDB" section runs against real output.

The section is read from README.md when it is there, else from docs/querying.md,
so the documented queries cannot drift from the views.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings, seeds_with_duplicate_and_dead_letter

from analyst.views import connect
from analyst.query import run_statements

HEADING = "## Querying with DuckDB"
FEED_VIEWS = ("feed_health", "feed_status")
MIN_SQL_BLOCKS = 8  # the section documents at least this many queries; fewer means it was cut


def querying_section() -> tuple[str, str]:
    """(source file, section text) from README.md, else docs/querying.md."""
    for path in (PROJECT / "README.md", PROJECT / "docs" / "querying.md"):
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines) if line.strip() == HEADING]
        if not starts:
            continue
        start = starts[0]
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^#{1,2} ", lines[i])), len(lines))
        return path.name, "\n".join(lines[start:end])
    pytest.fail(f"no '{HEADING}' section in README.md or docs/querying.md")


def blocks(language: str) -> list[str]:
    _, section = querying_section()
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```", section, re.DOTALL | re.MULTILINE)]


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
    source, _section = querying_section()
    assert len(SQL_BLOCKS) >= MIN_SQL_BLOCKS, f"{source}: only {len(SQL_BLOCKS)} sql blocks"
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
