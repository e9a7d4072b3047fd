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

import numpy as np
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram


class NumpyDetector(Detector):
    """``langdetect.detector.Detector`` whose probability updates run on numpy rows."""

    def __init__(self, factory: "NumpyDetectorFactory"):
        super().__init__(factory)
        self._weights = factory.weights  # word_lang_prob_map maps an n-gram to its row here
        self._normalized = factory.normalized

    def _extract_rows(self) -> list[int]:
        """langdetect's ``_extract_ngrams`` + ``NGram.add_char`` inlined, giving each n-gram's row.

        The same n-grams in the same order (``random.choice`` only sees the list's length); the
        per-character normalization is looked up in the factory's cache.
        """
        rows_of = self.word_lang_prob_map
        normalized = self._normalized
        result: list[int] = []
        append = result.append
        grams = ' '
        capital = False
        for ch in self.text:
            norm = normalized.get(ch)
            if norm is None:
                norm = normalized[ch] = NGram.normalize(ch)
            last = grams[-1]
            if last == ' ':
                grams = ' '
                capital = False
                if norm == ' ':
                    continue  # stock: add_char returns and the 1-gram ' ' is skipped
            elif len(grams) >= 3:
                grams = grams[1:]
            grams += norm
            if norm.isupper():
                if last.isupper():
                    capital = True
            else:
                capital = False
            if capital:
                continue
            if norm != ' ':
                row = rows_of.get(norm)
                if row is not None:
                    append(row)
            if len(grams) >= 2:
                row = rows_of.get(grams[-2:])
                if row is not None:
                    append(row)
                if len(grams) >= 3:
                    row = rows_of.get(grams)
                    if row is not None:
                        append(row)
        return result

    def _detect_block(self):
        # Stock langdetect, line for line (detector.py ``_detect_block``), with arrays for ``prob``.
        self.cleaning_text()
        rows = self._extract_rows()
        if not rows:
            raise LangDetectException(ErrorCode.CantDetectError, 'No features in text.')
        weights = self._weights
        size = len(self.langlist)
        langprob = np.zeros(size)
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
    normalized: dict[str, str]

    def _create_detector(self):
        if not self.langlist:
            raise LangDetectException(ErrorCode.NeedLoadProfileError, 'Need to load profiles.')
        return NumpyDetector(self)

    def freeze(self) -> None:
        """Move the loaded weights into ``weights``; ``word_lang_prob_map`` then maps n-gram -> row."""
        words = list(self.word_lang_prob_map)
        self.weights = np.array([self.word_lang_prob_map[w] for w in words], dtype=np.float64)
        self.word_lang_prob_map = {w: row for row, w in enumerate(words)}
        self.normalized = {}  # character -> NGram.normalize(character), filled as text arrives


def build_factory(seed: int = 0, profiles: str = PROFILES_DIRECTORY) -> NumpyDetectorFactory:
    """langdetect's 55 profiles, loaded once, seeded (a text always gets the same answer)."""
    factory = NumpyDetectorFactory()
    factory.load_profile(profiles)
    factory.freeze()
    factory.set_seed(seed)
    return factory
