"""Step 1, reading files: byte decoding, the loose seed layout, and the Beam transform over real files."""

from __future__ import annotations

import codecs
import datetime as dt
import os
import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS, make_test_pipeline
from transforms.common import DEAD_LETTER, RunInfo
from transforms.read import ReadArticleFiles, UnreadableInput, decode_bytes, parse_article_text

GERMAN = "Die Außenministerin äußerte sich über die Größe des Verteidigungshaushalts. Übermäßig? Nein."
FRENCH = "Le président français a déclaré à Paris que la coalition des volontaires se réunira très bientôt."


# -- decode_bytes ---------------------------------------------------------------

def test_decode_utf8():
    assert decode_bytes(GERMAN.encode("utf-8")) == (GERMAN, "utf-8")


def test_decode_utf8_with_bom_drops_the_bom():
    text, encoding = decode_bytes(codecs.BOM_UTF8 + GERMAN.encode("utf-8"))
    assert (text, encoding) == (GERMAN, "utf-8")


@pytest.mark.parametrize("text", [GERMAN, FRENCH, "Größe", "Straße", "Ärger über Öl", "naïve résumé"])
@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_decode_legacy_western_encodings(text, encoding):
    # Short words used to come back as EBCDIC (cp037) or UTF-16 mojibake.
    decoded, used = decode_bytes(text.encode(encoding))
    assert decoded == text
    assert used == "cp1252"


def test_decode_cp1252_typography():
    text = "Der Preis stieg auf 5 € – „teuer“, sagte er."
    assert decode_bytes(text.encode("cp1252"))[0] == text


def test_decode_cyrillic_legacy_encoding_is_not_forced_to_western():
    text = "Привет мир, как дела, это длинный текст про политику и войну в Европе."
    assert decode_bytes(text.encode("cp1251")) == (text, "cp1251")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_decode_utf16_with_bom(codec):
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[codec]
    text, encoding = decode_bytes(bom + GERMAN.encode(codec))
    assert text == GERMAN
    assert encoding == "utf-16"


def _random_high_bytes(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(0x80, 0x100) for _ in range(size))


@pytest.mark.parametrize("raw", [
    bytes(range(256)) * 4,                                 # every byte value, NUL included
    b"PK\x03\x04\x14\x00\x00\x00" + bytes(random.Random(1).randrange(256) for _ in range(512)),  # zip
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64,  # PNG header
    _random_high_bytes(2, 300),                            # no NUL, not UTF-8, no legacy page makes text of it
    _random_high_bytes(3, 4000),
], ids=["all-bytes", "zip", "png", "high-bytes-300", "high-bytes-4000"])
def test_decode_binary_raises_unreadable(raw):
    with pytest.raises(UnreadableInput):
        decode_bytes(raw)


def test_decode_broken_utf16_raises_unreadable():
    with pytest.raises(UnreadableInput, match="UTF-16"):
        decode_bytes(codecs.BOM_UTF16_LE + b"\x00\xd8")  # a lone surrogate


# -- parse_article_text ---------------------------------------------------------

def test_parse_title_line():
    item = parse_article_text("Nato-Treffen in der Türkei\nDie Minister beraten.\n\nMehr Text folgt hier.")
    assert item["title"] == "Nato-Treffen in der Türkei"
    assert item["body"] == "Die Minister beraten.\n\nMehr Text folgt hier."
    assert item["summary"] == "Die Minister beraten."
    assert item["published_at"] is None
    assert item["date_precision"] == "none"
    assert item["date_source"] is None


def test_parse_date_line_with_day():
    item = parse_article_text(" date 2026-01-06 Seit Monaten wird gerungen.\n\nParis - Die Unterstützer beraten.")
    assert item["title"] is None
    assert item["published_at"] == dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc)
    assert item["date_precision"] == "day"
    assert item["date_source"] == "text"
    assert item["summary"] == "Seit Monaten wird gerungen."
    assert item["body"] == "Seit Monaten wird gerungen.\n\nParis - Die Unterstützer beraten."


def test_parse_date_line_with_month():
    item = parse_article_text(" date 2025-04 Brüssel taz | Die USA bleiben in der Nato.\n\nRubio sagte das.")
    assert item["published_at"] == dt.datetime(2025, 4, 1, tzinfo=dt.timezone.utc)
    assert item["date_precision"] == "month"
    assert item["body"].startswith("Brüssel taz | Die USA bleiben")
    assert "date" not in item["body"].split()[0]


def test_parse_date_line_without_other_lines():
    item = parse_article_text(" date 2025-04-30 Nur ein einziger Satz.")
    assert item["published_at"] == dt.datetime(2025, 4, 30, tzinfo=dt.timezone.utc)
    assert item["body"] == "Nur ein einziger Satz."
    assert item["summary"] is None


def test_parse_plain_body():
    text = ("Das Streitgespräch mit Selenskyj verdeutlicht Trumps Kurswechsel.\n"
            "Trump hält NATO-Engagement offen\nWeitere Sätze folgen.")
    item = parse_article_text(text)
    assert item["title"] is None
    assert item["body"] == text
    assert item["published_at"] is None


def test_parse_single_line_is_body_not_title():
    item = parse_article_text("Eine einzige Zeile ohne Punkt")
    assert item["title"] is None
    assert item["body"] == "Eine einzige Zeile ohne Punkt"


def test_parse_overlong_first_line_is_not_a_title():
    first = "Wort " * 60
    item = parse_article_text(first + "\nZweite Zeile.", max_title_chars=200)
    assert item["title"] is None
    assert item["body"].startswith("Wort Wort")


@pytest.mark.parametrize("line", [" date 2025-13 Kein Monat", " date 2025-02-30 Kein Tag", " date 2025-00 Null"])
def test_parse_invalid_date_stays_text(line):
    item = parse_article_text(line + "\nDer Rest des Artikels.")
    assert item["published_at"] is None
    assert item["date_precision"] == "none"
    assert item["date_source"] is None
    kept = f"{item['title'] or ''}\n{item['body']}"
    assert line.strip() in kept
    assert "Der Rest des Artikels." in kept


def test_parse_normalizes_unicode_and_whitespace():
    decomposed = "Gro\u0308\u00dfe   Zahl\t\tder\r\nMinister\u200b sagte."
    item = parse_article_text("Titel\n" + decomposed)
    assert item["body"] == "Größe Zahl der\nMinister sagte."


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name[:3])
def test_parse_every_seed_loses_no_words(path):
    from transforms.normalize import content_key

    text = decode_bytes(path.read_bytes())[0]
    item = parse_article_text(text)
    words_in = content_key(None, text).split()
    words_out = content_key(item["title"], item["body"]).split()
    dropped = {w for w in words_in if w not in words_out}
    # Only the date marker of a dated lead (' date 2025-04') may go.
    when = item["published_at"]
    marker = {"date", str(when.year), f"{when.month:02d}", f"{when.day:02d}"} if when else set()
    assert dropped <= marker
    assert len(words_out) >= len(words_in) - len(marker)


# -- ReadArticleFiles over real files -----------------------------------------

RUN = RunInfo(run_id="test-read", ingested_at=FIXED_NOW)


def _read(patterns, **limits):
    params = {"max_bytes": 10_000, "payload_cap": 64, "max_title_chars": 200, **limits}
    return ReadArticleFiles(patterns, "files", RUN, **params)


def test_read_transform_emits_one_output_per_file(tmp_path):
    (tmp_path / "a.txt").write_text("Titel A\nText von A.", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(" date 2025-04 Text von B mit Größe.".encode("latin-1"))
    (tmp_path / "c.txt").write_bytes(b"\x00\x01binary" * 20)
    (tmp_path / "d.txt").write_bytes(b"   \n\t\n")
    (tmp_path / "e.txt").write_text("Groß " * 3000, encoding="utf-8")  # > max_bytes
    pattern = str(tmp_path / "*.txt")

    p = make_test_pipeline()
    with p:
        read = p | _read([pattern])
        items = read["items"] | "ItemView" >> beam.Map(
            lambda i: (os.path.basename(i["origin"]), i["title"], i["body"], i["date_precision"], i["source"]))
        dead = read[DEAD_LETTER] | "DeadView" >> beam.Map(
            lambda d: (os.path.basename(d["origin"]), d["stage"], d["raw_size"], len(d["raw"] or b""),
                       d["run_id"]))
        assert_that(items, equal_to([
            ("a.txt", "Titel A", "Text von A.", "none", "files"),
            ("b.txt", None, "Text von B mit Größe.", "month", "files"),
        ]), label="items")
        assert_that(dead, equal_to([
            ("c.txt", "parse", 160, 64, "test-read"),
            ("d.txt", "parse", 6, 6, "test-read"),
            ("e.txt", "read", len(("Groß " * 3000).encode()), 64, "test-read"),
        ]), label="dead letters")


def test_read_transform_on_the_seeds():
    p = make_test_pipeline()
    with p:
        read = p | _read([str(SEEDS / "*.txt")], max_bytes=5_000_000)
        dated = read["items"] | beam.Map(
            lambda i: (os.path.basename(i["origin"])[:3], i["published_at"], i["date_precision"], i["encoding"]))
        assert_that(dated, equal_to([
            ("000", None, "none", "utf-8"),
            ("001", None, "none", "utf-8"),
            ("002", dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc), "day", "utf-8"),
            ("003", dt.datetime(2025, 4, 1, tzinfo=dt.timezone.utc), "month", "utf-8"),
            ("004", None, "none", "utf-8"),
        ]), label="seed dates")
        assert_that(read[DEAD_LETTER], equal_to([]), label="no dead letters")
