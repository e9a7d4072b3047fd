"""Step 3, exact dedup within a run: which copy is kept, and that every input lands exactly once."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, make_test_pipeline
from transforms.common import RunInfo
from transforms.dedupe import DUPLICATE, DedupExact, pick_canonical
from transforms.normalize import to_article

RUN = RunInfo(run_id="test-dedupe", ingested_at=FIXED_NOW)
UTC = dt.timezone.utc


def article(origin, body="Die Nato erhöht die Ausgaben.", title="Titel", url=None, published=None):
    return to_article({"title": title, "body": body, "source": "files", "origin": origin, "url": url,
                       "published_at": published, "date_precision": "day" if published else "none",
                       "date_source": "text" if published else None}, RUN)


# -- pick_canonical ---------------------------------------------------------------

def test_pick_canonical_earliest_date_wins():
    late = article("late.txt", published=dt.datetime(2025, 5, 2, tzinfo=UTC), body="Lang " * 50)
    early = article("early.txt", published=dt.datetime(2025, 5, 1, tzinfo=UTC))
    undated = article("undated.txt", body="Noch viel länger " * 100)
    kept, others = pick_canonical([late, undated, early])
    assert kept["origin"] == "early.txt"
    assert [o["origin"] for o in others] == ["late.txt", "undated.txt"]


def test_pick_canonical_longest_text_breaks_date_ties():
    when = dt.datetime(2025, 5, 1, tzinfo=UTC)
    short = article("short.txt", published=when, body="Kurz.")
    long = article("long.txt", published=when, body="Deutlich länger, mit mehr Text.")
    assert pick_canonical([short, long])[0]["origin"] == "long.txt"
    assert pick_canonical([long, short])[0]["origin"] == "long.txt"


def test_pick_canonical_article_id_breaks_remaining_ties():
    a = article("a.txt", url="https://example.com/a")
    b = article("b.txt", url="https://example.com/b")
    smaller, larger = sorted([a, b], key=lambda r: r["article_id"])
    assert pick_canonical([larger, smaller])[0]["article_id"] == smaller["article_id"]
    assert pick_canonical([smaller, larger])[0]["article_id"] == smaller["article_id"]


def test_pick_canonical_is_order_independent():
    copies = [article(f"{i}.txt") for i in range(5)]
    kept_origins = {pick_canonical(copies[i:] + copies[:i])[0]["origin"] for i in range(5)}
    assert len(kept_origins) == 1


# -- DedupExact in a pipeline -------------------------------------------------------

def _check_dedup(articles, kept, duplicates=None):
    """Run DedupExact and assert its outputs: ``kept`` (origin, article_id) and ``duplicates``
    (origin, duplicate_of, method) triples (None: not checked); also that every input lands in exactly
    one output."""
    p = make_test_pipeline()
    with p:
        out = p | beam.Create(articles) | DedupExact()
        assert_that(out["articles"] | "Kept" >> beam.Map(lambda a: (a["origin"], a["article_id"])),
                    equal_to(kept), label="kept")
        if duplicates is not None:
            assert_that(out[DUPLICATE] | "Dups" >> beam.Map(lambda d: (d["origin"], d["duplicate_of"], d["method"])),
                        equal_to(duplicates), label="duplicates")
            assert_that(out[DUPLICATE] | "DupShape" >> beam.Map(lambda d: (d["similarity"], d["run_id"])),
                        equal_to([(1.0, "test-dedupe")] * len(duplicates)), label="duplicate rows")
        landed = ((out["articles"] | "KeptOrigin" >> beam.Map(lambda a: a["origin"]),
                   out[DUPLICATE] | "DupOrigin" >> beam.Map(lambda d: d["origin"]))
                  | beam.Flatten())
        assert_that(landed, equal_to([a["origin"] for a in articles]), label="each input once")


def test_dedup_same_id_keeps_one():
    first = article("first.txt", url="https://example.com/story", published=dt.datetime(2025, 1, 1, tzinfo=UTC))
    again = article("again.txt", url="https://EXAMPLE.com/story?utm_source=rss", body="Aktualisierte Fassung.")
    assert first["article_id"] == again["article_id"]
    _check_dedup([first, again], kept=[("first.txt", first["article_id"])],
                 duplicates=[("again.txt", first["article_id"], "id")])


def test_dedup_same_content_hash_keeps_one():
    a = article("a.txt", url="https://a.example/x", published=dt.datetime(2025, 3, 2, tzinfo=UTC))
    b = article("b.txt", url="https://b.example/y", published=dt.datetime(2025, 3, 1, tzinfo=UTC),
                title="TITEL", body="die nato erhöht   die Ausgaben")
    assert a["content_hash"] == b["content_hash"] and a["article_id"] != b["article_id"]
    _check_dedup([a, b], kept=[("b.txt", b["article_id"])], duplicates=[("a.txt", b["article_id"], "content_hash")])


def test_dedup_keeps_distinct_articles():
    articles = [article(f"{i}.txt", body=f"Meldung Nummer {i} über die Nato.") for i in range(4)]
    _check_dedup(articles, kept=[(a["origin"], a["article_id"]) for a in articles], duplicates=[])


def test_dedup_every_input_lands_exactly_once():
    articles = [
        article("u1.txt", url="https://example.com/1"),
        article("u1-copy.txt", url="https://example.com/1#frag", body="Andere Fassung."),
        article("text-a.txt", body="Gleicher Text in drei Dateien."),
        article("text-b.txt", body="Gleicher Text in drei Dateien."),
        article("text-c.txt", body="gleicher text, in drei dateien!"),
        article("unique.txt", body="Etwas ganz anderes."),
        article("u2.txt", url="https://example.com/2", body="Gleicher Text in drei Dateien.",
                published=dt.datetime(2024, 12, 31, tzinfo=UTC)),
    ]
    by_origin = {a["origin"]: a for a in articles}
    u1, u2, unique = (by_origin[o]["article_id"] for o in ("u1.txt", "u2.txt", "unique.txt"))
    # u1: same URL twice; the dated u2 copy of the repeated text is older than the undated ones.
    _check_dedup(articles, kept=[("u1.txt", u1), ("u2.txt", u2), ("unique.txt", unique)])


def _same_url_then_older_text():
    # A and B share a URL (same id); A's text also equals C's, and C is older, so the
    # content-hash pass drops A after the id pass made B point at it.
    a = article("a.txt", url="https://example.com/x", body="Gemeinsamer Text.",
                published=dt.datetime(2025, 2, 1, tzinfo=UTC))
    b = article("b.txt", url="https://example.com/x", body="Andere Fassung desselben Links.",
                published=dt.datetime(2025, 2, 2, tzinfo=UTC))
    c = article("c.txt", body="Gemeinsamer Text.", published=dt.datetime(2025, 1, 1, tzinfo=UTC))
    keep = c["article_id"]
    return [a, b, c], [("c.txt", keep)], [("b.txt", keep, "id"), ("a.txt", keep, "content_hash")]


def _file_copies_and_a_feed_article():
    # Two files with the same text share the content id; a dated feed article with a URL has the same
    # text. The id pass keeps one file and points the other at it; the hash pass then drops that file.
    f1 = article("copy1.txt", body="Gleicher Text.")
    f2 = article("copy2.txt", body="Gleicher Text.")
    feed = article("feed", url="https://example.com/y", body="Gleicher Text.",
                   published=dt.datetime(2025, 1, 1, tzinfo=UTC))
    keep = feed["article_id"]
    return [f1, f2, feed], [("feed", keep)], None


@pytest.mark.parametrize("scenario", [_same_url_then_older_text, _file_copies_and_a_feed_article],
                         ids=["same-url-older-text", "file-copies-and-feed"])
def test_dedup_duplicate_of_always_names_a_kept_article(scenario):
    articles, kept, duplicates = scenario()
    keep = kept[0][1]
    p = make_test_pipeline()
    with p:
        out = p | beam.Create(articles) | DedupExact()
        assert_that(out["articles"] | "Kept" >> beam.Map(lambda a: (a["origin"], a["article_id"])),
                    equal_to(kept), label="kept")
        assert_that(out[DUPLICATE] | "Targets" >> beam.Map(lambda d: d["duplicate_of"]),
                    equal_to([keep] * (len(articles) - 1)), label="duplicate_of")
