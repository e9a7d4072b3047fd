"""Step 6 and the commit: Hive-partitioned Parquet that DuckDB reads with the schema's columns,
idempotent re-writes of a run, no temp files left, stale files of an earlier attempt removed."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import apache_beam as beam
import duckdb
import pyarrow as pa
import pytest

from conftest import FIXED_NOW, make_test_pipeline
from schemas import ARTICLES, DEAD_LETTERS, SCHEMA_VERSION
from transforms.commit import (CommitRun, build_counters, commit_record_path, manifest_path, recover, relative_path,
                               staging_root)
from transforms.common import RunInfo, dead_letter
from transforms.normalize import to_article
from transforms.write import TEMP_SUFFIX, WriteTable, file_name, partition_path, write_parquet_file

RUN_ID = "test-write"
RUN = RunInfo(run_id=RUN_ID, ingested_at=FIXED_NOW)
UTC = dt.timezone.utc


def make_articles():
    """Six articles over three dates and two languages (one undated)."""
    rows = []
    specs = [("de", dt.datetime(2026, 1, 6, tzinfo=UTC)), ("de", dt.datetime(2026, 1, 6, 9, tzinfo=UTC)),
             ("en", dt.datetime(2026, 1, 6, tzinfo=UTC)), ("de", dt.datetime(2025, 4, 1, tzinfo=UTC)),
             ("en", None), ("und", None)]
    for i, (language, when) in enumerate(specs):
        article = to_article({"title": f"Titel {i}", "body": f"Text Nummer {i} über die Nato.", "source": "files",
                              "origin": f"/in/{i}.txt", "published_at": when,
                              "date_precision": "day" if when else "none", "date_source": "text" if when else None},
                             RUN)
        article.update(language=language, language_confidence=0.99, topics=["nato_spending"],
                       topic_evidence=[{"label": "nato_spending", "score": 2.0, "terms": ["nato"],
                                        "matches": [{"term": "nato", "field": "body", "start": 1, "end": 5}]}],
                       taxonomy_version="t1")
        rows.append(article)
    return rows


def run_write(output: pathlib.Path, articles, dead=(), shards=1, rows_per_file=50_000):
    """WriteTable for articles and dead letters into the run's staging folder, then CommitRun, on
    the in-process runner."""
    root = str(output)
    staged = staging_root(root, RUN_ID)
    p = make_test_pipeline()
    with p:
        files = (
            p | "Articles" >> beam.Create(articles)
            | "WriteArticles" >> WriteTable(ARTICLES, staged, RUN_ID, shards=shards, rows_per_file=rows_per_file),
            p | "Dead" >> beam.Create(list(dead))
            | "WriteDead" >> WriteTable(DEAD_LETTERS, staged, RUN_ID, shard_key="origin"),
        ) | "Files" >> beam.Flatten()
        counts = p | "Counts" >> beam.Create([("inputs", len(articles) + len(dead)), ("articles", len(articles)),
                                             ("dead_letters", len(dead))])
        (files, counts) | CommitRun(root, RUN_ID, {"runner": "test", "started_at": FIXED_NOW.isoformat()})
    return json.loads(pathlib.Path(manifest_path(root, RUN_ID)).read_text())


def duck(sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.sql(sql).fetchall()


def articles_source(output) -> str:
    return f"read_parquet('{output}/articles/**/*.parquet', hive_partitioning=true)"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    output = tmp_path_factory.mktemp("write")
    manifest = run_write(output, make_articles(), shards=2)
    return output, manifest


# -- core -------------------------------------------------------------------------

def test_partition_path_and_file_name():
    record = {"published_date": dt.date(2026, 1, 6), "language": "de"}
    assert partition_path(ARTICLES, record) == "published_date=2026-01-06/language=de"
    assert partition_path(ARTICLES, {"published_date": dt.date(2026, 1, 6), "language": "a/b=c"}) \
        == "published_date=2026-01-06/language=a_b_c"
    assert file_name("files-abc", 3, 1) == "part-files-abc-00003-001.parquet"


def test_write_parquet_file_replaces_in_place(tmp_path):
    path = str(tmp_path / "part-x-00000-000.parquet")
    rows = make_articles()
    write_parquet_file(ARTICLES, rows[:2], path)
    write_parquet_file(ARTICLES, rows[:3], path)
    assert duck(f"SELECT count(*) FROM '{path}'")[0][0] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["part-x-00000-000.parquet"]


# -- the table on disk ------------------------------------------------------------

def test_hive_layout(written):
    output, _ = written
    partitions = sorted(str(p.parent.relative_to(output / "articles")) for p in output.glob("articles/**/*.parquet"))
    assert sorted(set(partitions)) == [
        "published_date=2025-04-01/language=de",
        "published_date=2026-01-06/language=de",
        "published_date=2026-01-06/language=en",
        "published_date=2026-11-21/language=en",
        "published_date=2026-11-21/language=und",
    ]
    for path in output.glob("articles/**/*.parquet"):
        assert path.name.startswith(f"part-{RUN_ID}-") and path.name.endswith(".parquet")


def test_duckdb_sees_the_schema_columns_and_types(written):
    output, _ = written
    con = duckdb.connect()
    on_disk = {name: kind for name, kind, *_ in con.sql(f"DESCRIBE SELECT * FROM {articles_source(output)}").fetchall()}
    empty = pa.Table.from_pylist([], schema=ARTICLES.schema)  # noqa: F841 (read by DuckDB below)
    expected = {name: kind for name, kind, *_ in con.sql("DESCRIBE SELECT * FROM empty").fetchall()}
    assert list(on_disk) != [] and set(on_disk) == set(ARTICLES.column_names)
    assert on_disk == expected


def test_files_hold_no_partition_columns_and_carry_the_schema_version(written):
    import pyarrow.parquet as pq

    output, _ = written
    for path in output.glob("articles/**/*.parquet"):
        schema = pq.read_schema(path)
        assert schema.names == ARTICLES.file_schema.names
        assert schema.metadata[b"newsbeam.schema_version"] == SCHEMA_VERSION.encode()


def test_rows_round_trip(written):
    output, _ = written
    rows = duck(f"SELECT origin, CAST(published_date AS VARCHAR), language, topics, topic_evidence[1].terms, "
                f"published_at FROM {articles_source(output)} ORDER BY origin")
    assert [r[:5] for r in rows] == [
        ("/in/0.txt", "2026-01-06", "de", ["nato_spending"], ["nato"]),
        ("/in/1.txt", "2026-01-06", "de", ["nato_spending"], ["nato"]),
        ("/in/2.txt", "2026-01-06", "en", ["nato_spending"], ["nato"]),
        ("/in/3.txt", "2025-04-01", "de", ["nato_spending"], ["nato"]),
        ("/in/4.txt", "2026-11-21", "en", ["nato_spending"], ["nato"]),
        ("/in/5.txt", "2026-11-21", "und", ["nato_spending"], ["nato"]),
    ]
    assert rows[1][5] == dt.datetime(2026, 1, 6, 9, tzinfo=UTC)
    assert rows[4][5] is None


def test_no_temp_files_left(written):
    output, manifest = written
    leftovers = [p for p in output.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert leftovers == []
    assert sorted(f["path"] for f in manifest["files"]) == \
        sorted(str(p.relative_to(output)) for p in output.glob("**/*.parquet"))  # relative to the output root


def test_manifest_of_the_commit(written):
    _, manifest = written
    assert manifest["status"] == "committed"
    assert manifest["runner"] == "test"
    assert manifest["counters"]["inputs"] == 6 and manifest["counters"]["balanced"] is True
    assert sum(f["rows"] for f in manifest["files"] if f["table"] == "articles") == 6
    assert {"newsbeam", "apache_beam", "pyarrow", "python", "schema"} <= set(manifest["versions"])


# -- the commit -----------------------------------------------------------------------

def test_commit_publishes_staged_files_and_removes_the_staging_folder(written):
    output, manifest = written
    assert not pathlib.Path(staging_root(str(output), RUN_ID)).exists()
    record = json.loads(pathlib.Path(commit_record_path(str(output), RUN_ID)).read_text())
    assert sorted(relative_path(str(output), f["path"]) for f in record["files"]) == \
        sorted(f["path"] for f in manifest["files"])
    assert all(f["staged"].startswith(staging_root(str(output), RUN_ID)) for f in record["files"])


def test_a_second_commit_of_the_same_run_id_keeps_the_first(tmp_path):
    """A retried commit (the commit record exists) finishes the first commit instead of adding rows."""
    articles = make_articles()
    run_write(tmp_path, articles)
    names_first = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("articles/**/*.parquet"))
    run_write(tmp_path, articles[:2])
    names_second = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("articles/**/*.parquet"))
    assert names_first == names_second
    assert duck(f"SELECT count(*), count(DISTINCT article_id) FROM {articles_source(tmp_path)}")[0] == (6, 6)
    assert list((tmp_path / "_runs").iterdir()) == [tmp_path / "_runs" / f"{RUN_ID}.json"]


def test_recovery_removes_what_an_uncommitted_run_staged_and_left(tmp_path):
    articles = make_articles()
    run_write(tmp_path, articles)
    # A run that died before its commit point: staged files, and (an older version) a file in place.
    dead_staging = pathlib.Path(staging_root(str(tmp_path), "dead-run")) / "articles" / "published_date=1999-01-01"
    dead_staging.mkdir(parents=True)
    write_parquet_file(ARTICLES, articles[:1], str(dead_staging / file_name("dead-run", 0, 0)))
    old_partition = tmp_path / "articles" / "published_date=1999-01-01" / "language=de"
    old_partition.mkdir(parents=True)
    legacy = old_partition / file_name("legacy-crash", 0, 0)
    write_parquet_file(ARTICLES, [{**articles[0], "run_id": "legacy-crash"}], str(legacy))
    temp = old_partition / (file_name("legacy-crash", 0, 0) + ".0123abcd" + TEMP_SUFFIX)
    temp.write_bytes(b"PAR1 partial")
    report = recover(str(tmp_path))
    assert report["rolled_back"] == ["dead-run"] and report["removed_files"] == 2
    assert not dead_staging.exists() and not legacy.exists() and not temp.exists()
    assert duck(f"SELECT count(*) FROM {articles_source(tmp_path)}")[0][0] == 6


def test_many_rows_split_into_chunks_and_shards(tmp_path):
    articles = []
    for i in range(25):
        article = make_articles()[0]
        article.update(article_id=f"id-{i:02d}", origin=f"/in/many-{i}.txt")
        articles.append(article)
    manifest = run_write(tmp_path, articles, shards=2, rows_per_file=5)
    files = [f for f in manifest["files"] if f["table"] == "articles"]
    assert all(f["rows"] <= 5 for f in files)
    assert sum(f["rows"] for f in files) == 25
    assert {pathlib.Path(f["path"]).name.split("-")[3] for f in files} == {"00000", "00001"}
    assert duck(f"SELECT count(DISTINCT article_id) FROM {articles_source(tmp_path)}")[0][0] == 25


def test_build_counters_balance():
    counters = build_counters({"inputs": 5, "articles": 3, "duplicates": 1, "dead_letters": 1, "language:de": 3})
    assert counters["balanced"] is True and counters["language"] == {"de": 3}
    assert build_counters({"inputs": 5, "articles": 3})["balanced"] is False


def test_batch_run_id_is_exact_and_ignores_streaming_files():
    from transforms.write import batch_run_id, window_file_name

    assert batch_run_id("/o/articles/d=1/part-files-abc-00003-000.parquet") == "files-abc"
    assert batch_run_id("gs://b/o/part-run-c0001-00000-001.parquet") == "run-c0001"
    assert batch_run_id("/o/part-run-00000-000.parquet.0f3a.inprogress") == "run"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    window = window_file_name("stream", start, start + dt.timedelta(minutes=5), 0, 0, 0)
    assert batch_run_id(f"/o/articles/{window}") is None
    assert batch_run_id("/o/articles/notes.parquet") is None
