"""Record / compare topic labelling output on every text we have, and time it.

Used to prove that a change to ``transforms/topics.py`` keeps ``CompiledTaxonomy.label`` output
identical (topics, scores, evidence with offsets)::

    python bench/topics_equivalence.py record /tmp/topics_before.jsonl   # before the change
    python bench/topics_equivalence.py compare /tmp/topics_before.jsonl  # after: every line identical
    python bench/topics_equivalence.py time                               # CPU us per article
    python bench/topics_equivalence.py time-vs /tmp/topics_before.py [ROUNDS [OLD_TAXONOMY.yaml]]
        # a saved copy of the old module and this one, side by side in one process (the old one with the
        # current taxonomy, or with OLD_TAXONOMY.yaml: a whole session's before/after)

Texts: data/seeds, tests/data/topics_{dev,heldout}.jsonl, tests/data/realnews_*.jsonl, ../shared/eval/topics_dev.jsonl,
../shared/corpora/10kgnad-test.csv (all 1,028 rows; timing cycles them to 2,000) and ../shared/corpora/lingua-testdata/sentences_*.txt
(first 200 lines each); each with its language tag and with language None.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
sys.path.insert(0, ROOT)
csv.field_size_limit(1 << 30)

from transforms.topics import CompiledTaxonomy, load_taxonomy  # noqa: E402


def _split(text: str) -> tuple[str, str]:
    """Title = first line (or first sentence of a one-line text), body = the rest."""
    head, sep, rest = text.partition("\n")
    if not sep:
        head, sep, rest = text.partition(". ")
        head += sep.rstrip()
    return head.strip(), rest


def gnad_rows(limit: int | None = None):
    path = os.path.join(SHARED, "corpora", "10kgnad-test.csv")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.reader(fh, delimiter=";", quotechar="'")):
            if limit is not None and i >= limit:
                return
            yield row[0], row[1]


def texts():
    """Yield (source id, title, body, language tag)."""
    for path in sorted(glob.glob(os.path.join(ROOT, "data", "seeds", "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            title, body = _split(fh.read())
        yield f"seed:{os.path.basename(path)}", title, body, "de"
    for path in (os.path.join(ROOT, "tests", "data", "topics_dev.jsonl"),
                 os.path.join(ROOT, "tests", "data", "topics_heldout.jsonl"),
                 *sorted(glob.glob(os.path.join(ROOT, "tests", "data", "realnews_*.jsonl"))),
                 os.path.join(SHARED, "eval", "topics_dev.jsonl")):
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if line.strip():
                    ex = json.loads(line)
                    yield (f"{os.path.relpath(path, os.path.dirname(ROOT))}:{n}", ex.get("title") or "",
                           ex.get("body") or "", ex.get("lang") or ex.get("language"))
    for n, (_category, text) in enumerate(gnad_rows()):
        title, body = _split(text)
        yield f"10kgnad:{n}", title, body, "de"
        yield f"10kgnad-body:{n}", "", text, "de"
    for path in sorted(glob.glob(os.path.join(SHARED, "corpora", "lingua-testdata", "sentences_*.txt"))):
        lang = os.path.basename(path)[len("sentences_"):-len(".txt")]
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if n >= 200:
                    break
                line = line.rstrip("\n")
                yield f"lingua-{lang}:{n}", "", line, lang
                yield f"lingua-title-{lang}:{n}", line, line, lang


def outputs(taxonomy: CompiledTaxonomy):
    for source, title, body, lang in texts():
        for language in dict.fromkeys([lang, None]):
            topics, evidence = taxonomy.label(title, body, language)
            yield json.dumps({"id": source, "language": language, "topics": topics, "evidence": evidence},
                             ensure_ascii=False, sort_keys=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "time"
    taxonomy = CompiledTaxonomy(load_taxonomy(os.path.join(ROOT, "configs", "topics.yaml")))
    if command == "record":
        with open(argv[1], "w", encoding="utf-8") as out:
            n = sum(out.write(line + "\n") > 0 for line in outputs(taxonomy))
        print(f"recorded {n} outputs to {argv[1]}")
        return 0
    if command == "compare":
        with open(argv[1], encoding="utf-8") as fh:
            before = [line.rstrip("\n") for line in fh]
        after = list(outputs(taxonomy))
        diffs = [(a, b) for a, b in zip(before, after) if a != b]
        labelled = sum('"topics": []' not in a for a in before)
        print(f"compared {len(after)} outputs (before: {len(before)}; {labelled} with a topic): "
              f"{len(diffs)} differ")
        for a, b in diffs[:5]:
            print("BEFORE", a[:600], "\nAFTER ", b[:600])
        return 0 if not diffs and len(before) == len(after) else 1
    if command == "time":
        articles = [_split(text) for _c, text in gnad_rows()]
        if not articles:
            print("../shared/corpora/10kgnad-test.csv not found")
            return 1
        articles = (articles * (2000 // len(articles) + 1))[:2000]  # the test split has 1,028 rows
        for language in ("de", None):
            taxonomy.label("x", "x", language)  # compile outside the timing
            start = time.process_time()
            for title, body in articles:
                taxonomy.label(title, body, language)
            cpu = time.process_time() - start
            print(f"language={language!s:5} {len(articles)} articles: {cpu / len(articles) * 1e6:8.1f} us CPU per article")
        return 0
    if command == "time-vs":
        return time_versus(argv[1], int(argv[2]) if len(argv) > 2 else 3, argv[3] if len(argv) > 3 else None)
    print(__doc__)
    return 2


def time_versus(old_module_path: str, rounds: int = 3, old_taxonomy: str | None = None) -> int:
    """CPU us per article of an older ``transforms/topics.py`` (a saved copy) and the current one, same
    taxonomy data, alternating in one process; best of ``rounds`` per side (the machine is shared)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("topics_old", old_module_path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    data = load_taxonomy(os.path.join(ROOT, "configs", "topics.yaml"))
    old_data = old.load_taxonomy(old_taxonomy) if old_taxonomy else data
    engines = {"old": old.CompiledTaxonomy(old_data), "new": CompiledTaxonomy(data)}
    print(f"old: {old_module_path} with taxonomy {old_data['version']}; new: transforms/topics.py with {data['version']}")
    sets = {"10kGNAD, tagged de": ([_split(text) for _c, text in gnad_rows()], "de"),
            "10kGNAD, language und": ([_split(text) for _c, text in gnad_rows()], None)}
    realnews = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "realnews_*.jsonl"))):
        with open(path, encoding="utf-8") as fh:
            realnews += [json.loads(line) for line in fh if line.strip()]
    print(f"{len(realnews)} real-news excerpts, each with its own language tag")
    best = {}
    for name, (articles, language) in sets.items():
        for engine in engines.values():
            engine.label("x", "x", language)
        for _ in range(rounds):
            for label, engine in engines.items():
                start = time.process_time()
                for title, body in articles:
                    engine.label(title, body, language)
                cpu = (time.process_time() - start) / len(articles) * 1e6
                best[(name, label)] = min(cpu, best.get((name, label), cpu))
    for _ in range(rounds):
        for label, engine in engines.items():
            start = time.process_time()
            for ex in realnews:
                engine.label(ex.get("title"), ex.get("body"), ex.get("lang"))
            cpu = (time.process_time() - start) / max(1, len(realnews)) * 1e6
            best[("real-news excerpts", label)] = min(cpu, best.get(("real-news excerpts", label), cpu))
    for name in [*sets, "real-news excerpts"]:
        o, n = best[(name, "old")], best[(name, "new")]
        print(f"{name:24} old {o:7.1f} us  new {n:7.1f} us  ratio {o / n:4.2f}x (CPU, best of {rounds})")
    # The floor of this design on the same articles: analysing both fields (lower-casing) and one pass of the
    # automaton of the label-making terms over each, without looking at a single hit.
    new = engines["new"]
    articles = sets["10kGNAD, tagged de"][0]
    floor = None
    for _ in range(rounds):
        start = time.process_time()
        for title, body in articles:
            for field in (new.text(title), new.text(body)):
                for _which, automaton, haystack in new._primary._passes(field):
                    if len(automaton) > 2:  # the C core (transforms/_topics_scan.c)
                        automaton[0].starts(haystack)
                    else:
                        automaton[0].find_matches_as_indexes(haystack, overlapping=True)
        cpu = (time.process_time() - start) / len(articles) * 1e6
        floor = cpu if floor is None else min(floor, cpu)
    print(f"{'floor (10kGNAD)':24} text analysis + one automaton pass per field: {floor:7.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
