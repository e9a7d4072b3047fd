"""``make eval-dedup``: pair precision and recall of near-duplicate clustering.

Builds a corpus from real articles (the bundled seeds, plus
../shared/corpora/10kgnad-test.csv when present) with generated near
duplicates (new headline, added boilerplate, dropped or added sentences,
small word edits, truncation) and exact copies, runs the real pipeline over it
and compares the clusters it wrote with the truth:

* a positive pair: two documents derived from the same article whose exact
  word-shingle Jaccard is >= 0.8;
* a negative pair: two documents derived from different articles;
* pairs from the same article with Jaccard < 0.8 count neither way.
"""

from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import os
import pathlib
import random
import re
import sys
import tempfile
import time

import duckdb

from pipeline.config import PROJECT_ROOT
from pipeline.settings import build_settings
from transforms.minhash import MinHasher, jaccard
from transforms.text import content_key

GNAD = pathlib.Path(PROJECT_ROOT).parent / "shared" / "corpora" / "10kgnad-test.csv"
SEEDS = pathlib.Path(PROJECT_ROOT) / "data" / "seeds"
POSITIVE_JACCARD = 0.8
BOILERPLATE = [
    "Mehr Nachrichten aus aller Welt finden Sie jederzeit auf unserer Webseite und in unserer App.",
    "Dieser Artikel wurde automatisch aus Agenturmaterial erstellt und redaktionell geprüft.",
    "Abonnieren Sie unseren Newsletter, um keine wichtige Meldung zu verpassen.",
]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def base_articles(limit: int) -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    if GNAD.exists():
        with open(GNAD, encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=";", quotechar="'"))
        texts += [text for _, text in rows if len(text.split()) >= 120]
    else:
        print(f"warning: {GNAD} not found; using the {len(texts)} seeds only", file=sys.stderr)
    return texts[:limit]


def variants(text: str, rng: random.Random, donor: str) -> dict[str, str]:
    sentences = _SENTENCE.split(text.strip())
    words = text.split()
    edited = list(words)
    for i in rng.sample(range(len(edited)), max(1, len(edited) // 50)):
        edited[i] = edited[i].upper() if rng.random() < 0.5 else edited[i] + "s"
    drop = rng.randrange(len(sentences)) if len(sentences) > 3 else None
    donor_sentences = _SENTENCE.split(donor.strip())
    return {
        "exact": text,
        "headline": "Eilmeldung: " + " ".join(rng.sample(words, min(6, len(words)))) + "\n" + text,
        "boilerplate": text + "\n" + rng.choice(BOILERPLATE),
        "dropped": " ".join(s for i, s in enumerate(sentences) if i != drop),
        "added": text + " " + donor_sentences[0],
        "edits": " ".join(edited),
        "truncated": " ".join(words[: int(len(words) * 0.9)]),
    }


def build_corpus(folder: pathlib.Path, limit: int, seed: int) -> dict[str, dict]:
    rng = random.Random(seed)
    bases = base_articles(limit)
    docs = {}
    for index, text in enumerate(bases):
        name = f"b{index:04d}_original.txt"
        docs[name] = {"base": index, "text": text}
        donor = bases[(index + 1) % len(bases)]
        for kind, variant in variants(text, rng, donor).items():
            docs[f"b{index:04d}_{kind}.txt"] = {"base": index, "text": variant}
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / name).write_text(doc["text"], encoding="utf-8")
    return docs


def truth_pairs(docs: dict[str, dict], shingle_size: int) -> tuple[set, set]:
    """(positive pairs, don't-care pairs) by exact Jaccard within each base article."""
    by_base = collections.defaultdict(list)
    for name, doc in docs.items():
        by_base[doc["base"]].append(name)
    keys = {name: content_key(None, doc["text"]) for name, doc in docs.items()}
    positive, ignore = set(), set()
    for names in by_base.values():
        for a, b in itertools.combinations(sorted(names), 2):
            (positive if jaccard(keys[a], keys[b], shingle_size) >= POSITIVE_JACCARD else ignore).add((a, b))
    return positive, ignore


def predicted_pairs(output: str) -> set:
    con = duckdb.connect()
    head = {}
    for origin, article_id in con.execute(
            f"SELECT origin, article_id FROM read_parquet('{output}/articles/**/*.parquet')").fetchall():
        head[os.path.basename(origin)] = article_id
    for origin, duplicate_of in con.execute(
            f"SELECT origin, duplicate_of FROM read_parquet('{output}/duplicates/**/*.parquet')").fetchall():
        head[os.path.basename(origin)] = duplicate_of
    groups = collections.defaultdict(list)
    for name, cluster in head.items():
        groups[cluster].append(name)
    return {pair for names in groups.values() for pair in itertools.combinations(sorted(names), 2)}


def evaluate(limit: int, seed: int, profile: str) -> dict:
    from pipeline.batch import run_batch

    work = pathlib.Path(tempfile.mkdtemp(prefix="newsbeam-eval-dedup-"))
    docs = build_corpus(work / "corpus", limit, seed)
    settings = build_settings(profile, {"inputs": [str(work / "corpus" / "*.txt")], "output": str(work / "out"),
                                        "run_id": "eval-dedup"})
    params = settings.dedup
    positive, ignore = truth_pairs(docs, params["shingle_size"])
    started = time.perf_counter()
    manifest = run_batch(settings)
    elapsed = time.perf_counter() - started
    predicted = predicted_pairs(str(work / "out")) - ignore
    true_positive = len(predicted & positive)
    hasher = MinHasher(params["num_perm"], params["shingle_size"], params["bands"], params["seed"])
    keys = [content_key(None, d["text"]) for d in docs.values()]
    t0 = time.perf_counter()
    for key in keys:
        hasher.signature(key)
    signature_us = (time.perf_counter() - t0) / len(keys) * 1e6
    return {
        "documents": len(docs),
        "base_articles": len({d["base"] for d in docs.values()}),
        "positive_pairs": len(positive),
        "ignored_pairs_below_0.8": len(ignore),
        "predicted_pairs": len(predicted),
        "precision": round(true_positive / len(predicted), 4) if predicted else 1.0,
        "recall": round(true_positive / len(positive), 4) if positive else 1.0,
        "false_positives": sorted(predicted - positive)[:20],
        "missed": sorted(positive - predicted)[:20],
        "pipeline_seconds": round(elapsed, 2),
        "minhash_signature_us_per_article": round(signature_us, 1),
        "counters": {k: manifest["counters"][k] for k in ("inputs", "articles", "duplicates", "dead_letters")},
        "params": {k: params[k] for k in ("shingle_size", "num_perm", "bands", "threshold")},
        "work_dir": str(work),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=400, help="base articles (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the variants (default: %(default)s)")
    parser.add_argument("--profile", default="local")
    args = parser.parse_args(argv)
    result = evaluate(args.articles, args.seed, args.profile)
    print(json.dumps(result, indent=2))
    ok = result["precision"] >= 0.99 and result["recall"] >= 0.95
    print(f"pair precision {result['precision']:.4f} (target >= 0.99), recall {result['recall']:.4f} "
          f"(target >= 0.95): {'OK' if ok else 'BELOW TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
