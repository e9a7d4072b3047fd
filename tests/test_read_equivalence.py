"""file_to_item and normalize_text give what they gave before their fast paths (issue 16): the code before
is kept here (``_old_normalize_text``, ``_old_parse``, ``_old_file_to_item``) and compared on every file
under tests/, the repository's real texts laid out as article files, and random text."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import unicodedata
from pathlib import Path

from transforms.read import UnreadableInput, _DATE_LINE, _SENTENCE_END, _parse_date, decode_bytes, file_to_item
from transforms.text import normalize_text

ROOT = Path(__file__).resolve().parent.parent
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff]")


def _old_normalize_text(text):
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "\n\n\n" in text:
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _old_parse(text, max_title_chars):
    first, _, rest = text.partition("\n")
    title, published_at, precision, date_source = None, None, "none", None
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
    return {"title": title, "summary": summary, "body": body, "published_at": published_at,
            "date_precision": precision, "date_source": date_source}


def _old_file_to_item(raw, path, source, max_title_chars):
    if not raw.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in raw[:8192]:
        raise UnreadableInput("binary content (NUL bytes)")
    text, encoding = decode_bytes(raw)
    text = _old_normalize_text(text)
    if not text:
        raise UnreadableInput("empty file: no text")
    item = _old_parse(text, max_title_chars)
    item.update({"source": source, "origin": path, "url": None, "guid": None, "encoding": encoding,
                 "text_normalized": True})
    return item


def _outcome(function, raw, max_title_chars=200):
    try:
        return function(raw, "a/b.txt", "files", max_title_chars)
    except UnreadableInput as err:
        return ("unreadable", str(err))


def _repository_files() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "tests").rglob("*")) if p.is_file() and p.stat().st_size < 2_000_000]


def _article_files() -> list[bytes]:
    """The real texts of tests/data as article files: title line, dated lead, paragraphs."""
    rng = random.Random(5)
    out = []
    for name in ("realnews_dev.jsonl", "lang_cs_sk_dev.jsonl"):
        for line in (ROOT / "tests/data" / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            text = record.get("body") or record.get("text")
            sentences = re.split(r"(?<=[.!?]) ", text)
            head = rng.choice(["", "Kurzer Titel\n", "date 2024-05-06 ", "Titel ohne Punkt\n\n", "  \t"])
            sep = rng.choice(["\n", "\n\n", " \n", "\r\n", "  \n  ", "\n\n\n\n"])
            body = sep.join(s.replace(" ", rng.choice([" ", " ", "  ", "\t", "\xa0"]), rng.randrange(0, 3))
                            for s in sentences)
            out.append((head + body).encode(rng.choice(["utf-8", "utf-8", "utf-8-sig", "utf-16"])))
    return out


PIECES = ["a", "Wort", "Ü", "ß", "–", "e\u0301", ".", ":", " ", "  ", "   ", "\n", "\n\n\n", "\r\n", "\r", "\t",
          "\xa0", "\u200b", "\x0c", "\u2028", "\x85", "\x00", "date 2024-05-06", "date 2024-13", "Titel"]
PRINTABLE = ["a", "Wort", "Ü", "ß", "–", "e\u0301", ".", ":", " ", "  ", "   ", "\n", "\n\n\n", "\r\n", "\r",
             "date 2024-05-06", "Titel", "中文"]


def _random_texts(pieces, count, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40))) for _ in range(count)]


def test_normalize_text_as_before_on_random_text():
    # PRINTABLE takes the new fast path (no control or non-space whitespace), PIECES mostly the other.
    fast_path = 0
    for text in _random_texts(PIECES, 20000, 1) + _random_texts(PRINTABLE, 20000, 2):
        assert normalize_text(text) == _old_normalize_text(text), repr(text)
        fast_path += text.replace("\r", "").replace("\n", " ").isprintable()
    assert fast_path > 15000


def test_file_to_item_as_before_on_repository_files_and_texts():
    raws = _repository_files() + _article_files()
    assert len(raws) > 400
    kinds = {"item": 0, "titled": 0, "dated": 0, "unreadable": 0}
    for raw in raws:
        for max_title_chars in (200, 12):
            old, new = _outcome(_old_file_to_item, raw, max_title_chars), _outcome(file_to_item, raw, max_title_chars)
            assert new == old, raw[:200]
            if isinstance(old, dict):
                kinds["item"] += 1
                kinds["titled"] += old["title"] is not None
                kinds["dated"] += old["date_source"] == "text"
            else:
                kinds["unreadable"] += 1
    assert min(kinds.values()) > 0, kinds


def test_file_to_item_as_before_on_random_text():
    rng = random.Random(9)
    checked = 0
    for text in _random_texts(PIECES, 5000, 3) + _random_texts(PRINTABLE, 5000, 4):
        raw = text.encode(rng.choice(["utf-8", "utf-8-sig", "utf-16"]))
        assert _outcome(file_to_item, raw, 12) == _outcome(_old_file_to_item, raw, 12), raw
        checked += 1
    assert checked == 10000


def test_dates_still_parsed():
    item = file_to_item("date 2024-05-06 Die Nato  tagt.\nZweiter Absatz. ".encode(), "x.txt", "files", 200)
    assert item["published_at"] == dt.datetime(2024, 5, 6, tzinfo=dt.timezone.utc)
    assert item["summary"] == "Die Nato tagt." and item["body"] == "Die Nato tagt.\nZweiter Absatz."
