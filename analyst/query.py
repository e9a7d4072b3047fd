"""``newsbeam query``: run SQL over an output root with the analyst views, print or save the result."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

FORMATS = ("table", "csv", "json", "parquet")

# DuckDB COPY options per file format. json = one JSON array of row objects.
COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
    "parquet": "FORMAT parquet, COMPRESSION zstd",
}
RESULT_VIEW = "newsbeam_query_result"


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="./output",
                        help="output root the views read, local path (gs:// needs DuckDB's httpfs) "
                             "(default: %(default)s)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "query", help="run SQL over the output with the DuckDB views and print or save the result",
        description="Open DuckDB with the views of analyst/sql/views.sql (articles, article_topics, daily_topics, "
                    "clusters, cluster_members, duplicates, dead_letters, feed_status, feed_health, runs) over "
                    "OUTPUT and run SQL. Several ;-separated statements run in order; the last one's result is "
                    "printed as a table or written with --format/--out.")
    parser.add_argument("sql", help="SQL to run; '-' reads it from standard input")
    add_output_option(parser)
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="table (default without --out), csv, json (an array of objects) or parquet "
                             "(default with --out: from its extension)")
    parser.add_argument("--out", metavar="FILE", help="write the result to FILE instead of printing it")
    parser.add_argument("--max-rows", type=int, default=100,
                        help="rows a printed table shows (head and tail; default: %(default)s)")
    parser.set_defaults(handler=handle)


def output_format(fmt: str | None, out: str | None) -> str:
    if fmt:
        return fmt
    if out:
        ext = os.path.splitext(out)[1].lstrip(".").lower()
        if ext in COPY_OPTIONS:
            return ext
        raise ValueError(f"cannot tell the format of {out!r} from its extension: give --format csv|json|parquet")
    return "table"


def run_statements(con, sql: str):
    """Run every statement of ``sql``; return the last one's relation (None when it returns nothing)."""
    statements = con.extract_statements(sql)
    if not statements:
        raise ValueError("no SQL statement given")
    for statement in statements[:-1]:
        con.execute(statement.query)
    return con.sql(statements[-1].query)


def write_result(con, rel, fmt: str, out: str) -> None:
    from analyst.views import literal

    rel.create_view(RESULT_VIEW, replace=True)
    con.execute(f"COPY (SELECT * FROM {RESULT_VIEW}) TO {literal(out)} ({COPY_OPTIONS[fmt]})")


def print_result(con, rel, fmt: str) -> None:
    """Write a csv or json result to standard output (through a temporary file DuckDB writes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="newsbeam-query-") as tmp:
        path = os.path.join(tmp, f"result.{fmt}")
        write_result(con, rel, fmt, path)
        with open(path, encoding="utf-8") as handle:
            shutil.copyfileobj(handle, sys.stdout)


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    import duckdb

    from analyst.views import AnalystError, connect, is_remote

    sql = sys.stdin.read() if args.sql == "-" else args.sql
    try:
        fmt = output_format(args.format, args.out)
        if fmt == "parquet" and not args.out:
            raise ValueError("--format parquet needs --out FILE")
    except ValueError as err:
        print(f"newsbeam query: {err}", file=sys.stderr)
        return 2
    if not is_remote(args.output) and not os.path.isdir(args.output):
        print(f"newsbeam query: note: {args.output} does not exist; every view is empty", file=sys.stderr)
    try:
        con = connect(args.output)
    except AnalystError as err:
        print(f"newsbeam query: {err}", file=sys.stderr)
        return 2
    try:
        rel = run_statements(con, sql)
        if rel is None:
            print("OK")
        elif args.out:
            write_result(con, rel, fmt, args.out)
            print(f"wrote {args.out} ({fmt})", file=sys.stderr)
        elif fmt == "table":
            width = shutil.get_terminal_size((160, 40)).columns
            rel.show(max_rows=args.max_rows, max_width=width)
        else:
            print_result(con, rel, fmt)
    except (duckdb.Error, ValueError) as err:
        print(f"newsbeam query: {err}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0
