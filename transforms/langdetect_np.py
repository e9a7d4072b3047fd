"""langdetect's detector on numpy arrays (and its trial loop in C): the same answers, bit for bit, about 3.5x
faster than stock on numpy alone and ~10x with the C loop.

(300-character bench texts, one process: stock langdetect 4,300 µs per text, this detector 1,160 µs on numpy;
session 9, alternating in one process: numpy 1,230-2,040 µs, with the C trial loop 425-630 µs.)

langdetect (``Detector._detect_block``) multiplies a list of 55 language probabilities by an n-gram's 55
weights in a Python loop, about 330 times per text (7 trials of random n-grams until one language passes
0.99999, checked every 5th update), and builds its n-grams character by character. This module keeps
langdetect's profiles, its n-grams (the same list in the same order), its random draws and its arithmetic
(the same IEEE-754 operations element by element, the sum taken in the same order):

- Draws. Stock seeds a ``random.Random`` with the factory's seed for every text, so every text reads the
  same stream of 32-bit Mersenne Twister words: ``random.choice(ngrams)`` is ``_randbelow(n)``, which takes
  the next word >> (32 - n.bit_length()) until one is below n; ``random.gauss`` (once per trial) takes two
  ``random()`` (two words each) every other call and keeps the second value. The factory keeps the seeded
  generator's words (``_WordStream``, ``getrandbits(32)`` each) and a text finds its draws in them with
  array operations, as CPython's random module would compute them.
- Updates. The draws do not depend on the probabilities and stock checks convergence only after updates
  0, 5, 10, ...: the five factors ``weight + weights[row]`` of a block come from one ``take`` and one
  ``add`` (several blocks ahead), and ``np.multiply.reduce`` over [prob, f1, ..., f5] along axis 0
  computes ((((p*f1)*f2)*f3)*f4)*f5 element by element, as stock's five loops do.
- Text. ``append``/``cleaning_text`` with regexes (and a byte count), the per-character normalization
  with ``str.translate``, the n-grams per word (stock's n-gram buffer starts again after each space),
  cached per word.

``tests/test_langdetect_np.py`` checks that every probability equals stock langdetect's, bit for bit, on
real text in many languages, edge cases and random character soup.

- Trials in C. ``transforms/_langdetect_trial.c`` (built by setup.py when a C compiler is there, without
  fused multiply-adds) runs a whole trial on the draws found here: stock's updates one by one, the sum left
  to right as CPython 3.11's ``sum`` adds floats, the division and the check after updates 0, 5, 10 ...
  Without it (no compiler at install; Python 3.12+, whose ``sum`` compensates rounding) the numpy blocks
  above run instead; the tests run both.

Core: :func:`build_factory` (profiles loaded once, the weights as one matrix, the seeded word stream) and
:class:`NumpyDetector`, created by ``factory.create()`` like langdetect's own detector.
"""

from __future__ import annotations

import math
import random
import re
import sys
import threading

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
_NOT_A_TO_z = bytes(b for b in range(256) if not 0x41 <= b <= 0x7a)  # deleted: the ASCII bytes left are 'A'..'z'
# Words whose n-gram rows the factory keeps, then it starts again (about 320 bytes a word on the bench
# texts: 16 MB at most; 17,372 distinct words in 2,000 bench articles).
WORD_CACHE_SIZE = 50_000


# langdetect's trial loop in C (setup.py builds it; optional): CPython 3.11's float ``sum`` adds left to right, as
# the C loop does. From 3.12 ``sum`` compensates its rounding, and stock langdetect's sums with it: the numpy path,
# whose sums are Python's own, is used there (and without the compiled module).
try:
    from transforms._langdetect_trial import trial as _trial
except ImportError:  # not built (no C compiler at install): the numpy path
    _trial = None
if sys.version_info >= (3, 12):
    _trial = None

# random.py's TWOPI (random.gauss).
_TWOPI = 2.0 * math.pi
# Words of the stream looked at first for a text's draws (about 330 draws per text, up to 2 words each).
DRAW_WORDS = 2048
# Blocks of five iterations whose factors are made at once (a trial takes about 10).
BLOCKS_AHEAD = 10


class _WordStream:
    """The 32-bit words a ``random.Random`` gives (``getrandbits(32)``, one Mersenne Twister output each), in
    order, made as they are needed and kept: with a fixed seed every text draws from the same stream."""

    def __init__(self, generator: random.Random):
        self._generator = generator
        self._lock = threading.Lock()
        self.words = np.empty(0, dtype=np.uint32)

    def upto(self, count: int) -> np.ndarray:
        """The stream's words, at least its first ``count``."""
        words = self.words
        if len(words) < count:
            with self._lock:
                words = self.words
                if len(words) < count:
                    more = max(count, 2 * len(words), 4096) - len(words)
                    getrandbits = self._generator.getrandbits
                    fresh = np.array([getrandbits(32) for _ in range(more)], dtype=np.uint32)
                    words = self.words = np.concatenate((words, fresh))
        return words


class _NormalizedChars(dict):
    """``str.translate`` table: code point -> ``NGram.normalize`` of that character, filled on first sight."""

    def __missing__(self, code: int) -> str:
        norm = self[code] = NGram.normalize(chr(code))
        return norm


class NumpyDetector(Detector):
    """``langdetect.detector.Detector`` whose probability updates run on numpy rows."""

    def __init__(self, factory: "NumpyDetectorFactory"):
        # Stock ``Detector.__init__`` without its ``random.Random()`` (seeded from os.urandom, ~20 µs): the
        # draws come from the factory's stream of the seeded generator's words.
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
        self._stream = factory.stream  # None without a seed: each detection draws from a fresh generator

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
        non_latin = len(_FROM_0300.findall(text))
        if non_latin and len(text.encode('ascii', 'ignore').translate(None, _NOT_A_TO_z)) * 2 < non_latin:
            self.text = _LATIN.sub('', text)

    def _extract_rows(self) -> list[int]:
        """langdetect's ``_extract_ngrams`` (with ``NGram.add_char``), giving each n-gram's row.

        The same n-grams in the same order (``random.choice`` only sees the list's length). Stock's n-gram
        buffer starts again after every space, so the n-grams are those of each word (a run of characters
        other than a space after ``NGram.normalize``) padded with the space before it and the space after
        it (none for a last word at the end of the text); they are cached per word in the factory.
        """
        words = self.text.translate(self._factory.normalized).split(' ')
        last = words.pop()  # after the text's last space: a word without a space after it, or ''
        cache = self._factory.word_rows
        result: list[int] = []
        for word in words:
            if word:
                rows = cache.get(word)
                if rows is None:
                    rows = self._rows_of(' ' + word + ' ')
                    if len(cache) >= WORD_CACHE_SIZE:
                        cache.clear()
                    cache[word] = rows
                result += rows
        if last:
            result += self._rows_of(' ' + last)
        return result

    def _rows_of(self, padded: str) -> tuple[int, ...]:
        """The rows of the n-grams stock emits for a word (normalized) after a space (and maybe before one)."""
        rows_of = self.word_lang_prob_map
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
        # Stock langdetect (detector.py ``_detect_block``): the same draws and the same arithmetic, element by
        # element (module docstring).
        self.cleaning_text()
        ngram_rows = self._extract_rows()
        if not ngram_rows:
            raise LangDetectException(ErrorCode.CantDetectError, 'No features in text.')
        count = len(ngram_rows)
        shift = 32 - count.bit_length()
        if shift < 0:
            raise ValueError(f'{count} n-grams: more than this detector draws from (2**32 - 1)')
        stream = self._stream if self._stream is not None else _WordStream(random.Random())
        ngram_rows = np.array(ngram_rows, dtype=np.intp)
        weights = self._weights
        size = len(self.langlist)

        # random.choice(ngrams) is ngrams[_randbelow(count)]; _randbelow draws getrandbits(count.bit_length())
        # until it is below count, and getrandbits(k) (k <= 32) is the stream's next word >> (32 - k).
        # ``accepted``: the positions of the words that are kept; ``drawn``: the weight row each one picks.
        def draws(span):
            candidates = stream.upto(span)[:span] >> shift
            accepted = np.flatnonzero(candidates < count)
            return span, accepted, ngram_rows[candidates[accepted]]

        span, accepted, drawn = draws(DRAW_WORDS)
        threshold = self.CONV_THRESHOLD
        limit = self.ITERATION_LIMIT
        n_trial = self.n_trial
        initial = np.array(self._init_probability(), dtype=np.float64)
        langprob = np.zeros(size)
        multiply_rows = np.multiply.reduce
        take = weights.take
        add = np.add
        position = 0  # the stream's next word
        leader = 0  # the language with the largest probability at the last check (a guess to test first)
        gauss_next = None
        for _ in range(n_trial):
            # random.gauss(0.0, 1.0) as CPython's random.py computes it: a pair of normal values from two
            # random() (each from two words), one of them kept for the next call.
            z, gauss_next = gauss_next, None
            if z is None:
                a1, b1, a2, b2 = stream.upto(position + 4)[position:position + 4].tolist()
                position += 4
                x2pi = ((a1 >> 5) * 67108864.0 + (b1 >> 6)) * (1.0 / 9007199254740992.0) * _TWOPI
                g2rad = math.sqrt(-2.0 * math.log(1.0 - ((a2 >> 5) * 67108864.0 + (b2 >> 6))
                                                  * (1.0 / 9007199254740992.0)))
                z = math.cos(x2pi) * g2rad
                gauss_next = math.sin(x2pi) * g2rad
            weight = (self.alpha + (0.0 + z * 1.0) * self.ALPHA_WIDTH) / self.BASE_FREQ
            first = int(accepted.searchsorted(position))  # this trial's first draw
            while first >= len(accepted):
                span, accepted, drawn = draws(2 * span)
                first = int(accepted.searchsorted(position))
            if _trial is not None:
                # The whole trial in C (transforms/_langdetect_trial.c): the same operations, in order.
                prob = initial.copy()
                done = _trial(weights, drawn[first:], prob, weight, threshold, limit, 0)
                while done < 0:  # it needs draws past the ones made so far
                    span, accepted, drawn = draws(2 * span)
                    done = _trial(weights, drawn[first:], prob, weight, threshold, limit, -done - 1)
                position = int(accepted[first + done - 1]) + 1  # after this trial's last draw
                langprob += prob / n_trial
                continue
            # Iteration 0: one n-gram, then the first normalization and check.
            prob = initial * (weight + weights[drawn[first]])
            values = prob.tolist()
            total = sum(values)  # Python's left-to-right sum, as langdetect's ``sum(prob)``
            prob /= total
            i = 0
            blocks = block = 0
            factors = None
            # Stock stops when max(p / total) > threshold. max(p / total) == max(p) / total (dividing by a
            # positive number keeps the order, rounded too), and while one language has at least half of the
            # total no other can pass the threshold: only that one (``leader``) is looked at then.
            share = values[leader] / total
            if share < 0.5:
                top = max(values)
                leader, share = values.index(top), top / total
            while share <= threshold and i < limit:
                # Iterations i+1 .. i+5 (five n-grams), then the normalization and the check at i+5; the
                # factors weight + weights[row] of BLOCKS_AHEAD such blocks are made at once.
                if block == blocks:
                    start = first + 1 + i
                    blocks = min(BLOCKS_AHEAD, (limit - i + 4) // 5)
                    while start + 5 * blocks > len(accepted):
                        span, accepted, drawn = draws(2 * span)
                    factors = np.empty((blocks, 6, size))  # [b, 0]: prob before block b; [b, 1:6]: factors
                    add(take(drawn[start:start + 5 * blocks], axis=0).reshape(blocks, 5, size), weight,
                        out=factors[:, 1:])
                    block = 0
                rows = factors[block]
                rows[0] = prob
                multiply_rows(rows, axis=0, out=prob)  # ((((p*f1)*f2)*f3)*f4)*f5, element by element
                values = prob.tolist()
                total = sum(values)
                prob /= total
                i += 5
                block += 1
                share = values[leader] / total
                if share < 0.5:
                    top = max(values)
                    leader, share = values.index(top), top / total
            position = int(accepted[first + i]) + 1  # after this trial's last draw
            langprob += prob / n_trial
        self.langprob = langprob.tolist()


class NumpyDetectorFactory(DetectorFactory):
    """A ``DetectorFactory`` whose n-gram weights are one float64 matrix (n-grams x languages)."""

    weights: np.ndarray
    normalized: _NormalizedChars
    word_rows: dict[str, tuple[int, ...]]
    stream: _WordStream | None = None

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
        self.word_rows = {}  # normalized word (followed by a space) -> rows of its n-grams

    def set_seed(self, seed) -> None:
        """Stock ``set_seed``; the detectors then draw from the words of ``random.Random(seed)``."""
        super().set_seed(seed)
        self.stream = _WordStream(random.Random(seed)) if seed is not None else None


def build_factory(seed: int = 0, profiles: str = PROFILES_DIRECTORY) -> NumpyDetectorFactory:
    """langdetect's 55 profiles, loaded once, seeded (a text always gets the same answer)."""
    factory = NumpyDetectorFactory()
    factory.load_profile(profiles)
    factory.freeze()
    factory.set_seed(seed)
    return factory
