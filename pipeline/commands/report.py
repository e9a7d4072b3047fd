"""``newsbeam report``: a static HTML report with PNG charts of an output root (needs the `report` extra)."""

from __future__ import annotations

import argparse
import sys

from analyst.query import add_output_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML report with charts (topic trends, sources, languages, dedup, dead letters)",
        description="Query OUTPUT through the DuckDB views and write REPORT_DIR/index.html with PNG charts: "
                    "articles per period per topic and per language, top sources, language mix, dedup rate per "
                    "run and dead letters. Needs matplotlib (the `report` extra).")
    add_output_option(parser)
    parser.add_argument("--report-dir", dest="report_dir",
                        help="where to write index.html and the PNGs (default: OUTPUT/report)")
    parser.add_argument("--top", type=int, default=15, help="bars in the top-sources chart (default: %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from analyst.views import AnalystError
    from analyst.report import ReportError, write_report

    try:
        written = write_report(args.output, args.report_dir, top=args.top)
    except (AnalystError, ReportError) as err:
        print(f"newsbeam report: {err}", file=sys.stderr)
        return 2
    print(f"wrote {written['index']} ({len(written['charts'])} charts)")
    return 0
