"""``newsbeam stream``: poll feeds continuously and write Parquet per event-time window and pane."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands.run import add_run_options, apply_run_args, overrides_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stream", help="poll feeds continuously (streaming) and write Parquet per window and pane",
        description="Poll the feeds on a periodic impulse, deduplicate with keyed state, window by publication "
                    "time (profile: stream) and write Parquet per window and pane. Streams for real on "
                    "DataflowRunner (--profile dataflow-streaming) or PrismRunner (--prism_location ...); the "
                    "in-process DirectRunner needs --duration and writes when the polls are done. Beam "
                    "pipeline options go after a literal --.")
    parser.add_argument("--feeds", metavar="FILE", help="feeds YAML to poll (see configs/feeds.yaml)")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="stop polling after this many seconds (required on the in-process DirectRunner)")
    parser.add_argument("--poll-interval", dest="poll_interval", type=int, metavar="SECONDS",
                        help="seconds between polls (profile: stream.poll_interval_seconds)")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="submit the job and return (Dataflow) instead of waiting for it to end")
    add_run_options(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from pipeline.settings import build_settings
    from pipeline.streaming import run_stream

    overrides = overrides_from(args)
    if args.poll_interval is not None:
        overrides["stream"] = {"poll_interval_seconds": args.poll_interval}
    settings = apply_run_args(build_settings(args.profile, overrides), args)
    info = run_stream(settings, extra, duration_seconds=args.duration, wait=args.wait)
    json.dump(info, sys.stdout, indent=2, default=str)
    print()
    return 0
