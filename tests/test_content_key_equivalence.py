"""content_key and MinHasher.signature give the same bytes as their previous implementations.

Both are stored in the cross-run dedup index (content_hash is the stable hash of the key), so a faster
implementation must not change a single byte. The previous code is frozen here; the current one is
compared with it on random text (unicode letters and marks, punctuation, odd whitespace, underscores,
lone surrogates, empty, longer than max_chars) and on the real news texts of the dev data. The signature
tests run on both paths: C (transforms/_minhash_signature.c) and numpy.
"""

from __future__ import annotations

import json
import random
import re
import sys
import zlib

import numpy as np
import pytest

from conftest import PROJECT, c_or_numpy
from transforms.common import stable_hash
from transforms.minhash import BLOCK, MinHasher
from transforms.text import content_key, content_key_words

_WORD = re.compile(r"\w+", re.UNICODE)


@pytest.fixture(params=["c", "numpy"])
def signature_path(request, monkeypatch):
    """A test with this fixture runs with MinHash signatures in C and again on numpy."""
    import transforms.minhash as module

    return c_or_numpy(request, monkeypatch, module, "_signature")


def test_the_c_signature_is_built_where_it_can_be():
    import shutil

    import transforms.minhash as module

    if shutil.which("cc") is None:
        pytest.skip("no C compiler here: the numpy path is used")
    from transforms._minhash_signature import signature

    assert module._signature is signature


def test_the_c_signature_checks_its_arguments():
    signature = pytest.importorskip("transforms._minhash_signature").signature
    a = b = np.ones(4, dtype=np.uint64)
    position = np.ones(3, dtype=np.uint64)
    with pytest.raises(TypeError):
        signature(["a", "b"], a, b, position)  # str words
    with pytest.raises(TypeError):
        signature((b"a",), a, b, position)  # not a list
    with pytest.raises(ValueError):
        signature([b"a"], a, np.ones(3, dtype=np.uint64), position)  # a and b differ
    assert len(signature([b"a", b"b"], a, b, position)) == 8


def old_content_key(title, body):
    """transforms/text.py content_key before issue 16."""
    return " ".join(_WORD.findall(f"{title or ''}\n{body or ''}".casefold()))


def old_signature(hasher: MinHasher, key: str) -> bytes:
    """transforms/minhash.py shingle_hashes + signature before issue 16."""
    words = hasher.capped(key).encode("utf-8").split()
    hashes = np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))
    k = min(hasher.shingle_size, len(hashes)) or 1
    if len(hashes) == 0:
        shingles = np.zeros(1, dtype=np.uint64)
    else:
        n = len(hashes) - k + 1
        shingles = np.zeros(n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(k):
                shingles += hashes[j:j + n] * hasher._position[j]
            shingles ^= shingles >> np.uint64(31)
    minima = np.full(hasher.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
    work = np.empty((hasher.num_perm, min(BLOCK, len(shingles))), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(shingles), BLOCK):
            block = shingles[start:start + BLOCK]
            out = work[:, :len(block)]
            np.multiply(hasher._a, block, out=out)
            np.add(out, hasher._b, out=out)
            np.minimum(minima, out.min(axis=1), out=minima)
    return ((minima >> np.uint64(32)) & np.uint64(0xFFFF)).astype("<u2").tobytes()


def test_the_fast_path_premise_isalnum_or_underscore_is_re_word_for_every_code_point():
    """content_key's fast path decides 'word character' with str.isalnum() / "_"; re's \\w must agree."""
    disagree = [c for c in map(chr, range(sys.maxunicode + 1))
                if (c.isalnum() or c == "_") != bool(_WORD.fullmatch(c))]
    assert disagree == []
    # and no whitespace character is a word character (split() may only cut between words)
    assert not any(_WORD.fullmatch(c) for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def _real_texts() -> list[str]:
    texts = []
    for name, field in (("realnews_dev.jsonl", "body"), ("lang_cs_sk_dev.jsonl", "text")):
        with open(PROJECT / "tests" / "data" / name, encoding="utf-8") as lines:
            texts += [json.loads(line)[field] or "" for line in lines if line.strip()]
    return texts


REAL = _real_texts()
PIECES = ["a", "Z", "ß", "İ", "Σ", "ς", "ﬁ", "e\u0301", "\u0307", "Ü", "é", "ø", "ж", "ह", "中文", "٣", "²", "½",
          "Ⅻ", "_", "__", "7", " ", "  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0",
          "\u2009", "\u3000", "\u2028", "\u200b", "\ufeff", "\x00", "\x7f", ".", ",", "-", "–", "—", "’", "‘",
          "„", "“", "”", "«", "»", "…", "·", "‚", "(", ")", "'", '"', "/", "@", "#", "€", "😀", "\ud800", "\udfff",
          "\u00ad", "\u0640", "\uff3f", "\u203f"]


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(0, 40)):
        roll = rng.random()
        if roll < 0.4:
            parts.append(rng.choice(PIECES))
        elif roll < 0.8 and REAL:
            words = rng.choice(REAL).split(" ")
            start = rng.randrange(len(words))
            parts.append(" ".join(words[start:start + rng.randrange(1, 8)]))
        else:
            parts.append(rng.choice(["word", "Nato", "2024", "U.S.", "co-op", "e-mail:", "x_y"]))
    return "".join(parts)


class _CountingWord:
    """Stands in for transforms.text._WORD to count how often content_key takes the regex path."""

    def __init__(self):
        self.calls = 0

    def findall(self, text):
        self.calls += 1
        return _WORD.findall(text)


@pytest.mark.usefixtures("signature_path")
def test_content_key_is_unchanged_on_random_and_real_text(monkeypatch):
    import transforms.text

    counting = _CountingWord()
    monkeypatch.setattr(transforms.text, "_WORD", counting)
    rng = random.Random(16)
    cases = [(None, None), ("", ""), (None, ""), ("Titel", None), (None, "   \n\t "), ("…", "– „“ —")]
    cases += [(None, text) for text in REAL] + [(text, None) for text in REAL[:50]]
    cases += [(rng.choice([None, "", _random_text(rng)]), _random_text(rng)) for _ in range(20000)]
    hasher = MinHasher(32, 3, 8, 1)
    regex_path = 0
    for title, body in cases:
        before = counting.calls
        key, words = content_key_words(title, body)
        regex_path += counting.calls - before
        assert key == content_key(title, body) == old_content_key(title, body), (title, body)
        assert words == key.encode("utf-8").split(), (title, body)
        assert hasher.signature(key, words) == old_signature(hasher, key), (title, body)
    assert len(cases) // 10 < regex_path < len(cases) * 9 // 10, regex_path  # both paths are exercised


@pytest.mark.usefixtures("signature_path")
@pytest.mark.parametrize("num_perm,shingle_size,bands,seed,max_chars", [
    (128, 3, 32, 1, 500_000), (64, 1, 16, 7, 300), (32, 2, 8, 3, 1_000), (16, 5, 4, 2, 50)])
def test_signature_bytes_are_unchanged(num_perm, shingle_size, bands, seed, max_chars):
    hasher = MinHasher(num_perm, shingle_size, bands, seed, max_chars=max_chars)
    rng = random.Random(seed)
    keys = ["", " ", "a", "a b", "a b c", "a  b\tc\n d"] + [content_key(None, text) for text in REAL]
    keys += [content_key(None, _random_text(rng)) for _ in range(1500)]
    keys += [_random_text(rng) for _ in range(300)]  # signature also accepts strings that are not content keys
    for key in keys:
        assert _outcome(hasher.signature, key) == _outcome(lambda k: old_signature(hasher, k), key), key


def _outcome(function, key):
    """The result, or the exception type (a key with a lone surrogate cannot be encoded, before and now)."""
    try:
        return function(key)
    except UnicodeEncodeError as err:
        return type(err)


@pytest.mark.usefixtures("signature_path")
def test_signature_bytes_are_unchanged_past_one_block_and_past_max_chars():
    rng = random.Random(5)
    vocab = [w for text in REAL for w in content_key(None, text).split()]
    hasher = MinHasher(128, 3, 32, 1, max_chars=60_000)
    for n_words in (BLOCK - 3, BLOCK - 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 5, 12_000):
        key = " ".join(rng.choice(vocab) for _ in range(n_words))
        assert hasher.signature(key) == old_signature(hasher, key), n_words
    default = MinHasher()
    long_text = " ".join(rng.choice(REAL) for _ in range(4000))
    long_key, words = content_key_words("Title", long_text)
    assert long_key == old_content_key("Title", long_text) and len(long_key) > default.max_chars
    assert stable_hash("text:" + long_key) == stable_hash("text:" + old_content_key("Title", long_text))
    assert default.signature(long_key) == default.signature(long_key, words) == old_signature(default, long_key)
