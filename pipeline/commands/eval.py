"""``newsbeam eval``: precision/recall of the topic labels per label and per language, off-topic rate on 10kGNAD."""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.config import PROJECT_ROOT

SHARED = os.path.join(os.path.dirname(PROJECT_ROOT), "shared")
SHARED_DEV = os.path.join(SHARED, "eval", "topics_dev.jsonl")
DATA = os.path.join(PROJECT_ROOT, "tests", "data")
# (name, path, tuned on?): every set is reported on its own; held-out sets were not used to write rules.
DEFAULT_SETS = (
    ("shared dev", SHARED_DEV),
    ("real-news dev", os.path.join(DATA, "realnews_dev.jsonl")),
    ("real-news held-out", os.path.join(DATA, "realnews_heldout.jsonl")),
    ("real-news held-out 2", os.path.join(DATA, "realnews_heldout2.jsonl")),
    ("real-news held-out 3", os.path.join(DATA, "realnews_heldout3.jsonl")),
    ("real-news held-out 4", os.path.join(DATA, "realnews_heldout4.jsonl")),
    ("real-news held-out 5", os.path.join(DATA, "realnews_heldout5.jsonl")),
    ("real-news held-out 6", os.path.join(DATA, "realnews_heldout6.jsonl")),
    ("real-news held-out 7", os.path.join(DATA, "realnews_heldout7.jsonl")),
    ("real-news held-out 8", os.path.join(DATA, "realnews_heldout8.jsonl")),
    ("real-news held-out 9", os.path.join(DATA, "realnews_heldout9.jsonl")),
    ("real-news held-out 10", os.path.join(DATA, "realnews_heldout10.jsonl")),
    ("written dev", os.path.join(DATA, "topics_dev.jsonl")),
    ("written held-out", os.path.join(DATA, "topics_heldout.jsonl")),
)
GNAD = os.path.join(SHARED, "corpora", "10kgnad-test.csv")
RESULTS = os.path.join(PROJECT_ROOT, "eval", "topics.json")
DOC = os.path.join(PROJECT_ROOT, "docs", "topics.md")
TABLE_START, TABLE_END = "<!-- eval:topics:start -->", "<!-- eval:topics:end -->"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate the topic labels (precision/recall per label and language, off-topic rate)",
        description="Run the topic labeler over labeled JSON-lines sets and print precision and recall per "
                    "label and per language, and every error; then over the 10kGNAD test split and print the "
                    "share of off-topic articles (Sport, Kultur, Web, Wissenschaft, Etat) that get any label. "
                    "Exits 2 when a default corpus (../shared/eval/topics_dev.jsonl, ../shared/corpora/"
                    "10kgnad-test.csv) is missing; with --write it stores the results in eval/topics.json and "
                    "the table block of docs/topics.md (nothing else).")
    parser.add_argument("--topics", default="configs/topics.yaml", help="taxonomy YAML (default: %(default)s)")
    parser.add_argument("--set", dest="sets", action="append", metavar="JSONL",
                        help="labeled set (repeatable; default: the shared dev set, the real-news dev and "
                             "held-out sets and the written dev and held-out sets)")
    parser.add_argument("--gnad", default=GNAD, metavar="CSV",
                        help="10kGNAD test CSV for the off-topic rate ('' to skip; default: %(default)s)")
    parser.add_argument("--sample", type=int, default=15,
                        help="labeled 10kGNAD articles of other categories to list (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--write", action="store_true",
                        help=f"write {os.path.relpath(RESULTS, PROJECT_ROOT)} and the results table in "
                             f"{os.path.relpath(DOC, PROJECT_ROOT)}")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from bench.evaluate_topics import (evaluate, format_off_topic, format_scores, load_examples,
                                          markdown_scores, off_topic_report, read_gnad, targets_met)
    from transforms.language import LanguageTagger
    from transforms.topics import CompiledTaxonomy, load_taxonomy

    sets = [(os.path.relpath(p), p) for p in args.sets] if args.sets else list(DEFAULT_SETS)
    missing = [p for _, p in sets if not os.path.isfile(p)]
    if args.gnad and not os.path.isfile(args.gnad):
        missing.append(args.gnad)
    if missing:
        print("eval: missing corpus: " + ", ".join(missing) + " (the shared corpora live in ../shared; pass "
              "--set/--gnad '' to evaluate without them)", file=sys.stderr)
        return 2
    taxonomy = CompiledTaxonomy(load_taxonomy(args.topics))
    tagger = LanguageTagger()
    results: dict = {"taxonomy_version": taxonomy.version, "sets": {}}
    print(f"taxonomy {args.topics} version {taxonomy.version}")
    short = []
    for name, path in sets:
        result = evaluate(taxonomy, load_examples(path, tagger))
        results["sets"][name] = {"path": os.path.relpath(path, PROJECT_ROOT), **result}
        print(format_scores(f"{name} ({os.path.relpath(path)})", result))
        short += [f"{name}: {cell}" for cell in targets_met(result)]
    if args.gnad:
        results["gnad"] = off_topic_report(taxonomy, read_gnad(args.gnad))
        print(format_off_topic(results["gnad"], args.sample))
    print("targets (P and R >= 95 % per label and per language with >= 5 positives; <= 1 % off-topic): "
          + ("met" if not short and (not args.gnad or results["gnad"]["off_topic_rate"] <= 0.01)
             else "NOT met: " + "; ".join(short)))
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    if args.write:
        _write(results, markdown_scores)
    return 0


def _write(results: dict, markdown_scores) -> None:
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    slim = {"taxonomy_version": results["taxonomy_version"],
            "sets": {name: {k: v for k, v in r.items() if k != "errors"} for name, r in results["sets"].items()}}
    if "gnad" in results:
        slim["gnad"] = {k: v for k, v in results["gnad"].items() if k not in ("hits",)}
    with open(RESULTS, "w", encoding="utf-8") as handle:
        json.dump(slim, handle, indent=2, default=str)
        handle.write("\n")
    blocks = [f"Taxonomy version `{results['taxonomy_version']}`. Cells: precision / recall (tp/fp/fn)."]
    for name, r in results["sets"].items():
        blocks += ["", markdown_scores(f"{name} ({r['path']})", r)]
    if "gnad" in results:
        g = results["gnad"]
        blocks += ["", f"10kGNAD off-topic rate (Sport, Kultur, Web, Wissenschaft, Etat): {g['off_topic_labeled']}/"
                       f"{g['off_topic_articles']} = {100 * g['off_topic_rate']:.1f} %"]
    if os.path.isfile(DOC):
        text = open(DOC, encoding="utf-8").read()
        if TABLE_START in text and TABLE_END in text:
            head, rest = text.split(TABLE_START, 1)
            _, tail = rest.split(TABLE_END, 1)
            with open(DOC, "w", encoding="utf-8") as handle:
                handle.write(head + TABLE_START + "\n" + "\n".join(blocks) + "\n" + TABLE_END + tail)
    print(f"wrote {os.path.relpath(RESULTS, PROJECT_ROOT)}" + (f" and the table in {os.path.relpath(DOC, PROJECT_ROOT)}"
                                                                 if os.path.isfile(DOC) else ""))
