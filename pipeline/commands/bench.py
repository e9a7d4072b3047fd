"""``newsbeam bench``: throughput and memory of the pipeline next to a plain loop (see bench/bench.py)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from bench.bench import add_arguments

    parser = subparsers.add_parser(
        "bench", help="benchmark: Beam (1 and 2 workers) vs a plain loop over a generated corpus",
        description="Generate a seeded corpus under bench/work/ (reused when it exists), run the Beam pipeline "
                    "with 1 and 2 workers and a plain single-process loop over the same core functions, each "
                    "in its own process, and write articles/s, peak RSS and per-step costs to "
                    "bench/results.json and bench/results.md; with the extra `peers` installed also datatrove's equivalent "
                    "pipeline (variant datatrove, profile fast). --language measures the language detectors instead.")
    add_arguments(parser)
    parser.add_argument("--language", action="store_true",
                        help="measure language tagging accuracy/speed per profile instead "
                             "(bench/language.json, docs/language.md)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    if args.language:
        from bench.bench_language import run_language_bench

        return run_language_bench(write=args.write)
    from bench.bench import handle as run

    return run(args)
