"""``newsbeam bench``: throughput and memory of the pipeline next to a plain loop (see pipeline/bench.py)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from pipeline.bench import add_arguments

    parser = subparsers.add_parser(
        "bench", help="benchmark: Beam (1 and 2 workers) vs a plain loop over a generated corpus",
        description="Generate a seeded corpus under bench/work/ (reused when it exists), run the Beam pipeline "
                    "with 1 and 2 workers and a plain single-process loop over the same core functions, each "
                    "in its own process, and write articles/s, peak RSS and per-step costs to "
                    "bench/results.json and docs/bench.md. --language measures the language detectors instead.")
    add_arguments(parser)
    parser.add_argument("--language", action="store_true",
                        help="measure detector accuracy/speed and language.max_chars instead "
                             "(bench/language.json, the README)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    if args.language:
        from pipeline.bench_language import run_language_bench

        run_language_bench(write=args.write)
        return 0
    from pipeline.bench import handle as run

    return run(args)
