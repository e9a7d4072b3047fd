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
from typing import Any, Iterable

import apache_beam as beam
import charset_normalizer
from apache_beam.io import fileio

from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.normalize import normalize_text

_DATE_LINE = re.compile(r"^\s*date\s+(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?(?=\s|$)\s*(?P<rest>.*)$", re.S)
_SENTENCE_END = ("." , "!", "?", "…", ":", ";")
# Share of characters that may be control/replacement characters before text is called binary.
_MAX_NOISE_SHARE = 0.02


class UnreadableInput(ValueError):
    """Bytes that are not text in any encoding we accept."""


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file bytes; returns ``(text, encoding)`` or raises :class:`UnreadableInput`."""
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableInput("binary content (NUL bytes)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(raw).best()
    if best is None or best.encoding is None:
        raise UnreadableInput("undecodable bytes: not UTF-8 and no other encoding fits")
    text = str(best)
    noise = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t"))
    if text and noise / len(text) > _MAX_NOISE_SHARE:
        raise UnreadableInput(f"undecodable bytes: best guess {best.encoding} leaves {noise} control characters")
    return text, best.encoding


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
    text = normalize_text(text)
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
    if not normalize_text(text):
        raise UnreadableInput("empty file: no text")
    item = parse_article_text(text, max_title_chars)
    item.update({"source": source, "origin": path, "url": None, "guid": None, "encoding": encoding})
    return item


class _ReadFileFn(beam.DoFn):
    def __init__(self, source: str, run: RunInfo, max_bytes: int, payload_cap: int, max_title_chars: int):
        self._source = source
        self._run = run
        self._max_bytes = max_bytes
        self._payload_cap = payload_cap
        self._max_title_chars = max_title_chars

    def _dead(self, path: str, stage: str, error: str, raw: bytes | None, size: int | None = None):
        return beam.pvalue.TaggedOutput(
            DEAD_LETTER,
            dead_letter(source=self._source, origin=path, stage=stage, error=error, raw=raw,
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
            yield file_to_item(raw, path, self._source, self._max_title_chars)
        except UnreadableInput as err:
            yield self._dead(path, "parse", str(err), raw, size)


class ReadArticleFiles(beam.PTransform):
    """Read text files matching ``patterns``; returns ``{'items', 'dead_letter'}``.

    Every matched file yields exactly one output: an item or a dead letter.
    """

    def __init__(self, patterns: list[str], source: str, run: RunInfo, *, max_bytes: int,
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
