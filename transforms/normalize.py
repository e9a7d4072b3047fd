"""Step 2: turn a parsed item into the article record.

Core functions: ``canonicalize_url`` and ``to_article`` (``normalize_text`` and
``content_key``, shared with read and dedupe, live in :mod:`transforms.text`). The
transform :class:`NormalizeArticles` maps items to article records; items with
no usable text become dead letters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable, Mapping

import apache_beam as beam

from schemas import SCHEMA_VERSION
from transforms.common import DEAD_LETTER, RunInfo, dead_letter, stable_hash
from transforms.minhash import minhasher
from transforms.text import content_key, content_key_words, normalize_text  # noqa: F401  (re-exported)
from transforms.urls import canonicalize_url  # noqa: F401 - defined there, used and re-exported here


def article_id_for(canonical_url: str | None, guid: str | None, source: str, content_hash: str) -> str:
    """Stable id: the canonical URL, else the source-scoped GUID, else the content."""
    if canonical_url:
        return stable_hash("url:" + canonical_url)
    if guid:
        return stable_hash(f"guid:{source}:{guid}")
    return stable_hash("content:" + content_hash)


class EmptyArticleError(ValueError):
    """The item has no text left after normalization."""


def _as_is(text: str | None) -> str:
    return text or ""


def to_article(
    item: Mapping[str, Any], run: RunInfo, min_body_chars: int = 1, future_tolerance_minutes: int = 0,
    signer: Callable[[str, list[bytes]], bytes] | None = None,
) -> dict[str, Any]:
    """Build the article record (see schemas.ARTICLES) from a parsed item.

    Language, topics and cluster columns get neutral defaults here; later steps fill them.
    ``signer`` (``MinHasher.signature``): adds ``minhash``, the signature of the content key,
    computed here because the key is at hand (dedup would compute it again); it is called as
    ``signer(key, words)`` with the key's UTF-8 words (found with the key, not split again).
    The signature covers the key's first ``transforms.minhash.MAX_CHARS`` characters; the
    ``content_hash`` (exact dedup) and the stored ``body`` always cover the whole text.
    Raises :class:`EmptyArticleError` when title and body are empty.
    """
    clean = _as_is if item.get("text_normalized") else normalize_text  # read's items are normalized already
    title = clean(item.get("title")) or None
    summary = clean(item.get("summary")) or None
    body = clean(item.get("body"))
    if not body and summary:
        body = summary
    if len(body) < min_body_chars and not title:
        raise EmptyArticleError("no text after normalization")
    # A title-only item keeps its title as body (the column is required) but counts it once.
    text_length = len(title or "") + len(body)
    if not body:
        body = title or ""
    key, words = content_key_words(title, body)
    if not key:
        raise EmptyArticleError("no words in the text")
    content_hash = stable_hash("text:" + key)
    canonical_url = canonicalize_url(item.get("url"))
    guid = (item.get("guid") or "").strip() or None
    source = item["source"]
    published_at: dt.datetime | None = item.get("published_at")
    date_warning = item.get("date_warning")
    date_in_future = bool(published_at and published_at > run.ingested_at + dt.timedelta(minutes=future_tolerance_minutes))
    if published_at is not None:
        published_date = published_at.astimezone(dt.timezone.utc).date()
        date_source = item.get("date_source") or "text"
        date_precision = item.get("date_precision") or "second"
    else:
        published_date = run.ingested_date
        date_source = "ingested"
        date_precision = "none"
        date_warning = "; ".join(filter(None, [date_warning, "no date: filed under the ingestion day"]))
    article = {
        "article_id": article_id_for(canonical_url, guid, source, content_hash),
        "url": item.get("url"),
        "canonical_url": canonical_url,
        "guid": guid,
        "source": source,
        "origin": item["origin"],
        "title": title,
        "summary": summary,
        "body": body,
        "author": item.get("author"),
        "categories": list(item.get("categories") or []),
        "published_at": published_at,
        "published_date": published_date,
        "published_month": published_date.isoformat()[:7],
        "date_source": date_source,
        "date_precision": date_precision,
        "date_in_future": date_in_future,
        "date_warning": date_warning,
        "ingested_at": run.ingested_at,
        "language": "und",
        "language_confidence": None,
        "declared_language": item.get("declared_language"),
        "body_source": item.get("body_source"),
        "language_source": None,
        "topics": [],
        "topic_evidence": [],
        "taxonomy_version": "",
        "content_hash": content_hash,
        "text_length": text_length,
        "cluster_id": "",
        "cluster_size": 1,
        "run_id": run.run_id,
        "schema_version": SCHEMA_VERSION,
        # full text of feed items (transforms/page.py); null for files
        "text_source": item.get("text_source"),
        "fetch_status": item.get("fetch_status"),
        "page_canonical_url": item.get("page_canonical_url"),
        "page_fields": item.get("page_fields"),
    }
    if signer is not None:
        article["minhash"] = signer(key, words)
    return article


class _NormalizeFn(beam.DoFn):
    def __init__(self, run: RunInfo, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int,
                 minhash: Mapping[str, Any] | None = None):
        self._run = run
        self._min_body_chars = min_body_chars
        self._payload_cap = payload_cap
        self._future_tolerance = future_tolerance_minutes
        self._minhash = dict(minhash) if minhash else None
        self._signer = None

    def setup(self):
        if self._minhash:
            self._signer = minhasher(self._minhash).signature

    def process(self, item: Mapping[str, Any]) -> Iterable[Any]:
        try:
            yield to_article(item, self._run, self._min_body_chars, self._future_tolerance, self._signer)
        except EmptyArticleError as err:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER,
                dead_letter(
                    source=item.get("source") or "unknown",
                    origin=item.get("origin") or "unknown",
                    stage="normalize",
                    error=str(err),
                    raw=item.get("raw") or f"{item.get('title') or ''}\n{item.get('body') or ''}",
                    run=self._run,
                    payload_cap=self._payload_cap,
                ),
            )


class NormalizeArticles(beam.PTransform):
    """Parsed items -> article records; returns ``{'articles', 'dead_letter'}`` PCollections.

    ``minhash``: the profile's ``dedup`` section; articles then carry their MinHash
    signature (``minhash``), so dedup does not derive the content key again.
    """

    def __init__(self, run: RunInfo, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int = 0,
                 minhash: Mapping[str, Any] | None = None):
        super().__init__()
        self._fn = _NormalizeFn(run, min_body_chars, payload_cap, future_tolerance_minutes, minhash)

    def expand(self, items):
        results = items | beam.ParDo(self._fn).with_outputs(DEAD_LETTER, main="articles")
        return {"articles": results.articles, DEAD_LETTER: results[DEAD_LETTER]}
