"""normalize_text (split-based whitespace collapsing) equals the plain regex definition on random text."""

from __future__ import annotations

import random
import re
import unicodedata

from transforms.normalize import normalize_text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff]")


def reference(text: str) -> str:
    """The definition: NFC, no controls, one space per horizontal-whitespace run, stripped lines, <= 1 blank line."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text).replace("\t", " ")
    text = re.sub(r"[^\S\n]+", " ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


PIECES = ["a", "Ü", " ", "\n", "\t", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028", "\u2029",
          "\u3000", "\u2009", "\u200b", "\ufeff", "\x00", "\x7f", "e\u0301", ".", "\n\n\n"]


def test_matches_the_regex_definition_on_random_text():
    rng = random.Random(7)
    for _ in range(20000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 14)))
        assert normalize_text(text) == reference(text), repr(text)


def test_read_items_are_already_normalized_so_to_article_skips_it():
    """file_to_item's title, summary and body are fixed points of normalize_text, so to_article, which skips
    normalize_text for items marked ``text_normalized``, builds the same article as with it."""
    import datetime as dt

    from transforms.common import RunInfo
    from transforms.normalize import EmptyArticleError, to_article
    from transforms.read import UnreadableInput, file_to_item

    run = RunInfo(run_id="r", ingested_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    rng = random.Random(11)
    words = ["Die", "Nato", "Ausgaben", "steigen", "deutlich", ".", "Ü", "e\u0301", "élan", "Haushalt", ":"]
    firsts = ["", "date 2024-05-06 ", "date 2024-05 ", " date 2023-01-31\t", "Kurzer Titel\n", "Titel ohne Punkt\n\n"]
    checked = 0
    for _ in range(5000):
        body = "".join(rng.choice(PIECES + words + words) for _ in range(rng.randrange(1, 30)))
        raw = (rng.choice(firsts) + body).encode("utf-8")
        try:
            item = file_to_item(raw, "x.txt", "files", 12)
        except UnreadableInput:
            continue
        assert item["text_normalized"] is True
        for field in ("title", "summary", "body"):
            if item[field] is not None:
                assert normalize_text(item[field]) == item[field], (field, raw)
        plain = {k: v for k, v in item.items() if k != "text_normalized"}
        try:
            expected = to_article(plain, run)
        except EmptyArticleError:
            continue
        assert to_article(item, run) == expected, raw
        checked += 1
    assert checked > 3000
