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
