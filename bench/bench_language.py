"""Accuracy and speed of language tagging per profile, reliability of each detector, lingua's modes.

Data (read-only, under ``../shared/corpora``; the tool exits 2 without them):
  * ``lingua-testdata/sentences_<lang>.txt`` and ``wordpairs_<lang>.txt``: 1,000 lines in each of
    14 languages (lingua's test set: evaluated on, never fitted on);
  * ``10kgnad-test.csv``: 1,028 German news articles (every tag should be ``de``);
  * ``bench/data/tatoeba_lang.jsonl`` (bundled): 5,871 Tatoeba sentences in 15 languages, an
    independent held-out set (origin and licence in ``bench/data/README.md``); measured as single
    sentences and as texts of consecutive sentences of one language (>= 120 characters, cut at 300:
    the long-text path).

Every accuracy goes through :class:`transforms.language.LanguageTagger` with the profile's settings
(the product's cascade), so ``und`` counts as a miss. Also measured: the reliability curve of each
detector on a sample of the sentences (how often its top answer is right per probability bin: the
basis of the calibrated thresholds), and lingua's high- vs low-accuracy mode (memory, speed,
accuracy). Results: ``bench/language.json`` and the tables in ``docs/language.md`` (nothing else).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Any

from bench.bench_corpus import GNAD_CSV, LINGUA_DIR, PROJECT

RESULTS = PROJECT / "bench" / "language.json"
CS_SK_DEV = PROJECT / "tests" / "data" / "lang_cs_sk_dev.jsonl"
DOC = PROJECT / "docs" / "language.md"
# (label, profile, overrides): the default profile with and without its second opinion, and the fast one.
PROFILES = (("local", "local", {}), ("local, no second opinion", "local", {"second_opinion": None}),
            ("fast", "fast", {}))
TATOEBA = PROJECT / "bench" / "data" / "tatoeba_lang.jsonl"
TATOEBA_TEXT_CHARS = (120, 300)
TABLE_START, TABLE_END = "<!-- bench:language:start -->", "<!-- bench:language:end -->"
RELIABILITY_LINES = 300  # per language, for the reliability curves and lingua's modes
BINS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01))


def _read_lingua(kind: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    texts, expected = [], []
    for path in sorted(LINGUA_DIR.glob(f"{kind}_*.txt")):
        lang = path.stem.split("_", 1)[1]
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        lines = lines[:limit] if limit else lines
        texts += lines
        expected += [lang] * len(lines)
    return texts, expected


def _read_tatoeba() -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """Tatoeba sentences, and texts of consecutive sentences of one language (>= 120 chars, cut at 300)."""
    rows = [json.loads(line) for line in TATOEBA.read_text(encoding="utf-8").splitlines() if line.strip()]
    sentences = ([r["text"] for r in rows], [r["lang"] for r in rows])
    texts: tuple[list[str], list[str]] = ([], [])
    current: dict[str, str] = {}
    for r in rows:
        joined = f"{current.get(r['lang'], '')} {r['text']}".strip()
        if len(joined) >= TATOEBA_TEXT_CHARS[0]:
            texts[0].append(joined[: TATOEBA_TEXT_CHARS[1]])
            texts[1].append(r["lang"])
            joined = ""
        current[r["lang"]] = joined
    return sentences, texts


def _measure(tagger, texts: list[str], expected: list[str]) -> dict[str, Any]:
    # CPU time of this process: the machine may be shared, and wall time would count the neighbours.
    start = time.process_time()
    tags = [tagger.tag(None, text)[0] for text in texts]
    seconds = time.process_time() - start
    per_lang = {}
    for lang in sorted(set(expected)):
        idx = [i for i, e in enumerate(expected) if e == lang]
        per_lang[lang] = round(sum(tags[i] == lang for i in idx) / len(idx), 4)
    return {"texts": len(texts), "accuracy": round(sum(t == e for t, e in zip(tags, expected)) / len(texts), 4),
            "und": round(sum(t == "und" for t in tags) / len(texts), 4),
            "us_per_text": round(seconds / len(texts) * 1e6, 1), "per_language": per_lang}


def _strip_diacritics(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _pair_dev(tagger) -> dict[str, Any]:
    """Czech/Slovak dev sentences (tests/data/lang_cs_sk_dev.jsonl, not lingua's test data): right answers per
    language, as written, without diacritics and as two-word beginnings; without and with the pair rule."""
    rows = [json.loads(line) for line in CS_SK_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    variants = {"as written": lambda t: t, "without diacritics": _strip_diacritics,
                "two words": lambda t: " ".join(t.split()[:2])}
    out: dict[str, Any] = {}
    for name, make in variants.items():
        cell: dict[str, Any] = {}
        for lang in ("cs", "sk"):
            texts = [tagger.sample(None, make(r["text"])) for r in rows if r["lang"] == lang]
            cell[lang] = {"texts": len(texts),
                          "without_rule": sum(tagger._cascade(t)[0] == lang for t in texts),
                          "with_rule": sum(tagger.detect(t)[0] == lang for t in texts)}
        out[name] = cell
    return out


def _rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reliability(texts: list[str], expected: list[str]) -> dict[str, Any]:
    """Per detector: accuracy of its top answer per probability bin (the detectors alone, no cascade)."""
    from transforms.language import EXPECTED_LANGUAGES, LanguageTagger, _build_lingua

    langdetect = LanguageTagger("langdetect", short_detector=None)
    fasttext = LanguageTagger("fasttext", short_detector=None)
    lingua = _build_lingua(EXPECTED_LANGUAGES, "high")

    def lingua_top(text):
        values = lingua.compute_language_confidence_values(text)
        return (values[0].language.iso_code_639_1.name.lower(), values[0].value) if values else ("und", 0.0)

    detectors = {"langdetect": langdetect._detect, "fasttext": fasttext._detect, "lingua": lingua_top}
    curves = {}
    for name, detect in detectors.items():
        answers = [detect(t) for t in texts]
        rows = []
        for lo, hi in BINS:
            idx = [i for i, (_, p) in enumerate(answers) if lo <= p < hi]
            right = sum(answers[i][0].split("-")[0] == expected[i] for i in idx)
            rows.append({"from": lo, "to": min(hi, 1.0), "texts": len(idx),
                         "accuracy": round(right / len(idx), 4) if idx else None})
        curves[name] = rows
    return curves


def _lingua_mode(mode: str, samples: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    """One lingua mode measured in this (fresh) process: models of all 16 languages loaded."""
    from transforms.language import EXPECTED_LANGUAGES, _build_lingua

    before = _rss_mb()
    start = time.process_time()
    detector = _build_lingua(EXPECTED_LANGUAGES, mode)
    for code in EXPECTED_LANGUAGES:  # load every language's model (they load on first use)
        detector.compute_language_confidence_values(f"{code} warm up: Koalition der Willigen, sanctions")
    row: dict[str, Any] = {"load_seconds": round(time.process_time() - start, 2), "rss_mb": round(_rss_mb() - before)}
    for kind, (texts, expected) in samples.items():
        start = time.process_time()
        answers = [detector.detect_language_of(t) for t in texts]
        seconds = time.process_time() - start
        right = sum(a is not None and a.iso_code_639_1.name.lower() == e for a, e in zip(answers, expected))
        row[kind] = {"accuracy": round(right / len(texts), 4), "us_per_text": round(seconds / len(texts) * 1e6, 1)}
    return row


def _lingua_modes() -> dict[str, Any]:
    """Each mode in its own process: lingua shares loaded models per process, so memory needs a fresh one."""
    import subprocess

    out = {}
    for mode in ("low", "high"):
        done = subprocess.run([sys.executable, "-m", "bench.bench_language", "--lingua-mode", mode],
                              cwd=PROJECT, capture_output=True, text=True, check=True)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def run_language_bench(write: bool = True) -> int:
    """Measure, print, and (``write``) store ``bench/language.json`` and the docs/language.md tables; 2 without data."""
    from pipeline.settings import build_settings
    from transforms.language import LanguageTagger

    missing = [str(p) for p in (LINGUA_DIR, GNAD_CSV) if not p.exists()]
    if missing:
        print("bench-language: refusing to run, missing corpus: " + ", ".join(missing) + " (lingua's test data "
              "and the 10kGNAD test split live in ../shared/corpora)", file=sys.stderr)
        return 2
    sentences = _read_lingua("sentences")
    wordpairs = _read_lingua("wordpairs")
    with GNAD_CSV.open(encoding="utf-8", newline="") as handle:
        gnad = [row[1] for row in csv.reader(handle, delimiter=";", quotechar="'") if len(row) >= 2]
    tatoeba_sentences, tatoeba_texts = _read_tatoeba()
    results: dict[str, Any] = {"profiles": {}}
    for profile, name_or_path, overrides in PROFILES:
        settings = {**dict(build_settings(name_or_path, {"inputs": ["unused"]}).language), **overrides}
        tagger = LanguageTagger(**settings)
        row: dict[str, Any] = {"settings": settings}
        for name, (texts, expected) in (("sentences", sentences), ("wordpairs", wordpairs),
                                        ("10kgnad", (gnad, ["de"] * len(gnad))),
                                        ("tatoeba_sentences", tatoeba_sentences), ("tatoeba_texts", tatoeba_texts)):
            m = _measure(tagger, texts, expected)
            row[name] = m
            print(f"{profile:6} {name:17} accuracy {m['accuracy']:.2%}  und {m['und']:.2%}  "
                  f"{m['us_per_text']:,.0f} µs per text", flush=True)
        row["cs_sk_dev"] = _pair_dev(tagger)
        print(f"{profile:6} cs/sk dev (right without / with the pair rule): " + "; ".join(
            f"{name} " + ", ".join(f"{lang} {c['without_rule']}/{c['with_rule']} of {c['texts']}" for lang, c in cell.items())
            for name, cell in row["cs_sk_dev"].items()), flush=True)
        results["profiles"][profile] = row
    sample_s = _read_lingua("sentences", RELIABILITY_LINES)
    sample_w = _read_lingua("wordpairs", RELIABILITY_LINES)
    results["reliability_sentences"] = _reliability(*sample_s)
    results["lingua_modes"] = _lingua_modes()
    for mode, m in results["lingua_modes"].items():
        print(f"lingua {mode:4}: +{m['rss_mb']} MB, load {m['load_seconds']} s, sentences "
              f"{m['sentences']['accuracy']:.2%} {m['sentences']['us_per_text']:,.0f} µs, word pairs "
              f"{m['wordpairs']['accuracy']:.2%} {m['wordpairs']['us_per_text']:,.0f} µs")
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        if DOC.is_file():
            text = DOC.read_text(encoding="utf-8")
            if TABLE_START in text and TABLE_END in text:
                head, rest = text.split(TABLE_START, 1)
                _, tail = rest.split(TABLE_END, 1)
                DOC.write_text(head + TABLE_START + "\n" + markdown(results) + "\n" + TABLE_END + tail, encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(PROJECT)} and the tables in {DOC.relative_to(PROJECT)}")
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = ["Accuracy through the product (`LanguageTagger` with the profile's settings; `und` is a miss), CPU µs "
             "per text on a shared machine:", "",
             "| profile | lingua sentences (14 × 1,000) | lingua word pairs (14 × 1,000) | 10kGNAD articles (1,028, de) "
             "| Tatoeba sentences (held out) | Tatoeba texts >= 120 chars (held out) |",
             "|---|---:|---:|---:|---:|---:|"]
    for profile, row in results["profiles"].items():
        cells = [f"{row[k]['accuracy']:.2%} ({row[k]['us_per_text']:,.0f} µs)"
                 for k in ("sentences", "wordpairs", "10kgnad", "tatoeba_sentences", "tatoeba_texts")]
        detectors = row["settings"]["detector"] + (f" + {row['settings']['second_opinion']}"
                                                   if row["settings"].get("second_opinion") else "")
        lines.append(f"| {profile} ({detectors}) | " + " | ".join(cells) + " |")
    langs = list(next(iter(results["profiles"].values()))["sentences"]["per_language"])
    lines += ["", "Per language (sentences / word pairs):", "",
              "| profile | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    for profile, row in results["profiles"].items():
        lines.append(f"| {profile} | " + " | ".join(
            f"{row['sentences']['per_language'][l]:.1%} / {row['wordpairs']['per_language'][l]:.1%}" for l in langs) + " |")
    lines += ["", "Czech/Slovak dev sentences (`tests/data/lang_cs_sk_dev.jsonl`, not lingua's test data): right "
                  "answers without / with the confusable-pair rule:", "",
              "| profile | " + " | ".join(f"{name}: cs / sk" for name in
                                           next(iter(results["profiles"].values()))["cs_sk_dev"]) + " |",
              "|---|" + "---:|" * len(next(iter(results["profiles"].values()))["cs_sk_dev"])]
    for profile, row in results["profiles"].items():
        lines.append(f"| {profile} | " + " | ".join(
            " / ".join(f"{c['without_rule']} → {c['with_rule']} of {c['texts']}" for c in cell.values())
            for cell in row["cs_sk_dev"].values()) + " |")
    lines += ["", f"Reliability of each detector alone on lingua's sentences ({RELIABILITY_LINES} per language): "
                  "share of right top answers per probability bin (texts in the bin):", "",
              "| probability | " + " | ".join(results["reliability_sentences"]) + " |",
              "|---|" + "---:|" * len(results["reliability_sentences"])]
    for i, (lo, hi) in enumerate(BINS):
        cells = []
        for rows in results["reliability_sentences"].values():
            r = rows[i]
            cells.append("–" if r["accuracy"] is None else f"{r['accuracy']:.1%} ({r['texts']})")
        lines.append(f"| {lo:.2f}–{min(hi, 1.0):.2f} | " + " | ".join(cells) + " |")
    lines += ["", "lingua (16 expected languages), low- vs high-accuracy mode:", "",
              "| mode | memory | load | sentences | word pairs |", "|---|---:|---:|---:|---:|"]
    for mode, m in results["lingua_modes"].items():
        lines.append(f"| {mode} | +{m['rss_mb']} MB | {m['load_seconds']} s | {m['sentences']['accuracy']:.2%} "
                     f"({m['sentences']['us_per_text']:,.0f} µs) | {m['wordpairs']['accuracy']:.2%} "
                     f"({m['wordpairs']['us_per_text']:,.0f} µs) |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--lingua-mode"]:
        samples = {"sentences": _read_lingua("sentences", RELIABILITY_LINES),
                   "wordpairs": _read_lingua("wordpairs", RELIABILITY_LINES)}
        print(json.dumps(_lingua_mode(sys.argv[2], samples)))
        sys.exit(0)
    sys.exit(run_language_bench())
