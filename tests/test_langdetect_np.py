"""transforms/langdetect_np: stock langdetect's answers, bit for bit, from the numpy detector, with its
trials in C (transforms/_langdetect_trial.c) and on numpy alone (Python 3.12+, or no C compiler at install)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from conftest import c_or_numpy
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


@pytest.fixture(params=["c", "numpy"])
def trial_path(request, monkeypatch):
    """A test with this fixture runs with the trials in C and again with the numpy path."""
    import transforms.langdetect_np as module

    return c_or_numpy(request, monkeypatch, module, "_trial")  # also None on Python 3.12+


def test_the_c_trial_is_built_where_it_can_be():
    """`make setup` builds it (setup.py) when a C compiler is there; on CPython 3.11 it is then used."""
    import transforms.langdetect_np as module

    if shutil.which("cc") is None or sys.version_info >= (3, 12):
        pytest.skip("no C compiler here, or Python 3.12+ (the numpy path is used)")
    from transforms._langdetect_trial import trial

    assert module._trial is trial


def test_the_c_trial_checks_its_buffers():
    import numpy as np

    trial = pytest.importorskip("transforms._langdetect_trial").trial
    weights, prob = np.ones((3, 4)), np.full(4, 0.25)
    with pytest.raises(IndexError):
        trial(weights, np.array([0, 3], dtype=np.intp), prob, 0.5, 0.99999, 10, 0)
    with pytest.raises(ValueError):
        trial(weights, np.array([0], dtype=np.intp), np.full(5, 0.2), 0.5, 0.99999, 10, 0)  # 12 values: no rows of 5
    with pytest.raises((TypeError, BufferError)):
        trial(weights, np.array([0], dtype=np.intp), np.full(4, 0.25)[::2], 0.5, 0.99999, 10, 0)  # not contiguous
    # Two draws, no convergence before the limit: asks for draw 2 (-(2 + 1)), then ends at the limit (update 5).
    prob = np.full(4, 0.25)
    assert trial(weights, np.array([0, 1], dtype=np.intp), prob, 0.5, 0.99999, 5, 0) == -3
    assert trial(weights, np.array([0, 1, 2, 0, 1, 2], dtype=np.intp), prob, 0.5, 0.99999, 5, 2) == 6


@pytest.fixture(scope="module")
def factories():
    stock = DetectorFactory()
    stock.load_profile(PROFILES_DIRECTORY)
    stock.set_seed(0)
    return stock, build_factory(0)


@pytest.mark.usefixtures("trial_path")
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


@pytest.mark.usefixtures("trial_path")
def test_no_features_raises_like_stock(factories):
    stock, fast = factories
    for text in ("", "1234 !!", "   "):
        assert _probabilities(fast, text)[0] == "error" == _probabilities(stock, text)[0]


@pytest.mark.usefixtures("trial_path")
def test_another_seed_gives_stock_answers_for_that_seed():
    stock = DetectorFactory()
    stock.load_profile(PROFILES_DIRECTORY)
    stock.set_seed(7)
    fast = build_factory(7)
    text = "Die Regierung will den Verteidigungshaushalt erhöhen, sagte der Minister am Montag."
    assert _probabilities(fast, text) == _probabilities(stock, text)
    assert _probabilities(fast, text) != _probabilities(build_factory(0), text)


# Edge cases of stock's text handling: capitals (``capitalword``), spaces and line ends, URLs and mail,
# Vietnamese combining marks, scripts that ``cleaning_text`` strips Latin from, characters ``NGram.normalize``
# maps (Romanian comma-below, Farsi yeh, kana, CJK, Hangul, Latin Extended Additional), titlecase letters,
# characters outside the BMP, a word at the very end with and without a space after it.
EDGE_TEXTS = [
    "NATO", "NATO and the EU", "The USA, the UK AND the EU said ONU", "McDonald's iPhone eBay WhatsApp",
    "ÉTATS-UNIS: LA FRANCE ET L'ALLEMAGNE", "ПРАВИТЕЛЬСТВО России", "ǅemal ǈubljana ǋ", "A B C d e f",
    "word  with   many    spaces", "  leading and trailing  ", "lines\nand\ttabs\r\nand\u00a0nbsp",
    "mail me at someone@example.org or see http://example.com/x?y=1 now", "https://a.b/c",
    "Tiếng Việt có dấu: Việt Nam", "Tie\u0302\u0301ng Vie\u0323\u0302t", "Ελληνικά με λίγα English words",
    "Москва Moscow Москва Москва", "ﻣﺮﺣﺒﺎ بالعالم ی Farsi", "ひらがな カタカナ 漢字 한국어", "ạ ả ấ ầ ẩ ẫ ậ ắ",
    "emoji 😀 text 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "x", "xy", "ab ", " a", "1234 !!", "Ș ș Ț ț", "«Le» — “the” ‘a’ …",
    "ß ẞ ÿ Ÿ ı İ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "a" * 50, "é" * 3 + " " + "E" * 3,
]


@pytest.mark.usefixtures("trial_path")
def test_edge_cases_equal_stock_bit_for_bit(factories):
    stock, fast = factories
    differ = [t for t in EDGE_TEXTS if _probabilities(stock, t) != _probabilities(fast, t)]
    assert differ == []
    assert sum(1 for t in EDGE_TEXTS if _probabilities(fast, t)[0] == "error") >= 1  # "1234 !!"


@pytest.mark.usefixtures("trial_path")
def test_random_character_soup_equals_stock_bit_for_bit(factories):
    """Texts drawn from letters of several scripts in both cases, digits, spaces and punctuation."""
    import random

    stock, fast = factories
    pool = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" "äöüßéèêçñåøæœčšžřěůýáíóúĄĘŁŃŚŹŻ"
            "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУ" "αβγδεζηθΑΒΓΔ" "ابتثجحخد"
            "0123456789" + " " * 12 + ".,;:!?'\"-()\n\t")
    rng = random.Random(16)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 300))) for _ in range(300)]
    differ = [t for t in texts if _probabilities(stock, t) != _probabilities(fast, t)]
    assert differ == []


@pytest.mark.usefixtures("trial_path")
def test_two_appends_and_a_cut_text_equal_stock(factories):
    stock, fast = factories
    parts = ["Der Bundestag hat am Donnerstag  ", "  ein neues Gesetz beschlossen. " * 20]
    results = []
    for factory in (stock, fast):
        detector = factory.create()
        detector.set_max_text_length(200)
        for part in parts:
            detector.append(part)
        detector.get_probabilities()
        results.append((detector.text, detector.langprob))
    assert results[0] == results[1]
    assert len(results[0][0]) < sum(map(len, parts))


@pytest.mark.usefixtures("trial_path")
@pytest.mark.parametrize("words, blocks", [(8, 1), (64, 3), (300, 1)])
def test_small_draw_windows_equal_stock(factories, monkeypatch, words, blocks):
    """The draws are read from the stream in windows that grow, and the factors made some blocks ahead:
    with tiny windows every trial crosses window ends (a trial can start right at one, after its
    random.gauss words), and the answers stay stock's."""
    import transforms.langdetect_np as module

    stock, fast = factories
    monkeypatch.setattr(module, "DRAW_WORDS", words)
    monkeypatch.setattr(module, "BLOCKS_AHEAD", blocks)
    texts = _texts()[::40] + EDGE_TEXTS + ["El presidente francés, Emmanuel Macron, "]
    differ = [t for t in texts if _probabilities(stock, t) != _probabilities(fast, t)]
    assert differ == []


@pytest.mark.usefixtures("trial_path")
def test_without_a_seed_detects_like_stock_without_one():
    """No seed: stock draws from a generator seeded by the system; so does this detector (answers vary
    in the last digits, the language does not)."""
    fast = build_factory(0)
    fast.set_seed(None)
    assert fast.stream is None
    text = "Die Regierung will den Verteidigungshaushalt erhöhen, sagte der Minister am Montag in Berlin."
    for _ in range(3):
        detector = fast.create()
        detector.append(text)
        best = detector.get_probabilities()[0]
        assert best.lang == "de" and best.prob > 0.99
