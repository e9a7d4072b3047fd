"""``newsbeam run``: one batch run over files (and, with --feeds, feeds), then a DuckDB summary."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.config import DEFAULT_PROFILE, RUNNERS


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the pipeline (run, watch, stream, bench)."""
    parser.add_argument("--profile", default=DEFAULT_PROFILE,
                        help="run profile: a name under configs/ or a YAML path (default: %(default)s)")
    parser.add_argument("--output", help="output root, local path or gs:// URL (profile: output)")
    parser.add_argument("--runner", choices=RUNNERS,
                        help="Beam runner; DirectRunner = in-process FnApiRunner, never downloads Prism "
                             "(profile: runner)")
    parser.add_argument("--workers", type=int, help="local worker processes for the DirectRunner (profile: workers)")
    parser.add_argument("--run-id", dest="run_id",
                        help="run id stamped on every row and file; must be new under OUTPUT "
                             "(default: a fresh id per invocation, e.g. files-20261201T120000-1a2b3c)")
    parser.add_argument("--wait-lock", dest="wait_lock", type=float, default=0.0, metavar="SECONDS",
                        help="when another run is writing to OUTPUT, wait up to SECONDS for it to finish "
                             "instead of exiting 1 (default: %(default)s)")
    parser.add_argument("--topics", help="topic taxonomy YAML (profile: topics)")
    parser.add_argument("--language-detector", dest="language_detector", choices=["langdetect", "fasttext"],
                        help="language detection backend (profile: language.detector)")
    parser.add_argument("--dedup-window-days", dest="dedup_window_days", type=int, metavar="DAYS",
                        help="cross-run dedup remembers articles this many days (profile: dedup.window_days)")
    parser.add_argument("--max-items-per-run", dest="max_items_per_run", type=int, metavar="N",
                        help="feeds on the local runner: run the fetched items as committed chunks of N, one "
                             "after another, to bound memory; 0 = one pipeline fetches and runs everything "
                             "(profile: feeds.max_items_per_run)")
    parser.add_argument("--no-full-text", dest="full_text", action="store_false",
                        help="feeds: keep the feed's text, do not fetch article pages (profile: feeds.full_text)")
    parser.set_defaults(accepts_beam_flags=True)


def overrides_from(args: argparse.Namespace) -> dict:
    overrides = {
        "output": args.output,
        "runner": args.runner,
        "workers": args.workers,
        "run_id": args.run_id,
        "topics": args.topics,
        "source_name": getattr(args, "source_name", None),
    }
    if getattr(args, "language_detector", None):
        overrides["language"] = {"detector": args.language_detector}
    if getattr(args, "dedup_window_days", None):
        overrides["dedup"] = {"window_days": args.dedup_window_days}
    if getattr(args, "full_text", True) is False:
        overrides["feeds"] = {"full_text": False}
    if getattr(args, "max_items_per_run", None) is not None:
        overrides.setdefault("feeds", {})["max_items_per_run"] = args.max_items_per_run
    if getattr(args, "max_files_per_run", None) is not None:
        overrides["read"] = {"max_files_per_run": args.max_files_per_run}
    if getattr(args, "inputs", None):
        overrides["inputs"] = args.inputs
    if getattr(args, "feeds", None):
        overrides["feeds_file"] = args.feeds
    return overrides


def apply_run_args(settings, args: argparse.Namespace):
    """Settings that are per invocation, not profile keys: --wait-lock and --replace-run."""
    import dataclasses

    from pipeline.config import ConfigError

    wait = getattr(args, "wait_lock", 0.0) or 0.0
    if wait < 0:
        raise ConfigError("--wait-lock must be >= 0")
    return dataclasses.replace(settings, wait_lock_seconds=float(wait),
                               replaces_runs=tuple(getattr(args, "replace_run", None) or ()))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the pipeline once (batch) and print a summary",
        description="Run the pipeline once over article files and/or feeds, write Parquet under OUTPUT and "
                    "print a DuckDB summary. Beam pipeline options go after a literal -- "
                    "(e.g. newsbeam run --profile dataflow-batch -- --project p --region r).")
    parser.add_argument("--input", dest="inputs", action="append", metavar="PATTERN",
                        help="article text files: glob, local or gs:// (repeatable; profile: input)")
    parser.add_argument("--feeds", metavar="FILE", help="feeds YAML to fetch once (see configs/feeds.yaml)")
    parser.add_argument("--replace-run", dest="replace_run", action="append", metavar="RUN_ID",
                        help="replace the rows of this committed run by this run's (repeatable); the old "
                             "rows are removed in the same commit that adds the new ones")
    parser.add_argument("--source", dest="source_name", metavar="NAME",
                        help="`source` of the articles read from --input files (profile: source_name; "
                             "a profile's `sources:` map names them by path glob); feed articles carry the feed's name")
    parser.add_argument("--max-files-per-run", dest="max_files_per_run", type=int, metavar="N",
                        help="on the local runner, run more than N input files as committed chunks of N, one "
                             "after another, to bound memory; 0 = never split (profile: read.max_files_per_run)")
    add_run_options(parser)
    parser.add_argument("--compact", action="store_true",
                        help="after the run, compact the months it wrote once one holds write.compact_min_files "
                             "small files (its own commit; for scheduled runs, see `newsbeam compact`)")
    parser.add_argument("--no-summary", dest="summary", action="store_false", help="do not print the summary")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (it is shown only when stderr is a terminal anyway)")
    parser.add_argument("--json", action="store_true", help="print the run manifest as JSON instead")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="submit the job and return (remote runners, e.g. a Flex Template launcher); "
                             "the job writes its manifest when it commits")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from pipeline.settings import build_settings
    from pipeline.worker import prestart

    settings = apply_run_args(build_settings(args.profile, overrides_from(args)), args)
    # `--workers N`: the worker server imports Beam's harness on the other core while this process imports Beam.
    prestart(settings.runner, settings.workers)
    from pipeline.launch import run_once
    from pipeline.progress import for_run
    from pipeline.summary import summarize

    if args.compact and not args.wait:
        from pipeline.config import ConfigError

        raise ConfigError("--compact compacts after the run has committed; with --no-wait schedule "
                          "`newsbeam compact` after the job instead")
    with for_run(settings, args.quiet, args.wait) as progress:
        manifest = run_once(settings, extra, wait=args.wait)
    if manifest["status"] == "submitted":
        print(f"submitted run {manifest['run_id']} on {manifest['runner']}; its manifest will be "
              f"{settings.output}/_runs/{manifest['run_id']}.json")
        return 0
    compacted = None
    if args.compact:
        from pipeline.autocompact import compact_after, describe

        compacted = compact_after(settings, manifest)
    if args.json:
        json.dump({**manifest, "compaction": compacted} if args.compact else manifest, sys.stdout, indent=2,
                  default=str)
        print()
    elif args.summary:
        print(summarize(settings.output, manifest, elapsed=progress.elapsed))
        if args.compact and describe(compacted):
            print(describe(compacted))
    return 0 if manifest["counters"]["balanced"] else 1
