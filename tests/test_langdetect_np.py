"""transforms/langdetect_np: stock langdetect's answers, bit for bit, from the numpy detector."""

import json
from pathlib import Path

import pytest
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from transforms.langdetect_np import build_factory

DATA = Path(__file__).parent / "data"


def _texts() -> list[str]:
    """Real text in 14 languages (the real-news excerpts, the cs/sk sentences, the seeds), whole and cut."""
    texts = []
    for path in sorted(DATA.glob("realnews_*.jsonl")) + [DATA / "lang_cs_sk_dev.jsonl"]:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            text = item.get("body") or item.get("text") or ""
            texts += [text, text[:40], text[:12]]
    for path in sorted((Path(__file__).parents[1] / "data" / "seeds").glob("*")):
        texts.append(path.read_text(encoding="utf-8")[:1000])
    # Edge cases: nothing to detect, one letter, capitals only, mixed scripts, URLs and mail.
    texts += ["", "   ", "a", "NATO USA EU", "Київ and Berlin 2 %", "see https://example.org/a?b=c or a@b.org",
              "Ţară şi ţară, ș ț ă", "東京で会議", "한국어 문장", "ﻣﺮﺣﺒﺎ بالعالم ی"]
    return texts


def _probabilities(factory, text):
    detector = factory.create()
    detector.append(text)
    try:
        detector.get_probabilities()
    except LangDetectException as error:
        return ("error", str(error))
    return detector.langprob


@pytest.fixture(scope="module")
def factories():
    stock = DetectorFactory()
    stock.load_profile(PROFILES_DIRECTORY)
    stock.set_seed(0)
    return stock, build_factory(0)


def test_every_probability_equals_stock_langdetect_bit_for_bit(factories):
    stock, fast = factories
    texts = _texts()
    assert len(texts) > 2000
    differ = [t for t in texts if _probabilities(stock, t) != _probabilities(fast, t)]
    assert differ == []
    # The texts reach many languages, and some of them never converge before the iteration limit.
    answers = {max(zip(p, fast.langlist))[1] for p in map(lambda t: _probabilities(fast, t), texts)
               if p and p[0] != "error"}
    assert len(answers) >= 14


def test_no_features_raises_like_stock(factories):
    stock, fast = factories
    for text in ("", "1234 !!", "   "):
        assert _probabilities(fast, text)[0] == "error" == _probabilities(stock, text)[0]


def test_another_seed_gives_stock_answers_for_that_seed():
    stock = DetectorFactory()
    stock.load_profile(PROFILES_DIRECTORY)
    stock.set_seed(7)
    fast = build_factory(7)
    text = "Die Regierung will den Verteidigungshaushalt erhöhen, sagte der Minister am Montag."
    assert _probabilities(fast, text) == _probabilities(stock, text)
    assert _probabilities(fast, text) != _probabilities(build_factory(0), text)
