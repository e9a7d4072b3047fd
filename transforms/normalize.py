"""Step 2: turn a parsed item into the article record.

Core functions: ``normalize_text`` (NFC, whitespace), ``content_key`` (the text
that exact/near dedup compares), ``canonicalize_url`` and ``to_article``. The
transform :class:`NormalizeArticles` maps items to article records; items with
no usable text become dead letters.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apache_beam as beam
from url_normalize import url_normalize

from schemas import SCHEMA_VERSION
from transforms.common import DEAD_LETTER, RunInfo, dead_letter, stable_hash

_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# C0/C1 control characters except newline and tab, and Unicode format marks such as BOM / zero-width.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff]")
_WORD = re.compile(r"\w+", re.UNICODE)

# Query parameters that identify a campaign or click, not a page.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "ref_src", "cmpid", "wt_mc", "wt_zmc"}
)
TRACKING_PREFIXES = ("utm_", "at_", "pk_")


def normalize_text(text: str | None) -> str:
    """NFC, no control characters, single spaces, stripped lines, at most one blank line in a row."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    # str.split() splits on exactly the characters of the regex class \s: per line this collapses
    # every run of horizontal whitespace to one space and strips the line, 2x faster than a regex.
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


def content_key(title: str | None, body: str | None) -> str:
    """Case-folded words of title and body: what 'the same text' means for dedup."""
    words = _WORD.findall(f"{title or ''}\n{body or ''}".casefold())
    return " ".join(words)


def canonicalize_url(url: str | None) -> str | None:
    """Lower-case scheme/host, drop default port, fragment and tracking parameters; keep path case."""
    if not url or not url.strip():
        return None
    try:
        normalized = url_normalize(url.strip())
    except Exception:  # url_normalize raises on hosts it cannot IDNA-encode
        return url.strip()
    if not normalized:
        return None
    parts = urlsplit(normalized)
    if parts.scheme not in ("http", "https"):
        return normalized
    # Sorted, so that ?a=1&b=2 and ?b=2&a=1 name the same page (and the same article_id).
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def article_id_for(canonical_url: str | None, guid: str | None, source: str, content_hash: str) -> str:
    """Stable id: the canonical URL, else the source-scoped GUID, else the content."""
    if canonical_url:
        return stable_hash("url:" + canonical_url)
    if guid:
        return stable_hash(f"guid:{source}:{guid}")
    return stable_hash("content:" + content_hash)


class EmptyArticleError(ValueError):
    """The item has no text left after normalization."""


def to_article(
    item: Mapping[str, Any], run: RunInfo, min_body_chars: int = 1, future_tolerance_minutes: int = 0,
    signer: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """Build the article record (see schemas.ARTICLES) from a parsed item.

    Language, topics and cluster columns get neutral defaults here; later steps fill them.
    ``signer`` (e.g. ``MinHasher.signature``): adds ``minhash``, the signature of the
    content key, computed here because the key is at hand (dedup would compute it again).
    Raises :class:`EmptyArticleError` when title and body are empty.
    """
    title = normalize_text(item.get("title")) or None
    summary = normalize_text(item.get("summary")) or None
    body = normalize_text(item.get("body"))
    if not body and summary:
        body = summary
    if len(body) < min_body_chars and not title:
        raise EmptyArticleError("no text after normalization")
    # A title-only item keeps its title as body (the column is required) but counts it once.
    text_length = len(title or "") + len(body)
    if not body:
        body = title or ""
    key = content_key(title, body)
    if not key:
        raise EmptyArticleError("no words in the text")
    content_hash = stable_hash("text:" + key)
    canonical_url = canonicalize_url(item.get("url"))
    guid = (item.get("guid") or "").strip() or None
    source = item["source"]
    published_at: dt.datetime | None = item.get("published_at")
    date_in_future = bool(published_at and published_at > run.ingested_at + dt.timedelta(minutes=future_tolerance_minutes))
    if published_at is not None:
        published_date = published_at.astimezone(dt.timezone.utc).date()
        date_source = item.get("date_source") or "text"
        date_precision = item.get("date_precision") or "second"
    else:
        published_date = run.ingested_date
        date_source = "ingested"
        date_precision = "none"
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
        "ingested_at": run.ingested_at,
        "language": "und",
        "language_confidence": None,
        "declared_language": item.get("declared_language"),
        "topics": [],
        "topic_evidence": [],
        "taxonomy_version": "",
        "content_hash": content_hash,
        "text_length": text_length,
        "cluster_id": "",
        "cluster_size": 1,
        "run_id": run.run_id,
        "schema_version": SCHEMA_VERSION,
    }
    if signer is not None:
        article["minhash"] = signer(key)
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
            from transforms.dedupe import minhasher  # dedupe imports this module

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
