"""``newsbeam eval``: precision/recall of the topic labels on labeled sets, off-topic rate on 10kGNAD."""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.config import PROJECT_ROOT

SHARED = os.path.join(os.path.dirname(PROJECT_ROOT), "shared")
DEFAULT_SETS = (
    os.path.join(SHARED, "eval", "topics_dev.jsonl"),
    os.path.join(PROJECT_ROOT, "tests", "data", "topics_dev.jsonl"),
)
HELDOUT = os.path.join(PROJECT_ROOT, "tests", "data", "topics_heldout.jsonl")
GNAD = os.path.join(SHARED, "corpora", "10kgnad-test.csv")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate the topic labels (precision/recall per label, off-topic rate)",
        description="Run the topic labeler over labeled JSON-lines sets and print precision and recall per "
                    "label and every error; then over the 10kGNAD test split and print the share of off-topic "
                    "articles (Sport, Kultur, Web, Wissenschaft, Etat) that get any label. Missing default "
                    "files (../shared) are skipped.")
    parser.add_argument("--topics", default="configs/topics.yaml", help="taxonomy YAML (default: %(default)s)")
    parser.add_argument("--set", dest="sets", action="append", metavar="JSONL",
                        help="labeled set (repeatable; default: ../shared/eval/topics_dev.jsonl and "
                             "tests/data/topics_dev.jsonl)")
    parser.add_argument("--heldout", default=HELDOUT, metavar="JSONL",
                        help="held-out set, reported separately ('' to skip; default: %(default)s)")
    parser.add_argument("--gnad", default=GNAD, metavar="CSV",
                        help="10kGNAD test CSV for the off-topic rate ('' to skip; default: %(default)s)")
    parser.add_argument("--sample", type=int, default=15,
                        help="labeled 10kGNAD articles of other categories to list (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from bench.evaluate_topics import (evaluate, format_off_topic, format_scores, load_examples,
                                          off_topic_report, read_gnad)
    from transforms.language import LanguageTagger
    from transforms.topics import CompiledTaxonomy, load_taxonomy

    taxonomy = CompiledTaxonomy(load_taxonomy(args.topics))
    tagger = LanguageTagger()
    results: dict = {"taxonomy_version": taxonomy.version}
    print(f"taxonomy {args.topics} version {taxonomy.version}")
    sets = [p for p in (args.sets or DEFAULT_SETS) if args.sets or os.path.isfile(p)]
    dev = [ex for path in sets for ex in load_examples(path, tagger)]
    if dev:
        results["dev"] = evaluate(taxonomy, dev)
        print(format_scores("dev (" + ", ".join(os.path.relpath(p) for p in sets) + ")", results["dev"]))
    if args.heldout and os.path.isfile(args.heldout):
        results["heldout"] = evaluate(taxonomy, load_examples(args.heldout, tagger))
        print(format_scores(f"held-out ({os.path.relpath(args.heldout)})", results["heldout"]))
    if args.gnad and os.path.isfile(args.gnad):
        results["gnad"] = off_topic_report(taxonomy, read_gnad(args.gnad))
        print(format_off_topic(results["gnad"], args.sample))
    elif args.gnad:
        print(f"10kGNAD: {args.gnad} not found, off-topic rate skipped")
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    return 0
