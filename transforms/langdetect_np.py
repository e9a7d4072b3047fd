"""langdetect's detector with its inner loop on numpy arrays: the same answers, about 3x faster.

langdetect (``Detector._detect_block``) spends most of its time multiplying a list of 55 language
probabilities by an n-gram's 55 weights in a Python loop, about 300 times per text. This module keeps
langdetect's profiles, its n-gram extraction, its random sampling (the same ``random.Random`` calls in
the same order) and its arithmetic (the same IEEE-754 operations element by element, the sum taken in
the same order), and only moves the per-language loops to numpy. ``tests/test_langdetect_np.py``
checks that every probability equals stock langdetect's, bit for bit, on real text in many languages.

Core: :func:`build_factory` (profiles loaded once, the weights as one matrix) and
:class:`NumpyDetector`, created by ``factory.create()`` like langdetect's own detector.
"""

from __future__ import annotations

import random
import re

import numpy as np
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram


# Runs of spaces (stock ``append`` keeps the first space of a run).
_SPACES = re.compile(' {2,}')
# The characters stock ``cleaning_text`` counts as Latin ('A' <= ch <= 'z') and as not Latin (ch >= U+0300).
_LATIN = re.compile('[A-z]')
_FROM_0300 = re.compile('[\u0300-\U0010ffff]')
# A word of the normalized text with the space after it, if there is one.
_WORD = re.compile('[^ ]+ ?')
# Words whose n-gram rows the factory keeps (then it starts again): about 10 MB.
WORD_CACHE_SIZE = 50_000


class _NormalizedChars(dict):
    """``str.translate`` table: code point -> ``NGram.normalize`` of that character, filled on first sight."""

    def __missing__(self, code: int) -> str:
        norm = self[code] = NGram.normalize(chr(code))
        return norm


class NumpyDetector(Detector):
    """``langdetect.detector.Detector`` whose probability updates run on numpy rows."""

    def __init__(self, factory: "NumpyDetectorFactory"):
        # Stock ``Detector.__init__`` without its ``random.Random()`` (seeded from os.urandom, ~20 µs), which
        # ``_detect_block`` makes when it needs it.
        self.word_lang_prob_map = factory.word_lang_prob_map  # maps an n-gram to its row of ``weights`` here
        self.langlist = factory.langlist
        self.seed = factory.seed
        self.random = None
        self.text = ''
        self.langprob = None
        self.alpha = self.ALPHA_DEFAULT
        self.n_trial = 7
        self.max_text_length = 10000
        self.prior_map = None
        self.verbose = False
        self._factory = factory
        self._weights = factory.weights

    def append(self, text):
        """Stock ``append``: URLs and mail addresses become spaces, at most ``max_text_length`` characters
        are kept, and a space after a space is dropped (runs of spaces become one)."""
        text = self.URL_RE.sub(' ', text)
        text = self.MAIL_RE.sub(' ', text)
        text = NGram.normalize_vi(text)
        self.text += _SPACES.sub(' ', text[:max(0, self.max_text_length)])

    def cleaning_text(self):
        """Stock ``cleaning_text``: when the text has more than twice as many characters from U+0300 on as
        characters 'A'..'z', the characters 'A'..'z' are removed. (Stock compares ``unicode_block(ch)``, a
        number, with the string 'Latin Extended Additional', so every character from U+0300 on counts.)"""
        text = self.text
        if text.isascii():
            return  # nothing from U+0300 on: never more than twice the Latin count
        if len(_LATIN.findall(text)) * 2 < len(_FROM_0300.findall(text)):
            self.text = _LATIN.sub('', text)

    def _extract_rows(self) -> list[int]:
        """langdetect's ``_extract_ngrams`` (with ``NGram.add_char``), giving each n-gram's row.

        The same n-grams in the same order (``random.choice`` only sees the list's length). Stock's n-gram
        buffer starts again after every space, so the n-grams are those of each word (a run of characters
        other than a space after ``NGram.normalize``) padded with the space before it and the space after
        it (none for a last word at the end of the text); they are cached per word in the factory.
        """
        normalized = self.text.translate(self._factory.normalized)
        cache = self._factory.word_rows
        result: list[int] = []
        for word in _WORD.findall(normalized):
            rows = cache.get(word)
            if rows is None:
                rows = self._word_rows(word)
                if len(cache) >= WORD_CACHE_SIZE:
                    cache.clear()
                cache[word] = rows
            result += rows
        return result

    def _word_rows(self, word: str) -> tuple[int, ...]:
        """The rows of the n-grams stock emits for ``word`` (normalized, maybe with its space after)."""
        rows_of = self.word_lang_prob_map
        padded = ' ' + word
        rows = []
        for end in range(1, len(padded)):
            char, last = padded[end], padded[end - 1]
            if char.isupper() and last.isupper():
                continue  # stock's ``capitalword``: the n-grams ending in a capital after a capital are skipped
            for gram in (char if char != ' ' else None, padded[end - 1:end + 1],
                         padded[end - 2:end + 1] if end >= 2 else None):
                if gram is not None:
                    row = rows_of.get(gram)
                    if row is not None:
                        rows.append(row)
        return tuple(rows)

    def _detect_block(self):
        # Stock langdetect, line for line (detector.py ``_detect_block``), with arrays for ``prob``.
        self.cleaning_text()
        rows = self._extract_rows()
        if not rows:
            raise LangDetectException(ErrorCode.CantDetectError, 'No features in text.')
        weights = self._weights
        size = len(self.langlist)
        langprob = np.zeros(size)
        self.random = random.Random()
        randbelow = self.random._randbelow  # random.choice(seq) is seq[_randbelow(len(seq))] (CPython 3.8+)
        count = len(rows)
        self.random.seed(self.seed)
        for _ in range(self.n_trial):
            prob = np.array(self._init_probability(), dtype=np.float64)
            weight = (self.alpha + self.random.gauss(0.0, 1.0) * self.ALPHA_WIDTH) / self.BASE_FREQ
            i = 0
            while True:
                # Iteration i updates with one random n-gram; every 5th (i % 5 == 0) normalizes and may stop.
                prob *= weight + weights[rows[randbelow(count)]]
                if i % 5 == 0:
                    total = sum(prob.tolist())  # Python's left-to-right sum, as langdetect's ``sum(prob)``
                    prob /= total
                    if prob.max() > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                        break
                i += 1
            langprob += prob / self.n_trial
        self.langprob = langprob.tolist()


class NumpyDetectorFactory(DetectorFactory):
    """A ``DetectorFactory`` whose n-gram weights are one float64 matrix (n-grams x languages)."""

    weights: np.ndarray
    normalized: _NormalizedChars
    word_rows: dict[str, tuple[int, ...]]

    def _create_detector(self):
        if not self.langlist:
            raise LangDetectException(ErrorCode.NeedLoadProfileError, 'Need to load profiles.')
        return NumpyDetector(self)

    def freeze(self) -> None:
        """Move the loaded weights into ``weights``; ``word_lang_prob_map`` then maps n-gram -> row."""
        words = list(self.word_lang_prob_map)
        self.weights = np.array([self.word_lang_prob_map[w] for w in words], dtype=np.float64)
        self.word_lang_prob_map = {w: row for row, w in enumerate(words)}
        self.normalized = _NormalizedChars()  # filled as text arrives
        self.word_rows = {}  # normalized word (with its space after) -> rows of its n-grams


def build_factory(seed: int = 0, profiles: str = PROFILES_DIRECTORY) -> NumpyDetectorFactory:
    """langdetect's 55 profiles, loaded once, seeded (a text always gets the same answer)."""
    factory = NumpyDetectorFactory()
    factory.load_profile(profiles)
    factory.freeze()
    factory.set_seed(seed)
    return factory
