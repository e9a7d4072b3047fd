"""End to end: the real pipeline on data/seeds, read back with DuckDB (the issue's acceptance checks)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys

import duckdb
import pytest

from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings

RERUN_AFTER = dt.timedelta(days=10)
from pipeline.batch import run_batch

EXPECTED_TOPICS = {
    "000": ["nato_spending", "sanctions"],
    "001": ["coalition_of_the_willing"],
    "002": ["coalition_of_the_willing"],
    "003": ["nato_spending", "coalition_of_the_willing"],
    "004": ["nato_spending"],
}


def query(output, sql: str) -> list[tuple]:
    source = f"read_parquet('{output}/articles/**/*.parquet', hive_partitioning=true)"
    with duckdb.connect() as con:
        return con.sql(sql.format(articles=source)).fetchall()


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """The seeds, run twice into the same output (the second run must replace the first).

    Returns ``(output, first manifest, second manifest, article files after the first run)``."""
    output = tmp_path_factory.mktemp("e2e") / "out"
    settings = make_settings(output, [str(SEEDS / "*.txt")])
    first = run_batch(settings, now=FIXED_NOW)
    first_files = sorted(p.relative_to(output) for p in output.glob("articles/**/*.parquet"))
    # Re-run ten days later, in the next month: undated articles move to the new ingestion date and
    # month partition, nothing is duplicated.
    second = run_batch(settings, now=FIXED_NOW + RERUN_AFTER)
    return output, first, second, first_files


@pytest.fixture(scope="module")
def rows(seeds_run):
    output, *_ = seeds_run
    with duckdb.connect() as con:
        rel = con.sql(f"SELECT * FROM read_parquet('{output}/articles/**/*.parquet', hive_partitioning=true)")
        columns = rel.columns
        return {os.path.basename(r["origin"])[:3]: r for r in (dict(zip(columns, row)) for row in rel.fetchall())}


def test_exactly_the_five_seed_articles(seeds_run, rows):
    output, *_ = seeds_run
    assert sorted(rows) == ["000", "001", "002", "003", "004"]
    assert query(output, "SELECT count(*), count(DISTINCT article_id) FROM {articles}") == [(5, 5)]


def test_all_german(rows):
    assert {r["language"] for r in rows.values()} == {"de"}
    assert all(r["language_confidence"] >= 0.8 for r in rows.values())


@pytest.mark.parametrize("seed", sorted(EXPECTED_TOPICS))
def test_topics_of_each_seed(rows, seed):
    row = rows[seed]
    assert sorted(row["topics"]) == sorted(EXPECTED_TOPICS[seed])
    evidence = {e["label"]: e for e in row["topic_evidence"]}
    assert sorted(evidence) == sorted(EXPECTED_TOPICS[seed])
    for label in row["topics"]:
        assert evidence[label]["score"] > 0
        assert evidence[label]["terms"], f"{seed}/{label}: no evidence terms"
        text = f"{row['title'] or ''}\n{row['body']}".lower()
        for match in evidence[label]["matches"]:
            field = row["title"] if match["field"] == "title" else row["body"]
            assert field[match["start"]:match["end"]].lower() in text


def test_dates(rows):
    assert (rows["002"]["published_date"], rows["002"]["date_precision"], rows["002"]["date_source"]) == \
        (dt.date(2026, 1, 6), "day", "text")
    assert rows["002"]["published_at"] == dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc)
    assert (rows["003"]["published_date"], rows["003"]["date_precision"], rows["003"]["date_source"]) == \
        (dt.date(2025, 4, 1), "month", "text")
    for seed in ("000", "001", "004"):
        assert rows[seed]["published_at"] is None
        assert rows[seed]["date_source"] == "ingested"
        assert rows[seed]["date_precision"] == "none"


def test_undated_articles_are_in_the_latest_ingestion_partition(rows):
    rerun = FIXED_NOW + RERUN_AFTER
    for seed in ("000", "001", "004"):
        assert rows[seed]["published_date"] == rerun.date()
        assert rows[seed]["published_month"] == rerun.date().isoformat()[:7]
        assert rows[seed]["ingested_at"] == rerun


def test_titles_and_bodies(rows):
    assert rows["000"]["title"] == "Nato-Aussenministertreffen in der Türkei"
    assert rows["001"]["title"].startswith("Neue diplomatische Kooperationsrunde")
    assert rows["002"]["title"] is None and rows["002"]["body"].startswith("Seit Monaten wird um eine Lösung")
    assert rows["003"]["body"].startswith("Brüssel taz | Die USA")
    assert rows["004"]["title"] is None and rows["004"]["body"].startswith("Das Streitgespräch mit")
    for row in rows.values():
        assert row["source"] == "files"
        assert row["schema_version"] and row["run_id"].startswith("files-")
        assert row["content_hash"] and row["text_length"] == len(row["title"] or "") + len(row["body"])


def test_running_twice_keeps_five_rows(seeds_run):
    output, first, second, first_files = seeds_run
    assert first["run_id"] == second["run_id"]
    assert query(output, "SELECT count(*), count(DISTINCT article_id) FROM {articles}") == [(5, 5)]
    files = sorted(p.relative_to(output) for p in output.glob("articles/**/*.parquet"))
    assert len(files) == len(first_files) == 3  # one per partition
    old_month = f"published_month={FIXED_NOW.date().isoformat()[:7]}"
    assert any(old_month in str(f) for f in first_files) and not any(old_month in str(f) for f in files)
    assert second["stale_files_removed"] == 1
    assert len(list((output / "_runs").glob("*.json"))) == 1


def test_manifest(seeds_run):
    output, _, manifest, _ = seeds_run
    on_disk = json.loads((output / "_runs" / f"{manifest['run_id']}.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    assert manifest["status"] == "committed"
    assert manifest["runner"].startswith("FnApiRunner (DirectRunner")
    assert {"newsbeam", "apache_beam", "pyarrow", "python", "schema"} <= set(manifest["versions"])
    assert manifest["started_at"] and manifest["finished_at"]
    c = manifest["counters"]
    assert (c["inputs"], c["articles"], c["duplicates"], c["dead_letters"]) == (5, 5, 0, 0)
    assert c["inputs"] == c["articles"] + c["duplicates"] + c["dead_letters"] and c["balanced"] is True
    assert c["language"] == {"de": 5}
    assert c["topic"] == {"nato_spending": 3, "coalition_of_the_willing": 3, "sanctions": 1}


def test_manifest_counts_match_duckdb(seeds_run):
    output, _, manifest, _ = seeds_run
    per_language = dict(query(output, "SELECT language, count(*) FROM {articles} GROUP BY 1"))
    assert per_language == manifest["counters"]["language"]
    per_topic = dict(query(output, "SELECT t, count(*) FROM (SELECT unnest(topics) AS t FROM {articles}) GROUP BY 1"))
    assert per_topic == manifest["counters"]["topic"]


# -- the command line -------------------------------------------------------------

def newsbeam(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_run(tmp_path):
    output = tmp_path / "cli-out"
    done = newsbeam("--log-level", "INFO", "run", "--input", str(SEEDS / "*.txt"), "--output", str(output))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "inputs=5 articles=5 duplicates=0 dead_letters=0 balanced=True" in out
    assert f"articles in {output}/articles: 5" in out
    for heading in ("-- articles per language", "-- articles per topic", "-- articles per date"):
        assert heading in out
    assert any(line.split() == ["de", "5"] for line in out.splitlines())
    assert "apitools" not in done.stderr  # Beam's import noise is filtered
    assert " INFO pipeline.batch: run files-" in done.stderr  # --log-level and the log format apply
    assert query(output, "SELECT count(*) FROM {articles}") == [(5,)]


def _run_parser() -> argparse.ArgumentParser:
    from pipeline.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_cli_run_help_documents_every_option():
    parser = _run_parser()
    options = [a for a in parser._actions if a.option_strings]
    assert {"--input", "--output", "--runner", "--profile", "--feeds"} <= {s for a in options for s in a.option_strings}
    undocumented = [a.option_strings for a in options if not a.help or a.help == argparse.SUPPRESS]
    assert undocumented == []
    done = newsbeam("run", "--help", timeout=120)
    assert done.returncode == 0
    for action in options:
        assert action.option_strings[-1] in done.stdout


def test_run_no_wait_submits_and_the_job_writes_its_manifest(tmp_path, seeds_glob):
    """--no-wait returns after submitting; on the in-process runner the job has already committed."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--input", seeds_glob, "--output", str(out),
                           "--run-id", "submitted", "--no-wait"], capture_output=True, text=True, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert "submitted run submitted" in done.stdout
    manifest = json.loads((out / "_runs" / "submitted.json").read_text())
    assert manifest["status"] == "committed" and manifest["counters"]["articles"] == 5
