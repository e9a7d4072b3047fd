"""Synthetic but real-text benchmark corpus: N article files with a known make-up.

Text comes from the bundled seeds, the 10kGNAD test split
(``../shared/corpora/10kgnad-test.csv``, German news) and the lingua test
sentences (``../shared/corpora/lingua-testdata/sentences_<lang>.txt``, other
languages) when those are present; without them the corpus is built from the
seeds alone (with a warning) and has no other-language share.

Every unique German article is the lead of one source article followed by
sentences of other articles of the same section (lengths follow the source
articles); other-language articles are runs of random test sentences, laid out in one of the seed layouts
(title line, `` date YYYY-MM-DD`` lead, `` date YYYY-MM`` lead, plain body);
dates fall mostly in the month before the run (80%), the rest in 2024-2026.
On top come, in fixed shares: byte-identical copies, copies with different
line endings / spacing (both exact duplicates), edited copies (near
duplicates: one sentence dropped, a few words changed), files in a legacy
encoding (cp1252), and empty or binary files (dead letters). The generator
is seeded, so the same parameters always give the same files; the
``expected`` counts in ``corpus.json`` are what a correct run must report.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import pathlib
import random
import re
import shutil
from typing import Any

from transforms.text import content_key
from transforms.read import parse_article_text

LOG = logging.getLogger(__name__)

PROJECT = pathlib.Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT / "data" / "seeds"
SHARED_CORPORA = PROJECT.parent / "shared" / "corpora"
GNAD_CSV = SHARED_CORPORA / "10kgnad-test.csv"
LINGUA_DIR = SHARED_CORPORA / "lingua-testdata"

RECENT_END = dt.date(2026, 11, 20)  # the day before the benchmark's fixed run date
CORPUS_VERSION = 4  # bump when the generator changes what it writes
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"„«»“A-ZÄÖÜ0-9])")
_WORD = re.compile(r"\w{4,}")
_CITIES = ("Wien", "Berlin", "Brüssel", "Paris", "Kiew", "Washington", "Genf", "Rom", "London", "Moskau")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """What to generate; the shares are of all files."""

    articles: int = 100_000
    seed: int = 7
    exact_share: float = 0.05      # byte copies (4/5) and whitespace/line-ending variants (1/5)
    near_share: float = 0.05       # edited copies: one sentence dropped, a few words changed
    other_lang_share: float = 0.10  # unique articles in one of 13 other languages (needs lingua data)
    legacy_share: float = 0.005    # unique articles written in cp1252 instead of UTF-8
    dead_share: float = 0.002      # empty and binary files

    def key(self) -> str:
        data = json.dumps({**dataclasses.asdict(self), "version": CORPUS_VERSION,
                           "gnad": GNAD_CSV.is_file(), "lingua": LINGUA_DIR.is_dir()}, sort_keys=True)
        return hashlib.blake2b(data.encode(), digest_size=6).hexdigest()


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def load_sources() -> tuple[list[tuple[str, list[str]]], dict[str, list[str]], list[str]]:
    """German source texts as ``(category, sentences)``, other-language sentence pools, and warnings."""
    warnings: list[str] = []
    german: list[tuple[str, list[str]]] = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^\s*date\s+\S+\s*", "", text)
        german.append(("International", split_sentences(" ".join(text.split()))))
    if GNAD_CSV.is_file():
        with GNAD_CSV.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter=";", quotechar="'"):
                if len(row) >= 2 and len(row[1]) > 200:
                    german.append((row[0], split_sentences(row[1])))
    else:
        warnings.append(f"{GNAD_CSV} not found: corpus built from the {len(german)} seed articles only")
    other: dict[str, list[str]] = {}
    if LINGUA_DIR.is_dir():
        for path in sorted(LINGUA_DIR.glob("sentences_*.txt")):
            lang = path.stem.split("_", 1)[1]
            if lang != "de":
                other[lang] = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        warnings.append(f"{LINGUA_DIR} not found: corpus has no other-language articles")
    return [(c, s) for c, s in german if len(s) >= 2], other, warnings


class _Generator:
    def __init__(self, spec: CorpusSpec):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.german, self.other, self.warnings = load_sources()
        self.lengths = sorted(sum(len(s) for s in sents) for _, sents in self.german)
        self.by_category: dict[str, list[str]] = {}
        for category, sents in self.german:
            self.by_category.setdefault(category, []).extend(sents)
        self.keys: set[str] = set()

    def _date(self) -> dt.date:
        # Mostly the last month before the benchmark's run date, some archive items from the years before.
        if self.rng.random() < 0.8:
            return RECENT_END - dt.timedelta(days=self.rng.randrange(0, 30))
        return dt.date(2024, 1, 1) + dt.timedelta(days=self.rng.randrange(0, (RECENT_END - dt.date(2024, 1, 1)).days))

    def _target_chars(self) -> int:
        # Lengths of the real source articles, so short notes and long reports keep their mix.
        return max(300, self.rng.choice(self.lengths))

    def _sentences(self, lang: str) -> list[str]:
        target = self._target_chars()
        if lang == "de":
            # The lead of one real article, then sentences of other articles of the same section:
            # coherent enough for the topic labels, and two generated articles rarely share more
            # than a sentence or two (so they are not near duplicates of each other).
            category, source = self.rng.choice(self.german)
            picked = list(source[:2])
            pool = self.by_category[category]
            while sum(map(len, picked)) < target:
                picked.append(self.rng.choice(pool))
            return picked
        pool = self.other[lang]
        picked = []
        while sum(map(len, picked)) < min(target, 4000):
            picked.append(self.rng.choice(pool))
        return picked

    def _layout(self, sentences: list[str]) -> str:
        rng = self.rng
        paragraphs, i = [], 0
        while i < len(sentences):
            n = rng.randint(1, 5)
            paragraphs.append(" ".join(sentences[i:i + n]))
            i += n
        sep = rng.choice(("\n\n", "\n", "\n\n"))
        layout = rng.random()
        if layout < 0.40:  # title line
            words = paragraphs[0].split()[: rng.randint(4, 12)]
            title = " ".join(words).rstrip(".!?:;,…")
            if rng.random() < 0.5:
                title = f"{rng.choice(_CITIES)}: {title}"
            return title + "\n" + sep.join(paragraphs)
        if layout < 0.65:  # dated lead, day precision
            return f" date {self._date().isoformat()} " + sep.join(paragraphs)
        if layout < 0.75:  # dated lead, month precision
            return f" date {self._date().isoformat()[:7]} " + sep.join(paragraphs)
        return sep.join(paragraphs)  # plain body

    @staticmethod
    def key_of(text: str) -> str:
        """The words exact dedup compares (the date line is not part of them)."""
        parsed = parse_article_text(text)
        return content_key(parsed["title"], parsed["body"])

    def unique_text(self, lang: str) -> str:
        for _ in range(50):
            text = self._layout(self._sentences(lang))
            key = self.key_of(text)
            if key not in self.keys:
                self.keys.add(key)
                return text
        raise RuntimeError("could not generate a unique article; the source corpus is too small")

    def near_copy(self, text: str) -> str:
        """Drop one sentence and change a few words: a near duplicate, never an exact one."""
        rng = self.rng
        sentences = split_sentences(text)
        if len(sentences) > 4:
            del sentences[rng.randrange(1, len(sentences))]
        edited = " ".join(sentences)
        words = _WORD.findall(edited)
        for word in rng.sample(words, min(2, len(words))):
            edited = edited.replace(word, word[::-1], 1)
        edited += f" ({rng.choice(_CITIES)}, aktualisiert)"
        self.keys.add(self.key_of(edited))
        return edited


def generate(spec: CorpusSpec, root: pathlib.Path, force: bool = False) -> dict[str, Any]:
    """Write the corpus under ``root/corpus-<key>/`` (reused when complete); returns its description."""
    folder = root / f"corpus-{spec.key()}"
    meta_path = folder / "corpus.json"
    if meta_path.is_file() and not force:
        meta = json.loads(meta_path.read_text())
        meta["reused"] = True
        return meta
    if folder.exists():
        shutil.rmtree(folder)
    files_dir = folder / "articles"
    files_dir.mkdir(parents=True)
    gen = _Generator(spec)
    for warning in gen.warnings:
        LOG.warning(warning)
    rng = gen.rng
    other_langs = sorted(gen.other)
    counts = {"unique": 0, "exact_duplicates": 0, "near_duplicates": 0, "dead_letters": 0, "legacy_encoding": 0}
    languages: dict[str, int] = {}
    written: list[tuple[str, str]] = []  # (text, lang) of unique articles, to copy from
    total_bytes = 0
    for i in range(spec.articles):
        roll = rng.random()
        if roll < spec.dead_share:
            data = b"" if rng.random() < 0.5 else b"\x00\x01PK\x03\x04" + bytes(rng.randrange(256) for _ in range(64))
            counts["dead_letters"] += 1
        elif written and roll < spec.dead_share + spec.exact_share:
            text, lang = rng.choice(written)
            if rng.random() < 0.8:
                data = text.encode("utf-8")
            else:  # same words, other line endings and spacing
                data = text.replace("\n", "\r\n").replace(" ", "  ", 3).encode("utf-8") + b"\r\n"
            counts["exact_duplicates"] += 1
        elif written and roll < spec.dead_share + spec.exact_share + spec.near_share:
            text, lang = rng.choice(written)
            data = gen.near_copy(text).encode("utf-8")
            counts["near_duplicates"] += 1
            languages[lang] = languages.get(lang, 0) + 1
        else:
            lang = "de"
            if other_langs and rng.random() < spec.other_lang_share / (1 - spec.exact_share - spec.near_share):
                lang = rng.choice(other_langs)
            text = gen.unique_text(lang)
            if lang == "de" and rng.random() < spec.legacy_share:
                data = text.encode("cp1252", errors="replace")
                counts["legacy_encoding"] += 1
            else:  # only UTF-8 originals are copied, so every copy decodes to the same words
                data = text.encode("utf-8")
                written.append((text, lang))
            counts["unique"] += 1
            languages[lang] = languages.get(lang, 0) + 1
        (files_dir / f"a{i:07d}.txt").write_bytes(data)
        total_bytes += len(data)
    meta = {
        "spec": dataclasses.asdict(spec),
        "key": spec.key(),
        "folder": str(folder),
        "pattern": str(files_dir / "*.txt"),
        "files": spec.articles,
        "bytes": total_bytes,
        "sources": {"german_texts": len(gen.german), "other_languages": other_langs, "warnings": gen.warnings},
        "made_up_of": counts,
        "languages_of_articles": dict(sorted(languages.items())),
        # What a run with exact dedup only must report (near duplicates stay articles until near dedup lands).
        "expected": {
            "inputs": spec.articles,
            "articles_exact_only": counts["unique"] + counts["near_duplicates"],
            "exact_duplicates": counts["exact_duplicates"],
            "near_duplicates": counts["near_duplicates"],
            "dead_letters": counts["dead_letters"],
        },
    }
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    meta["reused"] = False
    return meta
