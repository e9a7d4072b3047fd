"""``newsbeam watch``: poll feeds forever (or ``--max-polls`` times), one bounded batch run per poll.

Each poll is a complete run with its own run id (``poll-<UTC time>``): its
files, cross-run dedup index segment and feed state are committed together,
so a crash or restart loses nothing and repeats nothing. A poll with more items than
``feeds.max_items_per_run`` runs them as committed chunks (``poll-...-c0001``, ...; pipeline/chunking.py
``run_feeds``), the feeds' state committed with the last. One line per poll.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable

from pipeline.commands.run import add_run_options, apply_run_args, overrides_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "watch", help="poll feeds every --interval seconds, one batch run per poll",
        description="Fetch every feed of FILE, write new articles under OUTPUT, sleep, repeat. Each poll is one "
                    "batch run with its own run id; Ctrl-C stops cleanly between or during polls.")
    parser.add_argument("--feeds", required=True, metavar="FILE", help="feeds YAML (see configs/feeds.yaml)")
    parser.add_argument("--interval", type=float, default=300.0,
                        help="seconds from the start of one poll to the start of the next (default: %(default)s)")
    parser.add_argument("--max-polls", dest="max_polls", type=int, default=None,
                        help="stop after this many polls (default: never)")
    parser.add_argument("--no-compact", dest="compact", action="store_false",
                        help="do not compact the months a poll wrote (profile: write.compact_min_files small files "
                             "trigger it; schedule `newsbeam compact` instead)")
    add_run_options(parser)
    parser.set_defaults(handler=handle)


def poll_line(number: int, manifest: dict, seconds: float) -> str:
    """The log line of one poll."""
    feeds = manifest.get("feeds", {})
    outcomes = feeds.get("outcomes", {})
    counters = manifest.get("counters", {})
    return (f"poll {number} run {manifest['run_id']}: feeds {outcomes.get('ok', 0)} ok, "
            f"{outcomes.get('not_modified', 0)} not modified, {outcomes.get('unchanged', 0)} unchanged, "
            f"{outcomes.get('failed', 0)} failed, {outcomes.get('skipped_backoff', 0)} backing off, "
            f"{outcomes.get('dead_letter', 0)} dead letter; new articles {counters.get('articles', 0)}, "
            f"duplicates {counters.get('duplicates', 0)}, dead letters {counters.get('dead_letters', 0)} "
            f"({seconds:.1f}s)")


def watch(settings, interval: float, max_polls: int | None, extra: list[str] | None = None,
          out=None, sleep: Callable[[float], None] = time.sleep, compact: bool = True) -> list[dict]:
    """Poll until ``max_polls`` (or Ctrl-C); returns the manifests of the finished polls. After each
    poll the months it wrote are compacted once they hold ``write.compact_min_files`` small files
    (``compact=False``: never)."""
    import dataclasses

    from pipeline.autocompact import compact_after, describe

    out = out or sys.stdout
    from pipeline.launch import feeds_run_id, run_once

    manifests: list[dict] = []
    number = 0
    try:
        while max_polls is None or number < max_polls:
            number += 1
            started = time.monotonic()
            now = dt.datetime.now(dt.timezone.utc)
            poll = dataclasses.replace(settings, run_id=feeds_run_id(now, "poll"))
            manifest = run_once(poll, extra, now=now)
            manifests.append(manifest)
            compacted = describe(compact_after(settings, manifest)) if compact else ""
            elapsed = time.monotonic() - started
            line = poll_line(number, manifest, elapsed)
            print(f"{line}; {compacted}" if compacted else line, file=out, flush=True)
            if max_polls is not None and number >= max_polls:
                break
            sleep(max(0.0, interval - elapsed))
    except KeyboardInterrupt:
        print(f"watch: stopped by Ctrl-C after {len(manifests)} finished poll(s); an interrupted poll is "
              "rolled back and fetched again next time", file=out, flush=True)
    return manifests


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from pipeline.config import ConfigError
    from pipeline.settings import build_settings

    if args.interval < 0:
        raise ConfigError("--interval must be >= 0")
    if args.max_polls is not None and args.max_polls < 1:
        raise ConfigError("--max-polls must be >= 1")
    if args.run_id:
        raise ConfigError("watch gives every poll its own run id; --run-id is not accepted")
    settings = apply_run_args(build_settings(args.profile, overrides_from(args)), args)
    manifests = watch(settings, args.interval, args.max_polls, extra, compact=args.compact)
    return 0 if all(m["counters"]["balanced"] for m in manifests) else 1
