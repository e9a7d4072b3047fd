"""Accuracy and speed of the language detectors, and what ``language.max_chars`` trades.

Data (read-only, under ``../shared/corpora``; both required):
  * ``lingua-testdata/sentences_<lang>.txt``: 1,000 sentences in each of 14 languages;
  * ``10kgnad-test.csv``: 1,028 German news articles (every tag should be ``de``).

Every figure goes through :class:`transforms.language.LanguageTagger` with the
profile's thresholds (``min_chars``, ``min_confidence``), so ``und`` counts as
a miss. Results: ``bench/language.json`` and ``bench/language.md`` (only those files).
Without both corpora it refuses to run (exit 2) and writes nothing.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Any

from bench.bench_corpus import GNAD_CSV, LINGUA_DIR, PROJECT

RESULTS = PROJECT / "bench" / "language.json"
TABLE = PROJECT / "bench" / "language.md"  # the tables of docs/language.md, written by this tool only
DETECTORS = ("langdetect", "fasttext")
MAX_CHARS = (100, 200, 300, 500, 1000, 2000, None)  # None: the full text


def _tagger(detector: str, max_chars: int | None, base: dict[str, Any]):
    from transforms.language import LanguageTagger

    settings = {**base, "detector": detector, "max_chars": max_chars or 10**9}
    return LanguageTagger(**settings)


def _measure(tagger, texts: list[str], expected: list[str]) -> dict[str, Any]:
    # CPU time of this process: the machine may be shared, and wall time would count the neighbours.
    start = time.process_time()
    tags = [tagger.tag(None, text)[0] for text in texts]
    seconds = time.process_time() - start
    correct = sum(t == e for t, e in zip(tags, expected))
    return {"texts": len(texts), "accuracy": round(correct / len(texts), 4),
            "und": round(sum(t == "und" for t in tags) / len(texts), 4),
            "us_per_text": round(seconds / len(texts) * 1e6, 1), "tags": tags}


class MissingCorpora(RuntimeError):
    """The shared corpora the benchmark is made of are absent."""


def run_language_bench(profile: str = "local", write: bool = True) -> dict[str, Any]:
    from pipeline.settings import build_settings

    missing = [str(path) for path in (LINGUA_DIR, GNAD_CSV) if not path.exists()]
    if missing:
        raise MissingCorpora(f"{', '.join(missing)} not found (../shared/corpora); nothing measured, nothing written")

    base = dict(build_settings(profile, {"inputs": ["unused"]}).language)
    results: dict[str, Any] = {"settings": {k: base[k] for k in ("min_chars", "min_confidence", "seed")},
                               "warnings": []}
    if LINGUA_DIR.is_dir():
        texts, expected = [], []
        for path in sorted(LINGUA_DIR.glob("sentences_*.txt")):
            lang = path.stem.split("_", 1)[1]
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            texts += lines
            expected += [lang] * len(lines)
        lingua = {}
        for detector in DETECTORS:
            m = _measure(_tagger(detector, base["max_chars"], base), texts, expected)
            per_lang = {}
            for lang in sorted(set(expected)):
                idx = [i for i, e in enumerate(expected) if e == lang]
                per_lang[lang] = round(sum(m["tags"][i] == lang for i in idx) / len(idx), 4)
            m.pop("tags")
            lingua[detector] = {**m, "per_language": per_lang}
            print(f"lingua sentences  {detector:<10} accuracy {m['accuracy']:.1%}  und {m['und']:.1%}  "
                  f"{m['us_per_text']:,.0f} µs/text", flush=True)
        results["lingua_sentences"] = lingua
    else:
        results["warnings"].append(f"{LINGUA_DIR} not found: no multi-language accuracy")
    if GNAD_CSV.is_file():
        with GNAD_CSV.open(encoding="utf-8", newline="") as handle:
            texts = [row[1] for row in csv.reader(handle, delimiter=";", quotechar="'") if len(row) >= 2]
        gnad: dict[str, Any] = {"articles": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts))}
        for detector in DETECTORS:
            full_tags = None
            rows = {}
            for max_chars in reversed(MAX_CHARS):  # full text first: the reference for agreement
                m = _measure(_tagger(detector, max_chars, base), texts, ["de"] * len(texts))
                tags = m.pop("tags")
                if full_tags is None:
                    full_tags = tags
                m["same_as_full_text"] = round(sum(a == b for a, b in zip(tags, full_tags)) / len(tags), 4)
                rows[str(max_chars or "full")] = m
                print(f"10kGNAD  {detector:<10} max_chars={str(max_chars or 'full'):<5} accuracy {m['accuracy']:.2%}  "
                      f"und {m['und']:.2%}  same as full {m['same_as_full_text']:.2%}  {m['us_per_text']:,.0f} µs/article",
                      flush=True)
            gnad[detector] = {k: rows[k] for k in [str(c or "full") for c in MAX_CHARS]}
        results["10kgnad"] = gnad
    else:
        results["warnings"].append(f"{GNAD_CSV} not found: no max_chars figures")
    for warning in results["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        TABLE.write_text(markdown(results) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(PROJECT)} and {TABLE.relative_to(PROJECT)}")
    return results


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [f"Thresholds: `min_chars: {s['min_chars']}`, `min_confidence: {s['min_confidence']}` "
             "(a tag below them is `und` and counts as a miss)."]
    lingua = results.get("lingua_sentences")
    if lingua:
        langs = list(next(iter(lingua.values()))["per_language"])
        lines += ["", "Single sentences, 14 languages x 1,000 (lingua test data):", "",
                  "| detector | accuracy | und | CPU µs per text | " + " | ".join(langs) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(langs)]
        for det, m in lingua.items():
            lines.append(f"| {det} | {m['accuracy']:.1%} | {m['und']:.1%} | {m['us_per_text']:,.0f} | "
                         + " | ".join(f"{m['per_language'][l]:.0%}" for l in langs) + " |")
    gnad = results.get("10kgnad")
    if gnad:
        lines += ["", f"German news articles, {gnad['articles']:,} (10kGNAD test split, mean "
                      f"{gnad['mean_chars']:,} characters), by `language.max_chars`:", "",
                  "| detector | max_chars | accuracy (de) | und | same tag as full text | CPU µs per article |",
                  "|---|---:|---:|---:|---:|---:|"]
        for det in DETECTORS:
            for cap, m in gnad.get(det, {}).items():
                lines.append(f"| {det} | {cap} | {m['accuracy']:.2%} | {m['und']:.2%} | "
                             f"{m['same_as_full_text']:.2%} | {m['us_per_text']:,.0f} |")
    return "\n".join(lines)


def main(write: bool = True) -> int:
    try:
        run_language_bench(write=write)
    except MissingCorpora as err:
        print(f"bench --language: refusing to run: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
