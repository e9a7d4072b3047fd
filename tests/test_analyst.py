"""DuckDB views (analyst/sql/views.sql via analyst/views.py) over real pipeline output.

Expected values are computed independently from the Parquet files with pyarrow
(or from the run manifest), never from the views themselves.
"""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
import shutil

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import FIXED_NOW, SEEDS, make_settings

from analyst import views as analyst
from analyst.views import (
    VIEWS,
    AnalystError,
    connect,
    duckdb_columns,
    render,
    session_sql,
)
from schemas import ARTICLES, DEAD_LETTERS, DUPLICATES, FEED_STATUS
from transforms.write import file_name, partition_path, write_parquet_file

BASE_VIEWS = {"articles": ARTICLES, "duplicates": DUPLICATES, "dead_letters": DEAD_LETTERS,
              "feed_status": FEED_STATUS}
DUPLICATED_SEED = "000_c6021543f07dff3e.txt"


def _run(output: pathlib.Path, inputs: list[str], **overrides) -> dict:
    from pipeline.batch import run_batch

    return run_batch(make_settings(output, inputs, **overrides), now=FIXED_NOW)


def rich_inputs(folder: pathlib.Path) -> list[str]:
    """The seeds plus an exact copy of one seed (a duplicate) and an empty file (a dead letter)."""
    folder.mkdir(parents=True)
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, folder / seed.name)
    shutil.copy(SEEDS / DUPLICATED_SEED, folder / "zz_copy_of_000.txt")
    (folder / "zz_empty.txt").write_bytes(b"")
    return [str(folder / "*.txt")]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed") / "output"
    manifest = _run(root, [str(SEEDS / "*.txt")])
    return root, manifest


@pytest.fixture(scope="module")
def rich_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("rich")
    root = base / "output"
    manifest = _run(root, rich_inputs(base / "in"))
    return root, manifest


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory):
    """A real run whose only input is an empty file: a dead letter and a manifest, no articles folder."""
    base = tmp_path_factory.mktemp("empty_run")
    (base / "in").mkdir()
    (base / "in" / "empty.txt").write_bytes(b"")
    root = base / "output"
    manifest = _run(root, [str(base / "in" / "*.txt")])
    return root, manifest


def parquet_rows(root: pathlib.Path, table) -> list[dict]:
    folder = root / table.name
    if not folder.exists():
        return []
    partitioning = pads.partitioning(pa.schema([table.schema.field(p) for p in table.partitions]), flavor="hive")
    dataset = pads.dataset(str(folder), format="parquet", partitioning=partitioning)
    return dataset.to_table().to_pylist()


def fetch_dicts(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_seed_run_has_what_the_tests_assume(seed_run, rich_run, empty_run):
    assert seed_run[1]["counters"]["articles"] == 5
    counters = rich_run[1]["counters"]
    assert counters["duplicates"] >= 1 and counters["dead_letters"] >= 1 and counters["balanced"]
    assert not (empty_run[0] / "articles").exists()
    assert empty_run[1]["counters"]["articles"] == 0 and empty_run[1]["counters"]["dead_letters"] == 1


@pytest.mark.parametrize("which", ["seed", "rich", "empty_run", "missing"])
def test_every_view_has_schema_types_on_any_output(which, seed_run, rich_run, empty_run, tmp_path):
    root = {"seed": seed_run[0], "rich": rich_run[0], "empty_run": empty_run[0],
            "missing": tmp_path / "no" / "output"}[which]
    con = connect(str(root))
    for view in VIEWS:
        con.execute(f"SELECT * FROM {view}").fetchall()  # every view binds and runs
    for view, table in BASE_VIEWS.items():
        described = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())
        assert list(described) == table.column_names, view
        assert described == duckdb_columns(table), view
        count = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        assert count == len(parquet_rows(root, table)), view


def test_missing_output_makes_every_view_empty(tmp_path):
    con = connect(str(tmp_path / "nothing"))
    for view in VIEWS:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0, view
    # typed even when empty: date arithmetic and list functions bind
    assert con.execute("SELECT max(published_date) + 1, max(len(topics)) FROM articles").fetchone() == (None, None)


def test_articles_view_matches_parquet(seed_run):
    root, _ = seed_run
    expected = {(r["article_id"], r["published_date"], r["language"], r["source"], r["title"])
                for r in parquet_rows(root, ARTICLES)}
    con = connect(str(root))
    got = set(con.execute("SELECT article_id, published_date, language, source, title FROM articles").fetchall())
    assert got == expected and len(got) == 5
    # published_at is a UTC timestamp, published_date a DATE partition
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE articles)").fetchall())
    assert types["published_date"] == "DATE" and types["published_at"] == "TIMESTAMP WITH TIME ZONE"


def test_partition_filter_reads_only_matching_files(seed_run):
    root, _ = seed_run
    con = connect(str(root))
    plan = "\n".join(r[1] for r in con.execute(
        "EXPLAIN ANALYZE SELECT count(*) FROM articles "
        "WHERE published_month = '2026-01' AND published_date = DATE '2026-01-06'").fetchall())
    total_files = len(list((root / "articles").rglob("*.parquet")))
    assert total_files > 1
    assert con.execute("SELECT count(*) FROM articles WHERE published_date = DATE '2026-01-06'").fetchone()[0] == 1
    assert "Total Files Read: 1" in plan
    # Date and language filters reach the Parquet scan (row-group statistics), not a filter above it.
    plan = "\n".join(r[1] for r in con.execute(
        "EXPLAIN SELECT count(*) FROM articles WHERE published_date = DATE '2026-01-06' AND language = 'de'").fetchall())
    scan = plan[plan.index("READ_PARQUET"):]
    assert "Filters:" in scan and "language='de'" in scan and "published_date=" in scan


def test_article_topics_one_row_per_article_and_label(rich_run):
    root, _ = rich_run
    rows = parquet_rows(root, ARTICLES)
    expected = sorted((r["article_id"], e["label"], e["score"], len(e["matches"]))
                      for r in rows for e in r["topic_evidence"])
    assert expected, "the seeds carry topic labels"
    con = connect(str(root))
    got = sorted(con.execute("SELECT article_id, label, score, matches FROM article_topics").fetchall())
    assert got == expected
    # every assigned label has evidence
    assert sorted((r["article_id"], t) for r in rows for t in r["topics"]) == [(a, label) for a, label, _, _ in got]


def test_daily_topics_counts_and_shares(rich_run):
    root, _ = rich_run
    rows = parquet_rows(root, ARTICLES)
    totals = collections.Counter((r["published_date"], r["language"]) for r in rows)
    per_label = collections.Counter((r["published_date"], r["language"], t) for r in rows for t in r["topics"])
    con = connect(str(root))
    got = {(d, lang, label): (n, share) for d, lang, label, n, share in
           con.execute("SELECT date, language, label, articles, share FROM daily_topics").fetchall()}
    assert set(got) == set(per_label)
    for key, n in per_label.items():
        assert got[key][0] == n
        assert got[key][1] == pytest.approx(round(n / totals[key[:2]], 4))


def test_clusters_join_duplicates_to_their_canonical_article(rich_run):
    root, _manifest = rich_run
    articles = parquet_rows(root, ARTICLES)
    duplicates = parquet_rows(root, DUPLICATES)
    assert duplicates
    con = connect(str(root))
    clusters = {r["cluster_id"]: r for r in fetch_dicts(con, "SELECT * FROM clusters")}
    members = fetch_dicts(con, "SELECT * FROM cluster_members")
    # every article and every duplicate is a member of exactly one cluster
    assert len(members) == len(articles) + len(duplicates)
    assert sum(c["size"] for c in clusters.values()) == len(members)
    assert sum(c["duplicates"] for c in clusters.values()) == len(duplicates)
    copied = next(r for r in articles if r["origin"].endswith(DUPLICATED_SEED))
    cluster = next(c for c in clusters.values() if c["title"] == copied["title"])
    assert cluster["size"] >= 2 and cluster["duplicates"] >= 1
    assert cluster["sources"] == ["files"]
    roles = {(m["role"], pathlib.Path(m["origin"]).name) for m in members if m["cluster_id"] == cluster["cluster_id"]}
    assert ("duplicate", "zz_copy_of_000.txt") in roles
    assert any(role == "canonical" for role, _ in roles)
    for dup in duplicates:
        assert dup["duplicate_of"] in {a["article_id"] for a in articles}


def test_runs_view_matches_the_manifest(rich_run):
    root, manifest = rich_run
    con = connect(str(root))
    (run,) = fetch_dicts(con, "SELECT * FROM runs")
    c = manifest["counters"]
    assert run["run_id"] == manifest["run_id"] and run["status"] == "committed"
    assert (run["inputs_read"], run["articles"], run["duplicates"], run["dead_letters"], run["balanced"]) == (
        c["inputs"], c["articles"], c["duplicates"], c["dead_letters"], c["balanced"])
    assert run["files"] == len(manifest["files"])
    assert run["started_at"] == dt.datetime.fromisoformat(manifest["started_at"])


def test_dead_letters_view_keeps_reason_and_origin(rich_run, empty_run):
    for root, _ in (rich_run, empty_run):
        con = connect(str(root))
        rows = fetch_dicts(con, "SELECT stage, error, origin, raw_size, ingested_date FROM dead_letters")
        expected = parquet_rows(root, DEAD_LETTERS)
        assert len(rows) == len(expected) >= 1
        empty = [r for r in rows if r["origin"].endswith("empty.txt")]
        assert empty and empty[0]["error"] and empty[0]["raw_size"] == 0
        assert empty[0]["ingested_date"] == FIXED_NOW.date()


def test_empty_run_still_answers_trend_queries(empty_run):
    root, manifest = empty_run
    con = connect(str(root))
    assert con.execute("SELECT count(*) FROM daily_topics").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM clusters").fetchone()[0] == 0
    assert con.execute("SELECT run_id, articles FROM runs").fetchall() == [(manifest["run_id"], 0)]


def _feed_status_row(feed: str, outcome: str, fetched_at: dt.datetime, run_id: str, **extra) -> dict:
    row = {"feed": feed, "url": f"http://127.0.0.1/{feed}.xml", "final_url": None, "run_id": run_id,
           "http_status": 200 if outcome == "ok" else 503, "outcome": outcome,
           "error": None if outcome == "ok" else "HTTP 503", "entries_seen": 3 if outcome == "ok" else 0,
           "new_articles": 2 if outcome == "ok" else 0, "bytes": 1200, "latency_ms": 12.5, "etag": None,
           "last_modified": None, "consecutive_failures": 0 if outcome == "ok" else 1, "next_attempt_at": None,
           "fetched_at": fetched_at, "ingested_date": fetched_at.date(), "schema_version": "test"}
    row.update(extra)
    return row


def test_feed_health_from_feed_status_files(seed_run, tmp_path):
    """feed_status files written with the project's Parquet writer, next to real seed articles."""
    root = tmp_path / "output"
    shutil.copytree(seed_run[0], root)
    t1 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.timezone.utc)
    runs = {
        "r1": [_feed_status_row("files", "ok", t1, "r1"), _feed_status_row("flaky", "ok", t1, "r1")],
        "r2": [_feed_status_row("files", "not_modified", t2, "r2"), _feed_status_row("flaky", "failed", t2, "r2")],
    }
    for run_id, rows in runs.items():
        for row in rows:
            path = root / FEED_STATUS.name / partition_path(FEED_STATUS, row) / file_name(f"{run_id}-{row['feed']}", 0, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet_file(FEED_STATUS, [row], str(path))
    con = connect(str(root))
    health = {r["feed"]: r for r in fetch_dicts(con, "SELECT * FROM feed_health")}
    assert set(health) == {"files", "flaky"}
    assert health["files"]["healthy"] is True and health["files"]["last_outcome"] == "not_modified"
    assert health["files"]["articles"] == 5  # the seed articles' source is 'files'
    flaky = health["flaky"]
    assert flaky["healthy"] is False and flaky["last_outcome"] == "failed" and flaky["last_http_status"] == 503
    assert (flaky["fetches"], flaky["successes"], flaky["failures"], flaky["failure_rate"]) == (2, 1, 1, 0.5)
    assert flaky["last_success_at"] == t1 and flaky["last_fetched_at"] == t2 and flaky["articles"] == 0


def test_columns_older_files_lack_read_as_null(seed_run, tmp_path):
    """An articles file written before cluster_id/cluster_size existed still reads, with NULLs."""
    root = tmp_path / "output"
    shutil.copytree(seed_run[0], root)
    old = pq.read_table(min((root / "articles").rglob("*.parquet"))).drop_columns(["cluster_id", "cluster_size"])
    folder = root / "articles" / "published_month=2020-01"
    folder.mkdir(parents=True)
    pq.write_table(old, folder / "part-old-00000-000.parquet")
    con = connect(str(root))
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 5 + old.num_rows
    old_rows = con.execute("SELECT cluster_id, cluster_size FROM articles "
                           "WHERE published_month = '2020-01'").fetchall()
    assert old_rows == [(None, None)] * old.num_rows
    described = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE articles)").fetchall())
    assert described == duckdb_columns(ARTICLES)


def test_session_sql_is_a_self_contained_init_script(rich_run):
    root, manifest = rich_run
    con = duckdb.connect()
    con.execute(session_sql(str(root)))
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert set(VIEWS) <= views
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == manifest["counters"]["articles"]


def test_views_sql_ships_in_the_package():
    text = analyst.views_template()
    for view in VIEWS:
        assert f"CREATE OR REPLACE VIEW {view} AS" in text


def test_unknown_placeholder_is_an_error():
    with pytest.raises(AnalystError, match="nope"):
        render("SELECT * FROM {{ nope }}", {"articles": "(SELECT 1)"})
