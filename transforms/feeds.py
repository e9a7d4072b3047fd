"""Feeds, step 2: parse fetched feed bodies into items (the same items files produce).

Core (plain functions, no Beam):

* ``defuse_xml``: removes entity declarations from the DTD before any XML
  parser sees the body, and refuses what is left if defusedxml still finds
  entities or external references. feedparser alone is not enough: it keeps
  "safe" text entities, and its fallback parser expands them once per
  reference (a 100 kB feed becomes gigabytes: the quadratic blowup).
* ``html_to_text``: markup to plain text with the standard library's HTML parser.
* ``choose_charset`` / ``mojibake_note``: which charset decodes the body (BOM, then the XML
  declaration over a contradicting HTTP header when it decodes cleanly, ...) and a warning when
  the decoded text reads as mojibake.
* ``parse_feed_entries``: feedparser over the body (dates, links, titles, authors, tags,
  languages) plus the items' raw XML elements (body and teaser by a fixed precedence, never a
  media caption; the GUID verbatim); a bozo feed is still mined and its bozo reason recorded.
  Each entry becomes an item: guid, url (the entry's own http(s) link or None), title, summary,
  body, body_source, published_at (UTC) with date_source/date_precision/date_warning,
  author, categories, declared_language, source, origin. docs/feeds.md has the field table.
* ``feed_to_outputs``: one fetch result -> items, at most one dead letter
  (a fetched feed with no entry), and the feed's status row.

Transform: :class:`ParseFeeds` returns ``{'items', 'dead_letter', 'status'}``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import html
import json
import re
import time
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import apache_beam as beam
import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from schemas import SCHEMA_VERSION
from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.dates import parse_date
from transforms.urls import web_link

STATUS = "status"

# An internal DTD subset: <!DOCTYPE name ... [ ... ]>
_DTD_SUBSET = re.compile(rb"(<!DOCTYPE\b[^\[>]*)\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_ENTITY_DECLARATIONS = [b"<!ENTITY", "<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be")]
_FIRST_ELEMENT = re.compile(rb"<\w")


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


# -- language -------------------------------------------------------------------------------------

_ISO639_2 = {"deu": "de", "ger": "de", "eng": "en", "fra": "fr", "fre": "fr", "ita": "it", "spa": "es",
             "por": "pt", "nld": "nl", "dut": "nl", "pol": "pl", "ces": "cs", "cze": "cs", "slk": "sk",
             "slo": "sk", "ukr": "uk", "rus": "ru", "ron": "ro", "rum": "ro", "swe": "sv", "zho": "zh", "chi": "zh"}
_LANGUAGE_NAMES = {"german": "de", "deutsch": "de", "english": "en", "french": "fr", "français": "fr",
                   "francais": "fr", "italian": "it", "italiano": "it", "spanish": "es", "español": "es",
                   "espanol": "es", "portuguese": "pt", "português": "pt", "portugues": "pt", "dutch": "nl",
                   "nederlands": "nl", "polish": "pl", "polski": "pl", "czech": "cs", "čeština": "cs",
                   "slovak": "sk", "slovenčina": "sk", "ukrainian": "uk", "українська": "uk", "russian": "ru",
                   "русский": "ru", "romanian": "ro", "română": "ro", "swedish": "sv", "svenska": "sv"}
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")


def language_code(value: str | None) -> str | None:
    """A declared language as ISO 639-1: ``en-US`` -> ``en``, ``pt_BR`` -> ``pt``, ``deu`` -> ``de``,
    ``Deutsch`` -> ``de``; None for values that are no language tag."""
    text = (value or "").strip().lower()
    if not text:
        return None
    if text in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[text]
    match = _TAG.match(text)
    if not match:
        return None
    code = match.group(1)
    if len(code) == 3:
        return _ISO639_2.get(code)
    return code


def declared_language_of(entry: Mapping[str, Any], meta: Mapping[str, Any], configured: str | None
                         ) -> str | None:
    """The item's own declaration (dc:language, xml:lang on its content/summary/title), else the feed's
    (``<language>``, dc:language, xml:lang on the root), else the language configured for the feed."""
    candidates = [dict.get(entry, "language")]
    for key in ("content",):
        candidates += [c.get("language") for c in dict.get(entry, key) or []]
    candidates += [(dict.get(entry, k) or {}).get("language") for k in ("summary_detail", "title_detail")]
    candidates += [dict.get(meta, "language"), configured]
    for value in candidates:
        code = language_code(value)
        if code:
            return code
    return None


# -- charset --------------------------------------------------------------------------------------

_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_MESS_LIMIT = 0.3        # charset-normalizer's mess ratio above which decoded text is called garbled
_MESS_SAMPLE = 65536     # characters inspected for mojibake


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def _decodes(body: bytes, encoding: str | None) -> bool:
    if not encoding:
        return False
    try:
        body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _invalid_sequences(body: bytes, encoding: str) -> int:
    """Byte sequences of ``body`` that ``encoding`` cannot decode (U+FFFD written in the text excluded)."""
    return body.decode(encoding, errors="replace").count("\ufffd") - body.decode(encoding, errors="ignore").count("\ufffd")


def choose_charset(body: bytes, content_type: str | None) -> tuple[str, list[str]]:
    """``(encoding, notes)`` for a feed body.

    A BOM wins; then the XML declaration, also over a contradicting HTTP ``charset`` when the bytes
    decode cleanly with it (publishers' servers often send a default charset that the document
    contradicts); then the header; then UTF-8; then charset-normalizer's guess. Every departure
    from the header, and text that decodes but reads as mojibake, is said in ``notes``.
    """
    notes: list[str] = []
    header = None
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            header = value
    header_codec = _codec(header)
    for bom, name in _BOMS:
        if body.startswith(bom):
            chosen = _codec(name)
            if header_codec and header_codec != chosen and not header_codec.startswith(chosen.split("-")[0]):
                notes.append(f"charset: HTTP header says {header}, the byte order mark says {name}; {name} used")
            return chosen, notes
    match = _XML_DECLARATION.match(body.lstrip()[:512])
    declared = match.group(1).decode("ascii") if match else None
    declared_codec = _codec(declared)
    if declared_codec and header_codec and declared_codec != header_codec:
        if _decodes(body, declared_codec):
            notes.append(f"charset: HTTP header says {header}, the XML declaration says {declared}; "
                         f"{declared} decodes cleanly and is used")
            chosen = declared_codec
        elif _decodes(body, header_codec):
            notes.append(f"charset: the XML declaration says {declared} but the bytes do not decode with it; "
                         f"HTTP header's {header} used")
            chosen = header_codec
        else:
            chosen = None
    else:
        chosen = declared_codec or header_codec
        if chosen and not _decodes(body, chosen):
            bad = _invalid_sequences(body, chosen)
            if bad <= max(3, len(body) // 20000):  # a few stray bytes in a document that is otherwise right
                notes.append(f"charset: {bad} byte sequence(s) invalid in the declared {declared or header}, "
                             "replaced with U+FFFD")
            else:
                notes.append(f"charset: the declared {declared or header} does not decode the bytes cleanly")
                chosen = None
    if chosen is None:
        if _decodes(body, "utf-8"):
            chosen = "utf-8"
            if declared or header:
                notes.append("charset: UTF-8 used, it decodes the bytes cleanly")
        else:  # like feedparser: windows-1252 next, unless charset-normalizer finds a charset that reads cleaner
            from charset_normalizer import from_bytes

            chosen = "cp1252" if _decodes(body, "cp1252") else None
            best = from_bytes(body[:_MESS_SAMPLE * 2]).best()
            if best is not None and (chosen is None or _mess(body, "cp1252") >= _MESS_LIMIT > best.chaos):
                chosen = _codec(best.encoding)
            chosen = chosen or "utf-8"
            said = "no declared charset decodes the bytes" if declared or header else \
                "no charset declared and the bytes are not UTF-8"
            notes.append(f"charset: {said}; {chosen} used")
    return chosen, notes


def _mess(body: bytes, encoding: str) -> float:
    from charset_normalizer.md import mess_ratio

    text = body.decode(encoding, errors="replace")[:_MESS_SAMPLE]
    visible = html_to_text(re.sub(r"<[^>]{0,2000}>", " ", text))
    return mess_ratio(visible, maximum_threshold=1.0) if visible else 0.0


def mojibake_note(body: bytes, encoding: str) -> str | None:
    """A warning when ``body`` decoded with ``encoding`` reads as mojibake (charset-normalizer's mess
    ratio), naming a charset that reads cleanly when there is one; None when the text looks sound."""
    from charset_normalizer import from_bytes

    mess = _mess(body, encoding)
    if mess < _MESS_LIMIT:
        return None
    best = from_bytes(body[:_MESS_SAMPLE * 2]).best()
    better = f"; {best.encoding} would read cleanly" if best is not None and _codec(best.encoding) != encoding \
        and best.chaos < _MESS_LIMIT else ""
    return f"charset: text decoded as {encoding} looks garbled (mojibake, mess ratio {mess:.2f}){better}"


# -- raw elements of each item (body sources, verbatim guid) ----------------------------------------

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "atom03": "http://purl.org/atom/ns#",
    "rss10": "http://purl.org/rss/1.0/",
    "rss090": "http://my.netscape.com/rdf/simple/0.9/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "media": "http://search.yahoo.com/mrss/",
    "yandex": "http://news.yandex.ru",
}
_ITEM_NAMESPACES = (None, NS["rss10"], NS["rss090"], NS["atom"], NS["atom03"])
# Body precedence: the first non-empty source wins. Teaser (summary column): the first non-empty of
# TEASER_SOURCES. media:description / media:credit / media:text are captions and credits: never used.
BODY_SOURCES = ("content:encoded", "atom:content", "yandex:full-text", "full-text", "description", "atom:summary",
                "dc:description", "itunes:summary")
TEASER_SOURCES = ("description", "atom:summary", "dc:description", "itunes:summary")
_SOURCE_TAGS = {
    f"{{{NS['content']}}}encoded": "content:encoded",
    f"{{{NS['atom']}}}content": "atom:content", f"{{{NS['atom03']}}}content": "atom:content",
    f"{{{NS['yandex']}}}full-text": "yandex:full-text",
    f"{{{NS['atom']}}}summary": "atom:summary", f"{{{NS['atom03']}}}summary": "atom:summary",
    f"{{{NS['dc']}}}description": "dc:description",
    f"{{{NS['itunes']}}}summary": "itunes:summary",
}
_GUID_TAGS = {f"{{{NS['atom']}}}id", f"{{{NS['atom03']}}}id"}
_CAPTION_TAGS = {f"{{{NS['media']}}}{name}" for name in ("description", "credit", "text", "title")}


def _split(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _is_item(tag: str, root_namespace: str | None) -> bool:
    namespace, local = _split(tag)
    return local in ("item", "entry") and (namespace in _ITEM_NAMESPACES or namespace == root_namespace)


def _source_of(tag: str, item_namespace: str | None) -> str | None:
    """Body/teaser source name of an item's child, or 'guid'; RSS core elements may sit in the
    document's default namespace (``xmlns="http://backend.userland.com/rss2"`` and the like)."""
    if tag in _SOURCE_TAGS:
        return _SOURCE_TAGS[tag]
    if tag in _GUID_TAGS:
        return "guid"
    namespace, local = _split(tag)
    if namespace in (None, item_namespace, NS["rss10"], NS["rss090"]) and item_namespace not in (NS["atom"], NS["atom03"]):
        if local == "description":
            return "description"
        if local == "guid":
            return "guid"
        if local == "full-text":  # ukr.net's and Yandex's full text without the yandex: prefix
            return "full-text"
    return None


def _element_text(element) -> tuple[str, bool]:
    """(markup or text, is_html) of one element; Atom's type attribute decides, RSS text is HTML."""
    kind = (element.get("type") or "").lower()
    atom = element.tag.startswith(("{" + NS["atom"], "{" + NS["atom03"]))
    if kind == "xhtml" or "xhtml" in kind:
        parts = [element.text or ""] + [DefusedET.tostring(child, encoding="unicode") for child in element]
        return "".join(parts), True
    if atom and kind in ("", "text", "text/plain"):
        return (element.text or "").strip(), False
    if atom and element.get("src"):
        return "", False
    return "".join(element.itertext()), True


def raw_items(root) -> list[dict[str, Any]]:
    """Per item/entry in document order: ``{'sources': {source: text}, 'guid': verbatim or None}``."""
    items = []
    root_namespace = _split(root.tag)[0] if isinstance(root.tag, str) else None
    for element in root.iter():
        if not isinstance(element.tag, str) or not _is_item(element.tag, root_namespace):
            continue
        item_namespace = _split(element.tag)[0]
        sources: dict[str, str] = {}
        guid = None
        for child in element:
            if not isinstance(child.tag, str):
                continue
            source = _source_of(child.tag, item_namespace)
            if source == "guid":
                if guid is None:
                    guid = (child.text or "").strip() or None
            elif source and source not in sources:
                markup, is_html = _element_text(child)
                text = html_to_text(markup) if is_html else markup
                if text:
                    sources[source] = text
        if guid is None and item_namespace in (NS["rss10"], NS["rss090"]):
            guid = (element.get(f"{{{NS['rdf']}}}about") or "").strip() or None
        items.append({"sources": sources, "guid": guid})
    return items


def _captions(root, text: str) -> set[str]:
    """Plain texts of media:description/credit/text/title anywhere in the document (never a body)."""
    found: set[str] = set()
    if root is not None:
        for element in root.iter():
            if element.tag in _CAPTION_TAGS:
                found.add(html_to_text("".join(element.itertext())))
    else:
        for match in re.finditer(r"<media:(?:description|credit|text|title)\b[^>]*>(.*?)</media:", text, re.DOTALL):
            value = re.sub(r"^\s*<!\[CDATA\[(.*)\]\]>\s*$", r"\1", match.group(1), flags=re.DOTALL)
            found.add(html_to_text(html.unescape(value) if "<![CDATA[" not in match.group(1) else value))
    found.discard("")
    return found


# -- one entry ------------------------------------------------------------------------------------

_DATE_FIELDS = ("published", "updated", "created")
FUTURE_TOLERANCE = dt.timedelta(minutes=10)


def entry_date(entry: Mapping[str, Any], meta: Mapping[str, Any]
               ) -> tuple[dt.datetime | None, str | None, str, str | None]:
    """``(published_at, date_source, date_precision, date_warning)`` of an entry.

    Fields in order: the entry's published, updated, created; then the feed's published, updated
    (said in the warning). Each raw string is read by :func:`transforms.dates.parse_date`; a string it
    cannot read is tried with feedparser's own reader (warned: it may drop the zone) and else
    reported as unparsed.
    """
    warnings: list[str] = []
    for scope, source, fields in (("entry", entry, _DATE_FIELDS), ("feed", meta, ("published", "updated"))):
        for field in fields:
            raw = dict.get(source, field)
            if not raw:
                continue
            parsed = parse_date(raw)
            if parsed.instant is not None:
                if parsed.warning:
                    warnings.append(f"{field} {raw!r}: {parsed.warning}")
                if scope == "feed":
                    warnings.append("the entry has no date; the feed's date is used")
                return parsed.instant, f"{scope}:{field}", parsed.precision, "; ".join(warnings) or None
            fallback = struct_to_utc(dict.get(source, f"{field}_parsed"))
            if fallback is not None:
                warnings.append(f"{field} {raw!r} read by feedparser's date reader (time zone may be lost)")
                if scope == "feed":
                    warnings.append("the entry has no date; the feed's date is used")
                return fallback, f"{scope}:{field}", "second", "; ".join(warnings)
            warnings.append(f"{field} unparsed: {raw!r}")
    warnings.append("no date in the entry or the feed")
    return None, None, "none", "; ".join(warnings)


def entry_url(entry: Mapping[str, Any], base_url: str | None) -> str | None:
    """The entry's own http(s) link: feedburner:origLink, else its <link> / Atom alternate link
    (relative ones resolved against the feed's URL), else a permalink GUID (isPermaLink not false;
    only when it is itself an absolute http(s) URL: a GUID is never resolved into one); None when
    there is none (never invented). javascript:, data: and other non-web links are refused."""
    origin = web_link(dict.get(entry, "feedburner_origlink"))
    if origin:
        return origin
    for link in dict.get(entry, "links") or []:
        href = (link.get("href") or "").strip()
        if link.get("rel", "alternate") != "alternate" or not href:
            continue
        if base_url and not _SCHEME_PREFIX.match(href):
            href = urljoin(base_url, href)
        if web_link(href):
            return web_link(href)
    if dict.get(entry, "guidislink"):  # feedparser: a permalink GUID and no <link>
        return web_link(dict.get(entry, "link"))
    return None


_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def entry_to_item(entry: Mapping[str, Any], feed: Mapping[str, Any], meta: Mapping[str, Any],
                  raw: Mapping[str, Any] | None, captions: set[str], payload_cap: int,
                  now: dt.datetime | None = None, index: int | None = None) -> dict[str, Any]:
    """One feedparser entry (+ its raw elements when the document is well-formed) -> parsed item
    (the input of ``transforms.normalize.to_article``)."""
    title = _detail_text(entry.get("title"), entry.get("title_detail"))
    if raw is not None:
        sources = raw["sources"]
        body_source = next((s for s in BODY_SOURCES if sources.get(s)), None)
        body = sources.get(body_source, "") if body_source else ""
        summary = next((sources[s] for s in TEASER_SOURCES if sources.get(s)), "")
        guid = raw["guid"]
    else:  # ill-formed document: feedparser's loose parse, captions removed by text
        contents = [(_detail_text(c.get("value"), c), "feedparser:content") for c in entry.get("content") or []]
        summary = _detail_text(entry.get("summary"), entry.get("summary_detail"))
        if summary in captions:
            summary = ""
        candidates = [(text, source) for text, source in contents if text and text not in captions]
        body, body_source = candidates[0] if candidates else (summary, "feedparser:summary" if summary else None)
        guid = (dict.get(entry, "id") or "").strip() or None
    published, date_source, precision, warning = entry_date(entry, meta)
    if published is not None and now is not None and published > now + FUTURE_TOLERANCE:
        warning = "; ".join(filter(None, [warning, "in the future (after the fetch)"]))
    categories = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    raw_text = json.dumps({k: dict.get(entry, k) for k in ("id", "link", "title", "summary", "published", "updated")},
                          ensure_ascii=False, default=str)[:payload_cap]
    return {
        "guid": guid,
        "url": entry_url(entry, feed.get("final_url") or feed["url"]),
        "title": title or None,
        "summary": summary or None,
        "body": body,
        "body_source": body_source,
        "published_at": published,
        "date_source": date_source,
        "date_precision": precision,
        "date_warning": warning,
        "author": (entry.get("author") or "").strip() or None,
        "categories": list(dict.fromkeys(categories)),
        "declared_language": declared_language_of(entry, meta, feed.get("language")),
        "source": feed["name"],
        "origin": feed["url"],
        "entry_index": index,  # position of the entry in the feed document (not a column)
        "raw": raw_text,
    }


def parse_feed_entries(body: bytes, feed: Mapping[str, Any], headers: Mapping[str, str] | None = None,
                       payload_cap: int = 65536, now: dt.datetime | None = None
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Parse a feed body; returns ``(items, info)``.

    ``info`` has ``version``, ``bozo`` (bool), ``charset`` (the encoding used), ``error`` (charset
    notes, mojibake warning, bozo reason and defusing notes, or None) and ``entries_seen``. Raises
    :class:`HostileXML` for documents that cannot be defused.
    """
    body, note = defuse_xml(body)
    content_type = {k.lower(): v for k, v in (headers or {}).items()}.get("content-type")
    charset, reasons = choose_charset(body, content_type)
    garbled = mojibake_note(body, charset) if charset not in ("utf-8", "utf-16", "utf-32") else None
    if garbled:
        reasons.append(garbled)
    # Decoded once, here: feedparser and the element reader see the same text (as UTF-8 bytes with an
    # HTTP charset, which takes precedence over the document's own declaration for application/xml).
    # No content-location: feedparser would resolve a non-URL GUID against it (and make it a "link").
    text = body.decode(charset, errors="replace")
    parsed = feedparser.parse(text.encode("utf-8"), response_headers={"content-type": "application/xml; charset=utf-8"},
                              sanitize_html=True, resolve_relative_uris=True)
    meta = parsed.get("feed", {})
    entries = parsed.get("entries", [])
    try:
        root = DefusedET.fromstring(text.lstrip("\ufeff \t\r\n"), forbid_dtd=False, forbid_entities=True,
                                    forbid_external=True)
    except Exception:  # noqa: BLE001 - ill-formed XML: feedparser's loose parse is used alone
        root = None
    raws = raw_items(root) if root is not None else []
    if root is not None and len(raws) != len(entries):
        reasons.append(f"{len(raws)} items in the XML tree, {len(entries)} in feedparser's parse; loose mapping used")
        raws = []
    captions = set() if raws else _captions(root, text)
    items = [entry_to_item(e, feed, meta, raws[i] if raws else None, captions, payload_cap, now, i)
             for i, e in enumerate(entries)]
    if note:
        reasons.append(note)
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        reasons.append(f"bozo: {type(exc).__name__}: {exc}" if exc else "bozo")
    info = {
        "version": parsed.get("version") or None,
        "bozo": bool(parsed.get("bozo")),
        "charset": charset,
        "error": "; ".join(reasons) or None,
        "entries_seen": len(entries),
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
        items, info = parse_feed_entries(body, feed, fetched.get("headers"), payload_cap,
                                         now=fetched.get("fetched_at"))
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

    def setup(self):
        from transforms.dates import name_tables

        name_tables()  # the 14 languages' month/day names, built once per worker

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
