"""Step 1: read article text files into parsed items.

Core: ``decode_bytes`` (UTF-8 with or without BOM, else a detected legacy
encoding, else an error) and ``parse_article_text`` (the loose seed layout).
Transform: :class:`ReadArticleFiles` matches file patterns with Beam's
``fileio`` (so ``gs://`` globs work), reads each file and emits one item per
file, or a dead letter with the raw bytes and the reason.

Seed layout, decided on the first line:
  * `` date YYYY-MM-DD <lead text>`` or `` date YYYY-MM <lead text>``: dated lead, no title;
  * a short line without closing sentence punctuation, followed by more text: the title;
  * anything else: plain body text.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Iterable

import apache_beam as beam
import charset_normalizer
from apache_beam.io import fileio

from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.text import normalize_text

_DATE_LINE = re.compile(r"^\s*date\s+(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?(?=\s|$)\s*(?P<rest>.*)$", re.S)
_SENTENCE_END = ("." , "!", "?", "…", ":", ";")
# Share of characters that may be control/replacement characters before text is called binary.
_MAX_NOISE_SHARE = 0.02
# When charset detection cannot tell encodings apart (short texts score alike in all of them), the
# first of these that fits wins: Western European first (WHATWG decodes "latin-1" as windows-1252),
# then the other common legacy code pages. Without this, a short latin-1 file came back as EBCDIC.
PREFERRED_LEGACY_ENCODINGS = ("cp1252", "iso8859_15", "cp1250", "cp1251", "gb18030", "cp932", "cp949", "big5")
# Code pages detection may propose that a news text file is never written in: EBCDIC mainframe pages.
EXCLUDED_ENCODINGS = ("cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class UnreadableInput(ValueError):
    """Bytes that are not text in any encoding we accept."""


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file bytes; returns ``(text, encoding)`` or raises :class:`UnreadableInput`.

    Order: UTF-8 (BOM optional), UTF-16 with BOM, then charset detection among legacy
    encodings; ties between equally plausible encodings go to :data:`PREFERRED_LEGACY_ENCODINGS`.
    """
    if raw.startswith(_UTF16_BOMS):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as err:
            raise UnreadableInput(f"undecodable bytes: UTF-16 byte order mark, but {err.reason}") from err
    if b"\x00" in raw[:8192]:
        raise UnreadableInput("binary content (NUL bytes)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(raw, cp_exclusion=list(EXCLUDED_ENCODINGS)))
    if not matches:
        raise UnreadableInput("undecodable bytes: not UTF-8 and no other encoding fits")
    best = matches[0]
    encoding = best.encoding
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    candidates = {name for m in tied for name in m.could_be_from_charset}
    for preferred in PREFERRED_LEGACY_ENCODINGS:
        if preferred in candidates:
            encoding = preferred
            break
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text, encoding = str(best), best.encoding
    noise = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t"))
    if text and noise / len(text) > _MAX_NOISE_SHARE:
        raise UnreadableInput(f"undecodable bytes: best guess {encoding} leaves {noise} control characters")
    return text, encoding


def _parse_date(year: str, month: str, day: str | None) -> tuple[dt.datetime, str] | None:
    try:
        when = dt.datetime(int(year), int(month), int(day or 1), tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return when, ("day" if day else "month")


def parse_article_text(text: str, max_title_chars: int = 200) -> dict[str, Any]:
    """Split normalized text into title, summary (lead), body and date fields.

    ``body`` is the whole text after the title (the lead included) so that no
    text is lost; ``summary`` is the lead paragraph.
    """
    return _parse_normalized(normalize_text(text), max_title_chars)


def _parse_normalized(text: str, max_title_chars: int) -> dict[str, Any]:
    first, _, rest = text.partition("\n")
    title = None
    published_at = None
    precision = "none"
    date_source = None
    match = _DATE_LINE.match(first)
    if match and (parsed := _parse_date(match["year"], match["month"], match["day"])):
        published_at, precision = parsed
        date_source = "text"
        body = (match["rest"].strip() + "\n" + rest).strip()
    elif rest.strip() and len(first) <= max_title_chars and not first.rstrip().endswith(_SENTENCE_END):
        title = first.strip()
        body = rest.strip()
    else:
        body = text
    summary = body.split("\n", 1)[0].strip() if "\n" in body else None
    return {
        "title": title,
        "summary": summary,
        "body": body,
        "published_at": published_at,
        "date_precision": precision,
        "date_source": date_source,
    }


def file_to_item(raw: bytes, path: str, source: str, max_title_chars: int) -> dict[str, Any]:
    """Bytes of one file -> parsed item (see ``parse_article_text``); raises UnreadableInput."""
    text, encoding = decode_bytes(raw)
    text = normalize_text(text)  # once: parsing works on the normalized text
    if not text:
        raise UnreadableInput("empty file: no text")
    item = _parse_normalized(text, max_title_chars)
    item.update({"source": source, "origin": path, "url": None, "guid": None, "encoding": encoding})
    return item


class _ReadFileFn(beam.DoFn):
    def __init__(self, source: str | Callable[[str], str], run: RunInfo, max_bytes: int, payload_cap: int,
                 max_title_chars: int):
        self._source = source  # a name, or a function path -> name (transforms.sources.SourceMap)
        self._run = run
        self._max_bytes = max_bytes
        self._payload_cap = payload_cap
        self._max_title_chars = max_title_chars

    def _source_of(self, path: str) -> str:
        return self._source(path) if callable(self._source) else self._source

    def _dead(self, path: str, stage: str, error: str, raw: bytes | None, size: int | None = None):
        return beam.pvalue.TaggedOutput(
            DEAD_LETTER,
            dead_letter(source=self._source_of(path), origin=path, stage=stage, error=error, raw=raw,
                        run=self._run, payload_cap=self._payload_cap, raw_size=size),
        )

    def process(self, readable: fileio.ReadableFile) -> Iterable[Any]:
        path = readable.metadata.path
        size = readable.metadata.size_in_bytes
        try:
            with readable.open() as handle:
                raw = handle.read(self._max_bytes + 1)
        except Exception as err:  # unreadable file: permissions, vanished, broken compression
            yield self._dead(path, "read", f"cannot read file: {type(err).__name__}: {err}", None, size)
            return
        if len(raw) > self._max_bytes:
            yield self._dead(path, "read", f"file too large: {size} bytes > limit {self._max_bytes}", raw, size)
            return
        try:
            yield file_to_item(raw, path, self._source_of(path), self._max_title_chars)
        except UnreadableInput as err:
            yield self._dead(path, "parse", str(err), raw, size)


class ReadArticleFiles(beam.PTransform):
    """Read text files matching ``patterns``; returns ``{'items', 'dead_letter'}``.

    Every matched file yields exactly one output: an item or a dead letter.
    """

    def __init__(self, patterns: list[str], source: str | Callable[[str], str], run: RunInfo, *, max_bytes: int,
                 payload_cap: int, max_title_chars: int):
        super().__init__()
        self._patterns = list(patterns)
        self._fn = _ReadFileFn(source, run, max_bytes, payload_cap, max_title_chars)

    def expand(self, pbegin):
        results = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll()
            | "Open" >> fileio.ReadMatches(compression=beam.io.filesystem.CompressionTypes.UNCOMPRESSED)
            | "Parse" >> beam.ParDo(self._fn).with_outputs(DEAD_LETTER, main="items")
        )
        return {"items": results.items, DEAD_LETTER: results[DEAD_LETTER]}
