"""Step 3: remove duplicates within a run.

Core: ``canonical_order`` (which copy of a story is kept: earliest
``published_at``, then the longest text, then the smallest ``article_id``) and
``pick_canonical``. Transform: :class:`DedupExact` keeps one article per
``article_id`` and then one per ``content_hash``; every other copy becomes a
duplicates-table row that points at the kept article.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

import apache_beam as beam

from schemas import SCHEMA_VERSION

DUPLICATE = "duplicates"
_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def canonical_order(article: Mapping[str, Any]) -> tuple:
    """Sort key: the first article in this order is the one kept."""
    published = article.get("published_at")
    return (
        published is None,
        published or _FAR_FUTURE,
        -int(article.get("text_length") or 0),
        article["article_id"],
        article.get("origin") or "",
    )


def pick_canonical(articles: Iterable[Mapping[str, Any]]) -> tuple[dict, list[dict]]:
    """Split copies of one story into (kept, others) by :func:`canonical_order`."""
    ordered = sorted(articles, key=canonical_order)
    return dict(ordered[0]), [dict(a) for a in ordered[1:]]


def duplicate_record(article: Mapping[str, Any], duplicate_of: str, similarity: float, method: str) -> dict[str, Any]:
    """Row of the duplicates table for ``article``, a copy of ``duplicate_of``."""
    ingested_at = article["ingested_at"]
    return {
        "article_id": article["article_id"],
        "duplicate_of": duplicate_of,
        "similarity": float(similarity),
        "method": method,
        "source": article["source"],
        "origin": article["origin"],
        "url": article.get("url"),
        "title": article.get("title"),
        "content_hash": article["content_hash"],
        "published_at": article.get("published_at"),
        "ingested_at": ingested_at,
        "ingested_date": ingested_at.astimezone(dt.timezone.utc).date(),
        "run_id": article["run_id"],
        "schema_version": SCHEMA_VERSION,
    }


class _KeepCanonicalFn(beam.DoFn):
    def __init__(self, method: str):
        self._method = method

    def process(self, keyed: tuple[str, Iterable[Mapping[str, Any]]]):
        _, copies = keyed
        kept, others = pick_canonical(copies)
        yield kept
        for other in others:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(other, kept["article_id"], 1.0, self._method))


class _DedupOnKey(beam.PTransform):
    def __init__(self, key: str, method: str):
        super().__init__()
        self._key = key
        self._method = method

    def expand(self, articles):
        key = self._key
        return (
            articles
            | "Key" >> beam.Map(lambda a: (a[key], a))
            | "Group" >> beam.GroupByKey()
            | "Keep" >> beam.ParDo(_KeepCanonicalFn(self._method)).with_outputs(DUPLICATE, main="articles")
        )


class DedupExact(beam.PTransform):
    """One article per ``article_id`` and per ``content_hash``.

    Returns ``{'articles', 'duplicates'}``; every input is in exactly one of them.
    """

    def expand(self, articles):
        by_id = articles | "ById" >> _DedupOnKey("article_id", "id")
        by_hash = by_id.articles | "ByContentHash" >> _DedupOnKey("content_hash", "content_hash")
        duplicates = (by_id[DUPLICATE], by_hash[DUPLICATE]) | "AllDuplicates" >> beam.Flatten()
        return {"articles": by_hash.articles, DUPLICATE: duplicates}
