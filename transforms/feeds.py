"""Feeds, step 2: parse fetched feed bodies into items (the same items files produce).

Core (plain functions, no Beam):

* ``defuse_xml``: removes entity declarations from the DTD before any XML
  parser sees the body, and refuses what is left if defusedxml still finds
  entities or external references. feedparser alone is not enough: it keeps
  "safe" text entities, and its fallback parser expands them once per
  reference (a 100 kB feed becomes gigabytes: the quadratic blowup).
* ``html_to_text``: markup to plain text with the standard library's HTML parser.
* ``parse_feed_entries``: feedparser over the body; a bozo feed is still mined
  and its bozo reason recorded; each entry becomes an item (guid, url, title,
  summary, body, published_at in UTC with the entry's or else the feed's
  date, author, categories, declared_language, source, origin).
* ``feed_to_outputs``: one fetch result -> items, at most one dead letter
  (a fetched feed with no entry), and the feed's status row.

Transform: :class:`ParseFeeds` returns ``{'items', 'dead_letter', 'status'}``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any

import apache_beam as beam
import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from schemas import SCHEMA_VERSION
from transforms.common import DEAD_LETTER, RunInfo, dead_letter

STATUS = "status"

# An internal DTD subset: <!DOCTYPE name ... [ ... ]>
_DTD_SUBSET = re.compile(rb"(<!DOCTYPE\b[^\[>]*)\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_ENTITY_DECLARATIONS = [b"<!ENTITY", "<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be")]
_FIRST_ELEMENT = re.compile(rb"<\w")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}")


class HostileXML(ValueError):
    """The body declares entities or external references that cannot be removed safely."""


def defuse_xml(body: bytes) -> tuple[bytes, str | None]:
    """Remove DTD entity declarations; returns ``(body, note)``, ``note`` saying what was removed.

    Raises :class:`HostileXML` when entity declarations or external references
    remain (checked with defusedxml, which forbids both).
    """
    note = None
    first = _FIRST_ELEMENT.search(body)
    head_end = first.start() if first else len(body)
    head = body[:head_end]
    if any(marker in head.upper() for marker in _ENTITY_DECLARATIONS) or b"[" in head:
        cleaned, count = _DTD_SUBSET.subn(rb"\1>", head)
        if count:
            body = cleaned + body[head_end:]
            note = "DTD internal subset removed (entity declarations are never expanded)"
            first = _FIRST_ELEMENT.search(body)
            head = body[:first.start() if first else len(body)]
    if any(marker in head.upper() for marker in _ENTITY_DECLARATIONS):
        raise HostileXML("entity declarations outside a removable DTD subset")
    try:
        DefusedET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as err:
        raise HostileXML(f"defusedxml refused the document: {type(err).__name__}: {err}") from err
    except Exception:  # noqa: BLE001, S110 - ill-formed XML: feedparser's loose parser copes; entities are gone
        pass
    return body, note


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
                        "blockquote", "section", "article", "header", "footer", "pre", "hr", "dd", "dt", "figure",
                        "figcaption"})
    _SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """Visible text of an HTML fragment; block elements become line breaks."""
    if not markup:
        return ""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _detail_text(value: str | None, detail: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    kind = (detail or {}).get("type", "text/html")
    return html_to_text(value) if "html" in kind else value.strip()


def struct_to_utc(parsed: time.struct_time | None) -> dt.datetime | None:
    """feedparser's ``*_parsed`` (a UTC struct_time) as an aware datetime; None when absent or impossible."""
    if not parsed:
        return None
    try:
        return dt.datetime(*parsed[:6], tzinfo=dt.timezone.utc)
    except (TypeError, ValueError):
        return None


def language_code(value: str | None) -> str | None:
    """``en-US`` -> ``en``; None for values that are not a language tag."""
    match = _LANGUAGE.match((value or "").strip())
    return match.group(0).lower() if match else None


def entry_to_item(entry: Mapping[str, Any], feed: Mapping[str, Any], feed_date: dt.datetime | None,
                  declared_language: str | None, payload_cap: int) -> dict[str, Any]:
    """One feedparser entry -> parsed item (the input of ``transforms.normalize.to_article``)."""
    title = _detail_text(entry.get("title"), entry.get("title_detail"))
    summary = _detail_text(entry.get("summary"), entry.get("summary_detail"))
    contents = [_detail_text(c.get("value"), c) for c in entry.get("content") or []]
    body = max(contents, key=len) if contents else ""
    if not body:
        body = summary
    # dict.get: FeedParserDict.get('updated_parsed') falls back to 'published' with a DeprecationWarning.
    published = struct_to_utc(dict.get(entry, "published_parsed")) or struct_to_utc(dict.get(entry, "updated_parsed"))
    date_source = "entry"
    if published is None and feed_date is not None:
        published, date_source = feed_date, "feed"
    categories = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    raw = json.dumps({k: dict.get(entry, k) for k in ("id", "link", "title", "summary", "published", "updated")},
                     ensure_ascii=False, default=str)[:payload_cap]
    return {
        "guid": (entry.get("id") or entry.get("guid") or "").strip() or None,
        "url": (entry.get("link") or "").strip() or None,
        "title": title or None,
        "summary": summary or None,
        "body": body,
        "published_at": published,
        "date_source": date_source if published else None,
        "date_precision": "second" if published else "none",
        "author": (entry.get("author") or "").strip() or None,
        "categories": list(dict.fromkeys(categories)),
        "declared_language": declared_language,
        "source": feed["name"],
        "origin": feed["url"],
        "raw": raw,
    }


def parse_feed_entries(body: bytes, feed: Mapping[str, Any], headers: Mapping[str, str] | None = None,
                       payload_cap: int = 65536) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Parse a feed body; returns ``(items, info)``.

    ``info`` has ``version``, ``bozo`` (bool), ``error`` (bozo reason and
    defusing notes, or None) and ``entries_seen``. Raises :class:`HostileXML`
    for documents that cannot be defused.
    """
    body, note = defuse_xml(body)
    response_headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in ("content-type",)}
    response_headers["content-location"] = feed.get("final_url") or feed["url"]
    parsed = feedparser.parse(body, response_headers=response_headers, sanitize_html=True,
                              resolve_relative_uris=True)
    meta = parsed.get("feed", {})
    feed_date = struct_to_utc(dict.get(meta, "published_parsed")) or struct_to_utc(dict.get(meta, "updated_parsed"))
    declared = language_code(feed.get("language")) or language_code(meta.get("language"))
    items = [entry_to_item(e, feed, feed_date, declared, payload_cap) for e in parsed.get("entries", [])]
    reasons = [note] if note else []
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        reasons.append(f"bozo: {type(exc).__name__}: {exc}" if exc else "bozo")
    info = {
        "version": parsed.get("version") or None,
        "bozo": bool(parsed.get("bozo")),
        "error": "; ".join(reasons) or None,
        "entries_seen": len(parsed.get("entries", [])),
    }
    return items, info


def status_row(fetched: Mapping[str, Any], run: RunInfo, *, outcome: str | None = None, error: str | None = None,
               entries_seen: int = 0, new_articles: int = 0) -> dict[str, Any]:
    """The feed_status row (schemas.FEED_STATUS) of one fetch result."""
    state = fetched.get("state") or {}
    next_attempt = state.get("next_attempt_at")
    return {
        "feed": fetched["feed"],
        "url": fetched["url"],
        "final_url": fetched.get("final_url"),
        "run_id": run.run_id,
        "http_status": fetched.get("http_status"),
        "outcome": outcome or fetched["outcome"],
        "error": error if error is not None else fetched.get("error"),
        "entries_seen": entries_seen,
        "new_articles": new_articles,
        "bytes": int(fetched.get("bytes") or 0),
        "latency_ms": fetched.get("latency_ms"),
        "etag": state.get("etag"),
        "last_modified": state.get("last_modified"),
        "consecutive_failures": int(state.get("consecutive_failures") or 0),
        "next_attempt_at": dt.datetime.fromisoformat(next_attempt) if next_attempt else None,
        "fetched_at": fetched["fetched_at"],
        "ingested_date": run.ingested_date,
        "schema_version": SCHEMA_VERSION,
    }


def feed_to_outputs(fetched: Mapping[str, Any], run: RunInfo, payload_cap: int
                    ) -> tuple[list[dict], dict | None, dict[str, Any]]:
    """One fetch result -> ``(items, dead_letter or None, status row)``.

    Only an ``ok`` fetch is parsed; a parsed feed without a single entry (or
    one that cannot be parsed at all) becomes one dead letter with its raw body.
    """
    if fetched["outcome"] != "ok":
        return [], None, status_row(fetched, run)
    body = fetched["body"] or b""
    feed = {"name": fetched["feed"], "url": fetched["url"], "language": fetched.get("language"),
            "final_url": fetched.get("final_url")}
    try:
        items, info = parse_feed_entries(body, feed, fetched.get("headers"), payload_cap)
        error, entries_seen = info["error"], info["entries_seen"]
    except HostileXML as err:
        items, error, entries_seen = [], f"hostile XML refused: {err}", 0
    except Exception as err:  # noqa: BLE001 - feedparser bug on an odd document: one dead letter, not a crashed run
        items, error, entries_seen = [], f"parser failure: {type(err).__name__}: {err}", 0
    if items:
        return items, None, status_row(fetched, run, error=error, entries_seen=entries_seen,
                                       new_articles=len(items))
    reason = f"no usable entry in the feed ({error})" if error else "no usable entry in the feed"
    letter = dead_letter(source=fetched["feed"], origin=fetched["url"], stage="feed_parse", error=reason, raw=body,
                         run=run, payload_cap=payload_cap, raw_size=len(body))
    return [], letter, status_row(fetched, run, outcome="dead_letter", error=reason, entries_seen=entries_seen)


class _ParseFeedFn(beam.DoFn):
    def __init__(self, run: RunInfo, payload_cap: int):
        self._run = run
        self._payload_cap = payload_cap

    def process(self, fetched: Mapping[str, Any]) -> Iterable[Any]:
        items, letter, status = feed_to_outputs(fetched, self._run, self._payload_cap)
        yield from items
        if letter is not None:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)
        yield beam.pvalue.TaggedOutput(STATUS, {"status": status, "state": fetched.get("state")})


class ParseFeeds(beam.PTransform):
    """Fetch results -> ``{'items', 'dead_letter', 'status'}``.

    Each fetched feed yields its entries as items, or one dead letter when an
    ``ok`` body holds no entry; every feed yields exactly one ``status``
    element ``{'status': feed_status row, 'state': next feed state}``.
    """

    def __init__(self, run: RunInfo, payload_cap: int):
        super().__init__()
        self._fn = _ParseFeedFn(run, payload_cap)

    def expand(self, fetched):
        results = fetched | beam.ParDo(self._fn).with_outputs(DEAD_LETTER, STATUS, main="items")
        return {"items": results.items, DEAD_LETTER: results[DEAD_LETTER], STATUS: results[STATUS]}
