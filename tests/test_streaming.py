"""Streaming semantics with TestStream on the BundleBasedDirectRunner (--streaming).

The real streaming graph (pipeline.streaming.build_stream_pipeline) runs with a
TestStream source in place of the feed poller; the Parquet files it writes are
read back with DuckDB. Covered: event-time fixed windows, on-time and late
panes, items older than the allowed lateness (kept, not dropped), duplicate
suppression across polls and windows by article_id and by content_hash, dead
letters, one file per window and pane, and idempotent re-runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

import apache_beam as beam
import duckdb
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.transforms.window import TimestampedValue

from conftest import make_settings
from pipeline.runner import make_runner
from pipeline.streaming import build_stream_pipeline, stream_params
from transforms.common import DEAD_LETTER
from transforms.streaming import event_time
from transforms.write import window_file_name

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
STREAM = {"poll_interval_seconds": 300, "window_seconds": 3600, "allowed_lateness_seconds": 7200,
          "dedup_ttl_seconds": 86400}

TEXTS = {
    "a": "The central bank kept interest rates unchanged on Thursday and said inflation is slowing across the region.",
    "b": "Heavy rain flooded several streets in the old town overnight, and the fire brigade pumped out many cellars.",
    "d": "The football club announced a new coach after a long season of defeats and a very disappointing cup run.",
    "e": "Scientists reported a new species of frog in the mountain forests, living in streams high above the valley.",
    "f": "The city council approved the budget for new bicycle lanes after a long debate that lasted until midnight.",
}


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def item(key: str, published: dt.datetime | None, *, url: str | None = None, body: str | None = None,
         title: str | None = "") -> dict:
    return {
        "title": f"Story {key.upper()}" if title == "" else title,
        "summary": None,
        "body": TEXTS.get(key, "") if body is None else body,
        "url": url or f"https://news.example/{key}",
        "guid": None,
        "source": "test-feed",
        "origin": "https://news.example/feed.xml",
        "published_at": published,
        "date_precision": "second",
        "date_source": "entry",
    }


def polled(poll: dt.datetime, *items: dict) -> list[TimestampedValue]:
    return [TimestampedValue(i, poll.timestamp()) for i in items]


def events() -> test_stream.TestStream:
    """Three polls; the watermark passes 11:05 (window 10-11 fires) and 12:05 (window 11-12 fires)."""
    return (
        test_stream.TestStream()
        .advance_watermark_to(at(0.5).timestamp())
        # poll 1 at 10:30
        .add_elements(polled(at(0.5), item("a", at(5 / 60)), item("b", at(20 / 60)),
                             item("x", at(0.25), body="   ", title=None)))  # no text: dead letter
        .advance_watermark_to(at(65 / 60).timestamp())
        # poll 2 at 11:10, after window 10-11 fired on time
        .add_elements(polled(at(70 / 60),
                             item("a", at(5 / 60)),                                    # same URL: duplicate by id
                             item("c", at(62 / 60), body=TEXTS["b"].upper(),           # same words as b, new URL:
                                  title="STORY B", url="https://other.example/c"),     #   duplicate by content_hash
                             item("d", at(40 / 60)),                                   # late for window 10-11
                             item("e", at(68 / 60)),                                   # on time for window 11-12
                             item("f", at(-4))))                                       # 06:00: older than lateness
        .advance_watermark_to(at(125 / 60).timestamp())
        # poll 3 at 12:10: d again, in a later window than its first copy
        .add_elements(polled(at(130 / 60), item("d", at(40 / 60))))
        .advance_watermark_to_infinity()
    )


class EventsSource(beam.PTransform):
    """The pluggable source, fed by TestStream: ``{'items', 'dead_letter'}``."""

    def expand(self, pbegin):
        items = pbegin | "Events" >> events()
        dead = pbegin | "NoFetchFailures" >> beam.Create([])
        return {"items": items, DEAD_LETTER: dead}


def run_stream_graph(output) -> None:
    settings = make_settings(output, stream=STREAM, runner="BundleBasedDirectRunner")
    options = PipelineOptions([])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(runner=make_runner("BundleBasedDirectRunner"), options=options) as p:
        build_stream_pipeline(p, settings, "stream-test", EventsSource())


_NAME = re.compile(r"part-stream-test-a\d{8}T\d{6}-(?P<start>\d{8}T\d{6}Z)-(?P<end>\d{8}T\d{6}Z)-p(?P<pane>\d{4})-\d{5}-\d{3}\.parquet$")


def rows(output, table: str, columns: str) -> list[tuple]:
    con = duckdb.connect()
    return con.sql(
        f"SELECT {columns}, filename FROM read_parquet('{output}/{table}/**/*.parquet', hive_partitioning=true, "
        f"filename=true) ORDER BY ALL").fetchall()


def firing(filename: str) -> tuple[str, int]:
    match = _NAME.search(os.path.basename(filename))
    assert match, filename
    return f"{match['start'][9:13]}-{match['end'][9:13]}", int(match["pane"])


@pytest.fixture(scope="module")
def stream_output(tmp_path_factory):
    output = tmp_path_factory.mktemp("stream")
    run_stream_graph(output)
    return output


def test_articles_land_in_event_time_windows_and_panes(stream_output):
    found = {title: firing(name) for title, name in rows(stream_output, "articles", "title")}
    assert found == {
        "Story A": ("1000-1100", 0),   # on time
        "Story B": ("1000-1100", 0),
        "Story D": ("1000-1100", 1),   # late: a second pane of the same window, its own file
        "Story E": ("1100-1200", 0),
        "Story F": ("0900-1000", 0),   # published 06:00, clamped to poll - lateness: kept, never dropped
    }


def test_late_pane_files_differ_from_on_time_files(stream_output):
    files = {name for _, name in rows(stream_output, "articles", "title")}
    assert len([f for f in files if firing(f) == ("1000-1100", 0)]) >= 1
    late = [f for f in files if firing(f) == ("1000-1100", 1)]
    assert len(late) == 1
    # The late pane holds only its new row (discarding panes), not A and B again.
    con = duckdb.connect()
    assert con.sql(f"SELECT title FROM read_parquet('{late[0]}')").fetchall() == [("Story D",)]


def test_partition_still_comes_from_published_at(stream_output):
    con = duckdb.connect()
    got = con.sql(
        f"SELECT title, published_date, ingested_at FROM read_parquet('{stream_output}/articles/**/*.parquet', "
        f"hive_partitioning=true) WHERE title IN ('Story F', 'Story A') ORDER BY title").fetchall()
    assert [(t, str(d)) for t, d, _ in got] == [("Story A", "2026-11-21"), ("Story F", "2026-11-21")]
    # ingested_at is the poll that found the article, not one start time for the stream.
    assert [i.astimezone(UTC) for _, _, i in got] == [at(0.5), at(70 / 60)]


def test_duplicates_suppressed_across_polls_and_windows(stream_output):
    dups = rows(stream_output, "duplicates", "title, method")
    by_title = {(title, method): firing(name) for title, method, name in dups}
    assert by_title == {
        ("Story A", "id"): ("1000-1100", 0),            # second poll, same URL: late for A's window
        ("STORY B", "content_hash"): ("1100-1200", 0),  # same text as B, published in the next window
        ("Story D", "id"): ("1000-1100", 1),            # third poll: another late pane of that window
    }
    con = duckdb.connect()
    pointers = dict(con.sql(
        f"SELECT d.title, a.title FROM read_parquet('{stream_output}/duplicates/**/*.parquet') d "
        f"JOIN read_parquet('{stream_output}/articles/**/*.parquet') a ON d.duplicate_of = a.article_id").fetchall())
    assert pointers == {"Story A": "Story A", "STORY B": "Story B", "Story D": "Story D"}


def test_every_input_is_accounted_for(stream_output):
    articles = rows(stream_output, "articles", "title")
    duplicates = rows(stream_output, "duplicates", "title")
    errors = rows(stream_output, "errors", "stage, error")
    assert [(stage, error) for stage, error, _ in errors] == [("normalize", "no text after normalization")]
    assert firing(errors[0][2]) == ("1000-1100", 0)  # dead letters stay at their poll time (10:30)
    assert len(articles) + len(duplicates) + len(errors) == 3 + 5 + 1  # items of the three polls


def test_each_window_firing_commits_the_files_of_every_table_together(stream_output):
    """Window files are staged; one commit record per firing (create-if-absent) makes them visible:
    every file on disk is listed by exactly one committed firing, whose counters match its rows."""
    manifests = [json.loads(p.read_text()) for p in sorted((stream_output / "_runs").glob("*.json"))]
    records = sorted(p.stem for p in (stream_output / "_commits").glob("*.json"))
    assert records == sorted(m["run_id"] for m in manifests) and len(records) >= 4
    listed = [f["path"] for m in manifests for f in m["files"]]
    on_disk = sorted(str(p.relative_to(stream_output)) for p in stream_output.glob("*/**/*.parquet")
                     if not str(p.relative_to(stream_output)).startswith("_"))
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    staged = [p for p in (stream_output / "_staging").rglob("*") if p.is_file()]
    assert staged == []
    for m in manifests:
        assert m["status"] == "committed" and m["stream_run_id"] == "stream-test" and m["counters"]["balanced"]
        rows_in = {t: sum(f["rows"] for f in m["files"] if f["table"] == t) for t in ("articles", "duplicates", "errors")}
        assert (rows_in["articles"], rows_in["duplicates"], rows_in["errors"]) == (
            m["counters"]["articles"], m["counters"]["duplicates"], m["counters"]["dead_letters"])
    # The on-time firing of 10:00-11:00 commits its articles and its dead letter in one record.
    on_time = next(m for m in manifests if re.fullmatch(r"stream-test-a\d{8}T\d{6}-w20261121T100000-p0", m["run_id"]))
    assert on_time["firing_timing"] == "on_time"
    assert sorted({f["table"] for f in on_time["files"]}) == ["articles", "errors"]
    assert sum(m["counters"]["inputs"] for m in manifests) == 3 + 5 + 1


def test_restarted_stream_adds_only_what_is_new(stream_output):
    """A stream restarted with the same id (a new attempt) commits new firings and new file names,
    never an earlier attempt's; what the earlier attempt committed is found in the archive's dedup
    index and becomes duplicates: nothing doubles, nothing is overwritten."""
    before = {str(p.relative_to(stream_output)): p.stat().st_mtime_ns for p in stream_output.rglob("*.parquet")}
    index_before = list((stream_output / "_state" / "dedup_index").glob("*.parquet"))
    assert index_before  # every firing with articles published an index segment
    time.sleep(1.1)  # the attempt id has one-second resolution
    run_stream_graph(stream_output)
    after = {str(p.relative_to(stream_output)): p.stat().st_mtime_ns for p in stream_output.rglob("*.parquet")}
    assert {k: after[k] for k in before if k in after and "dedup_index" not in k} == {
        k: v for k, v in before.items() if "dedup_index" not in k}  # earlier files untouched
    assert not list(stream_output.rglob("*.inprogress"))
    assert len(rows(stream_output, "articles", "title")) == 5
    con = duckdb.connect()
    dups = con.sql(f"SELECT count(*), count(DISTINCT duplicate_of) FROM read_parquet("
                   f"'{stream_output}/duplicates/**/*.parquet')").fetchone()
    assert dups == (3 + 8, 5)  # the first attempt's 3, then all 8 article items again (of the 5 articles)
    check = con.sql(f"SELECT count(*) FROM read_parquet('{stream_output}/duplicates/**/*.parquet') d "
                    f"ANTI JOIN read_parquet('{stream_output}/articles/**/*.parquet') a "
                    f"ON d.duplicate_of = a.article_id").fetchone()[0]
    assert check == 0


def test_event_time_core():
    poll = at(2).timestamp()
    assert event_time(at(1.5), poll, 3600) == at(1.5).timestamp()
    assert event_time(at(-5), poll, 3600) == at(1).timestamp()     # too old: oldest open time
    assert event_time(at(3), poll, 3600) == poll                   # future: the poll time
    assert event_time(None, poll, 3600) == poll


def test_window_file_name_names_the_firing():
    name = window_file_name("r1", at(0), at(1), 2, 3, 0)
    assert name == "part-r1-20261121T100000Z-20261121T110000Z-p0002-00003-000.parquet"
    assert name != window_file_name("r1", at(0), at(1), 1, 3, 0)


def test_stream_params_come_from_the_profile(tmp_path):
    settings = make_settings(tmp_path, stream={"window_seconds": 600})
    assert stream_params(settings)["window_seconds"] == 600
    assert stream_params(settings)["poll_interval_seconds"] == 300
