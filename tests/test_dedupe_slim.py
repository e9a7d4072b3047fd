"""Dedup's slim records: same order as canonical_order, datetimes survive the shuffle form."""

from __future__ import annotations

import datetime as dt
import random

from dateutil import tz

from transforms.batching import decode_records, encode_records
from transforms.dedupe import PRIOR, assign_clusters, canonical_order, cluster_refs, near_ref, slim

UTC = dt.timezone.utc


def _articles(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    days = [None, dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(1970, 1, 1, tzinfo=UTC)]
    return [{"article_id": rng.choice("abc") * 3, "origin": rng.choice(["x.txt", "y.txt", ""]),
             "published_at": rng.choice(days), "text_length": rng.choice([0, 5, 50]),
             "content_hash": "h", PRIOR: rng.random() < 0.2} for _ in range(n)]


def test_slim_tuples_sort_in_canonical_order():
    for seed in range(20):
        articles = _articles(30, seed)
        by_dict = [canonical_order(a) for a in sorted(articles, key=canonical_order)]
        by_slim = [canonical_order(a) for a in sorted(articles, key=lambda a: slim(a)[:6])]
        assert by_dict == by_slim


def test_star_clustering_on_refs_matches_the_dict_form():
    rng = random.Random(7)
    articles = {a["article_id"] + a["origin"]: a for a in _articles(60, 1)}
    members = [{**a, "article_id": key, "cluster_size": rng.randint(1, 3)} for key, a in articles.items()]
    pairs = [(a, b, round(rng.uniform(0.75, 1), 3)) for a in members for b in members
             if canonical_order(a) < canonical_order(b) and rng.random() < 0.3 and not (a[PRIOR] and b[PRIOR])]
    by_dict = assign_clusters(pairs)
    by_ref = cluster_refs([(near_ref(a), near_ref(b), s) for a, b, s in pairs])
    assert by_dict and {k: (v["head"], v["similarity"]) for k, v in by_dict.items()} == \
        {k: v[:2] for k, v in by_ref.items()}
    sizes = {m["article_id"]: m["cluster_size"] for m in members}
    for head, (target, _, size) in by_ref.items():
        if target == head:
            attached = [k for k, v in by_ref.items() if v[0] == head and k != head]
            assert size == sizes[head] + sum(sizes[k] for k in attached)


def test_shuffled_records_keep_datetimes_dates_and_time_zones():
    article = {
        "published_at": dt.datetime(2026, 1, 6, 5, 6, 7, 891011, tzinfo=UTC),
        "offset": dt.datetime(1950, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        "naive": dt.datetime(2026, 1, 1),
        "zone": dt.datetime(2026, 3, 29, 2, 30, tzinfo=tz.gettz("Europe/Berlin")),
        "named": dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2), "CEST")),
        "published_date": dt.date(2026, 1, 6),
        "title": "x", "topics": ["a"], "minhash": b"\x00\x01", "language_confidence": None,
    }
    [restored] = decode_records(encode_records([article]))
    assert restored == article
    for key, value in article.items():
        assert type(restored[key]) is type(value)
        if isinstance(value, dt.datetime):
            assert (restored[key].tzname(), restored[key].utcoffset()) == (value.tzname(), value.utcoffset())
