"""``newsbeam shell``: an interactive DuckDB session over an output root with the analyst views loaded.

Uses the ``duckdb`` command-line client when it is on PATH (the views go in
through ``-init``); otherwise, or with ``--python``, a small prompt in Python
that runs ``;``-terminated SQL and prints each result as a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

from analyst.query import add_output_option

HELP = """Enter SQL ending with ';' (it may span lines). Commands:
  .tables          list the views
  .schema VIEW     columns and types of a view
  .help            this text
  .quit / .exit    leave (so does Ctrl-D)"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "shell", help="interactive DuckDB session with the views loaded",
        description="Open an interactive DuckDB session over OUTPUT with the views of analyst/sql/views.sql. "
                    "Runs the duckdb CLI when it is installed, else a built-in prompt.")
    add_output_option(parser)
    parser.add_argument("--python", dest="use_cli", action="store_false",
                        help="use the built-in prompt even when the duckdb CLI is installed")
    parser.add_argument("--print-init", action="store_true",
                        help="print the SQL that creates the views (a duckdb -init script) and exit")
    parser.add_argument("--max-rows", type=int, default=40, help="rows a result shows (default: %(default)s)")
    parser.set_defaults(handler=handle)


def statements(lines: Iterator[str]) -> Iterator[str]:
    """Group input lines into SQL texts ending with ';' and dot commands; leftovers at the end too."""
    buffer: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            yield stripped
            continue
        if not buffer and not stripped:
            continue
        buffer.append(line.rstrip("\n"))
        if stripped.endswith(";"):
            yield "\n".join(buffer)
            buffer = []
    if any(b.strip() for b in buffer):
        yield "\n".join(buffer)


def prompt_lines(interactive: bool, stream: IO[str]) -> Iterator[str]:
    if not interactive:
        yield from stream
        return
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    continuation = False
    while True:
        try:
            line = input("   ...> " if continuation else "newsbeam> ")
        except EOFError:
            print()
            return
        continuation = bool(line.strip()) and not line.strip().endswith(";") and not line.strip().startswith(".")
        yield line


def run_command(con, command: str, views: tuple[str, ...], max_rows: int, out: IO[str]) -> bool:
    """Run one dot command or SQL text; False means quit."""
    import duckdb

    width = shutil.get_terminal_size((160, 40)).columns
    try:
        if command.startswith("."):
            name, _, arg = command.partition(" ")
            if name in (".quit", ".exit", ".q"):
                return False
            if name == ".help":
                print(HELP, file=out)
            elif name == ".tables":
                print("  ".join(views), file=out)
            elif name == ".schema" and arg.strip():
                con.sql(f"DESCRIBE {arg.strip().rstrip(';')}").show(max_rows=max_rows, max_width=width)
            else:
                print(f"unknown command {command!r}; .help lists the commands", file=out)
            return True
        for statement in con.extract_statements(command):
            rel = con.sql(statement.query)
            if rel is not None:
                rel.show(max_rows=max_rows, max_width=width)
    except duckdb.Error as err:
        print(f"Error: {err}", file=out)
    return True


def python_shell(output: str, max_rows: int, stream: IO[str] = sys.stdin, out: IO[str] = sys.stdout) -> int:
    from analyst.views import VIEWS, connect

    con = connect(output)
    interactive = stream.isatty()
    if interactive:
        print(f"newsbeam shell over {output} (DuckDB). Views: {', '.join(VIEWS)}", file=out)
        print(HELP, file=out)
    try:
        for command in statements(prompt_lines(interactive, stream)):
            if not run_command(con, command, VIEWS, max_rows, out):
                break
    finally:
        con.close()
    return 0


def handle(args: argparse.Namespace, extra: list[str]) -> int:
    from analyst.views import AnalystError, session_sql

    try:
        if args.print_init:
            print(session_sql(args.output))
            return 0
        cli = shutil.which("duckdb") if args.use_cli else None
        if cli is None:
            return python_shell(args.output, args.max_rows)
        with tempfile.TemporaryDirectory(prefix="newsbeam-shell-") as tmp:
            init = os.path.join(tmp, "init.sql")
            with open(init, "w", encoding="utf-8") as handle_:
                handle_.write(session_sql(args.output))
            return subprocess.call([cli, "-init", init])
    except AnalystError as err:
        print(f"newsbeam shell: {err}", file=sys.stderr)
        return 2
