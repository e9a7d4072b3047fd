"""`python -m pipeline query` and `shell` as a user runs them (subprocess), over real seed output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings

from analyst.views import connect

TOPICS_SQL = "SELECT date, language, label, articles FROM daily_topics ORDER BY date, label"


def cli(*args: str, stdin: str | None = None, cwd=PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], input=stdin, capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> str:
    from pipeline.batch import run_batch

    root = tmp_path_factory.mktemp("cli") / "output"
    run_batch(make_settings(root, [str(SEEDS / "*.txt")]), now=FIXED_NOW)
    return str(root)


@pytest.fixture(scope="module")
def expected(output) -> list[tuple]:
    rows = connect(output).execute(TOPICS_SQL).fetchall()
    assert rows
    return rows


def test_table_is_printed(output, expected):
    result = cli("query", "--output", output, TOPICS_SQL)
    assert result.returncode == 0, result.stderr
    for date, language, label, articles in expected:
        assert label in result.stdout and date.isoformat() in result.stdout
    assert f"{len(expected)} rows" in result.stdout or result.stdout.count("│ de ") == len(expected)


def test_csv_to_stdout_and_file(output, expected, tmp_path):
    result = cli("query", "--output", output, "--format", "csv", TOPICS_SQL)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["date"], r["language"], r["label"], int(r["articles"])) for r in rows] == [
        (d.isoformat(), lang, label, n) for d, lang, label, n in expected]
    out = tmp_path / "topics.csv"
    result = cli("query", "--output", output, "--out", str(out), TOPICS_SQL)  # format from the extension
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == cli("query", "--output", output, "--format", "csv", TOPICS_SQL).stdout


def test_json_is_an_array_of_objects(output, expected, tmp_path):
    out = tmp_path / "topics.json"
    result = cli("query", "--output", output, "--format", "json", "--out", str(out), TOPICS_SQL)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["date"], r["language"], r["label"], r["articles"]) for r in data] == [
        (d.isoformat(), lang, label, n) for d, lang, label, n in expected]


def test_parquet_keeps_types(output, tmp_path):
    out = tmp_path / "articles.parquet"
    sql = "SELECT article_id, published_date, topics, topic_evidence FROM articles ORDER BY article_id"
    result = cli("query", "--output", output, "--format", "parquet", "--out", str(out), sql)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 5
    assert str(table.schema.field("published_date").type) == "date32[day]"
    assert table.column("article_id").to_pylist() == [r[0] for r in connect(output).execute(sql).fetchall()]
    assert duckdb.connect().execute(f"SELECT count(*) FROM '{out}'").fetchone()[0] == 5


def test_several_statements_and_stdin(output):
    sql = "CREATE TEMP TABLE labels AS SELECT DISTINCT label FROM article_topics; SELECT count(*) AS n FROM labels"
    result = cli("query", "--output", output, "--format", "csv", "-", stdin=sql)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "3"]


def test_errors_are_reported_not_raised(output, tmp_path):
    bad = cli("query", "--output", output, "SELECT no_such_column FROM articles")
    assert bad.returncode == 1 and "no_such_column" in bad.stderr and "Traceback" not in bad.stderr
    no_out = cli("query", "--output", output, "--format", "parquet", "SELECT 1")
    assert no_out.returncode == 2 and "--out" in no_out.stderr
    unknown = cli("query", "--output", output, "--out", str(tmp_path / "x.xlsx"), "SELECT 1")
    assert unknown.returncode == 2 and "--format" in unknown.stderr


def test_query_on_an_output_that_does_not_exist(tmp_path):
    result = cli("query", "--output", str(tmp_path / "nothing"), "--format", "csv",
                 "SELECT count(*) AS n FROM articles")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "0"] and "does not exist" in result.stderr


def test_python_shell_runs_sql_and_dot_commands(output):
    script = ".tables\nSELECT label, count(*) AS n\nFROM article_topics\nGROUP BY label ORDER BY n DESC, label;\n" \
             "SELECT nonsense;\n.schema runs\n.quit\nSELECT 'not reached';\n"
    result = cli("shell", "--python", "--output", output, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "daily_topics" in result.stdout and "feed_health" in result.stdout  # .tables
    assert "nato_spending" in result.stdout and "coalition_of_the_willing" in result.stdout
    assert "Error:" in result.stdout and "nonsense" in result.stdout  # a bad statement does not end the session
    assert "inputs_read" in result.stdout  # .schema runs
    assert "not reached" not in result.stdout


def test_print_init_is_a_duckdb_init_script(output, tmp_path):
    result = cli("shell", "--output", output, "--print-init")
    assert result.returncode == 0, result.stderr
    con = duckdb.connect()
    con.execute(result.stdout)
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 5
    assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
