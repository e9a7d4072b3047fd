"""``newsbeam migrate`` and ``newsbeam compact``: rewrites of the articles table, each one commit.

``migrate`` turns an archive written by schema 1.x (``articles/published_date=.../language=...``)
into the month layout (``articles/published_month=YYYY-MM``); runs refuse (exit 2) to write into
an archive that still needs it. ``compact`` merges the small files scheduled runs add to a month
partition. Both take the writer lease, stage, commit and publish (transforms/rewrite.py);
docs/querying.md says why and what a reader sees meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="output root (local path or gs://)")
    parser.add_argument("--wait-lock", dest="wait_lock", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for another writer to finish (default: fail at once)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def register(subparsers) -> None:
    migrate = subparsers.add_parser(
        "migrate", help="rewrite an archive of the day+language layout into the month layout (one commit)",
        description="Rewrite OUTPUT/articles from layout 1 (published_date=.../language=... folders) into layout 2 "
                    "(published_month=YYYY-MM folders, files sorted by language and date) in one crash-safe "
                    "commit under the writer lease. Safe to kill and to repeat; a no-op on a migrated root.")
    _common(migrate)
    migrate.add_argument("--rows-per-file", dest="rows_per_file", type=int, default=100_000,
                         help="rows per written file (default: %(default)s)")
    migrate.set_defaults(handler=handle_migrate)
    compact = subparsers.add_parser(
        "compact", help="merge the small files of month partitions (one commit)",
        description="Merge the small article files (fewer than --target-rows rows and under 64 MB) of every month "
                    "partition holding at least --min-files of them into files of up to --target-rows rows, in one "
                    "crash-safe commit under the writer lease. Schedule it after runs (e.g. daily).")
    _common(compact)
    compact.add_argument("--min-files", dest="min_files", type=int, default=8,
                         help="compact a partition only when it has at least this many small files (default: %(default)s)")
    compact.add_argument("--target-rows", dest="target_rows", type=int, default=100_000,
                         help="rows per compacted file (default: %(default)s)")
    compact.set_defaults(handler=handle_compact)


def _report(args, result: dict) -> None:
    if args.json:
        json.dump({k: v for k, v in result.items() if k != "manifest"}, sys.stdout, indent=2, default=str)
        print()
        return
    shown = {k: v for k, v in result.items() if k not in ("manifest", "recovered")}
    print(", ".join(f"{k}: {v}" for k, v in shown.items()))


def _run(args, action) -> int:
    from transforms.layout import LayoutError
    from transforms.lease import LeaseBusy

    if args.wait_lock < 0:
        print("--wait-lock must be >= 0", file=sys.stderr)
        return 2
    try:
        result = action()
    except (LayoutError, LeaseBusy) as err:
        print(f"newsbeam {args.command}: {err}", file=sys.stderr)
        return 2
    _report(args, result)
    return 0


def handle_migrate(args: argparse.Namespace, extra: list[str]) -> int:
    from transforms.rewrite import migrate

    if args.rows_per_file < 1:
        print("--rows-per-file must be >= 1", file=sys.stderr)
        return 2
    return _run(args, lambda: migrate(args.output, rows_per_file=args.rows_per_file, wait_seconds=args.wait_lock))


def handle_compact(args: argparse.Namespace, extra: list[str]) -> int:
    from transforms.rewrite import compact

    if args.min_files < 2 or args.target_rows < 1:
        print("--min-files must be >= 2 and --target-rows >= 1", file=sys.stderr)
        return 2
    return _run(args, lambda: compact(args.output, min_files=args.min_files, target_rows=args.target_rows,
                                      wait_seconds=args.wait_lock))
