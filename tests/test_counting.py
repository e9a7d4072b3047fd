"""The manifest counters' per-bundle counting (pipeline.batch.count_keys) on real pipelines."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from conftest import make_test_pipeline
from pipeline.batch import _article_keys, _count, article_counts, count_keys


def articles(n: int):
    return [{"language": "de" if i % 3 else "en", "topics": ["a", "b"] if i % 2 else [],
             "published_date": dt.date(2026, 1, 1 + i % 2)} for i in range(n)]


def test_article_keys():
    assert _article_keys({"language": "de", "topics": ["a", "b"], "published_date": dt.date(2026, 1, 6)}) == [
        "articles", "language:de", "topic:a", "topic:b", "published_date:2026-01-06"]


def test_counts_sum_to_one_per_element_and_key():
    rows = articles(1001)
    expected = {"articles": 1001, "language:de": 667, "language:en": 334, "topic:a": 500, "topic:b": 500,
                "published_date:2026-01-01": 501, "published_date:2026-01-02": 500, "items": 1001}
    p = make_test_pipeline()
    with p:
        # Reshuffle spreads the elements over bundles, so partial counts of several bundles are summed.
        data = p | beam.Create(rows) | beam.Reshuffle()
        counts = (article_counts(data), _count(data, "Items", "items")) | beam.Flatten()
        assert_that(counts | beam.CombinePerKey(sum), equal_to(list(expected.items())))


def test_empty_input_counts_nothing():
    p = make_test_pipeline()
    with p:
        counts = _count(p | beam.Create([]), "Nothing", "nothing")
        assert_that(counts, equal_to([]))


def test_counts_stay_in_their_window():
    """Elements of two fixed windows are counted per window (streaming-safe)."""
    p = make_test_pipeline()
    with p:
        stamped = (p | beam.Create([("x", 5), ("x", 15), ("y", 16), ("x", 17)])
                   | beam.Map(lambda e: window.TimestampedValue(e[0], e[1]))
                   | beam.WindowInto(window.FixedWindows(10)))
        counts = count_keys(stamped, "CountKeys", lambda key: [key]) | beam.CombinePerKey(sum)
        with_window = counts | beam.ParDo(
            lambda kv, w=beam.DoFn.WindowParam: [(kv[0], kv[1], int(w.start), int(w.end))])
        assert_that(with_window, equal_to([("x", 1, 0, 10), ("x", 2, 10, 20), ("y", 1, 10, 20)]))
