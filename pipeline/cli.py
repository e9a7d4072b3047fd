"""Command line: ``python -m pipeline <command>`` or ``newsbeam <command>``.

Each command lives in its own module that exposes ``register(subparsers)``;
the module's handler receives the parsed arguments and the Beam pipeline
options. Options are parsed strictly: an unknown option or a stray argument (a
mistyped ``--ouput``, a glob the shell expanded) exits 2 with the usage message
before anything is read or written. Beam's own options (``--project``,
``--region``, ``--temp_location`` ...) go after a literal ``--``, and only for
the commands that run a pipeline: ``newsbeam run --input 'x/*.txt' -- --project p``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from pipeline import __version__
from pipeline.config import ConfigError

# Command modules, in the order --help lists them.
COMMAND_MODULES = (
    "pipeline.commands.run",
    "analyst.query",
    "analyst.shell",
    "pipeline.commands.report",
    "pipeline.commands.stream",
    "pipeline.commands.watch",
    "pipeline.commands.layout",
    "pipeline.commands.eval",
    "pipeline.commands.bench",
)


class _BeamImportNoise(logging.Filter):
    """Drops the warning Beam logs when its BigQuery client is imported without apitools.

    Beam logs it on the root logger whenever ``apache_beam.io.gcp.bigquery`` is imported; it means
    "the gcp extra is not installed", which a local run never needs. Everything else passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and str(record.msg).startswith("apitools not found"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbeam",
        description="Ingest news articles and feeds into Hive-partitioned Parquet for DuckDB (Apache Beam).",
    )
    parser.add_argument("--version", action="version", version=f"newsbeam {__version__}")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default: WARNING)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Strict parsing: everything before ``--`` must be a newsbeam option (else exit 2); everything
    after it goes to Beam, for the commands that run a pipeline."""
    if "--" in argv:
        split = argv.index("--")
        own, beam_flags = argv[:split], argv[split + 1:]
    else:
        own, beam_flags = argv, []
    args, unknown = parser.parse_known_args(own)
    if unknown:
        stray = [a for a in unknown if not a.startswith("-")]
        hint = ""
        if stray and any(any(c in a for c in "/.") for a in stray):
            hint = " (a glob the shell expanded? quote it: --input 'folder/*.txt')"
        elif any(a.startswith("--") for a in unknown) and getattr(args, "accepts_beam_flags", False):
            hint = " (Beam pipeline options go after a literal --: newsbeam run ... -- --project p)"
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if beam_flags and not getattr(args, "accepts_beam_flags", False):
        parser.error(f"{args.command} takes no Beam options: {' '.join(beam_flags)}")
    return args, beam_flags


class _StepFailureEcho(logging.Filter):
    """Drops the traceback Beam logs when a step fails: the failure is reported once, as one line,
    by :func:`main` (exit 1); with ``--log-level DEBUG`` it is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or logging.getLogger().getEffectiveLevel() <= logging.DEBUG


class _Interrupt:
    """SIGINT while a command runs: remembered, then raised as KeyboardInterrupt in the main thread."""

    def __init__(self):
        self.fired = False

    def __call__(self, signum, frame):
        self.fired = True
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 failed, 2 usage or configuration error, 130 interrupted (SIGINT).

    An interrupt at any moment (while the command modules and Beam load, while the graph runs,
    in a worker thread) ends with one line on stderr and 130, never a traceback; the run's commit
    protocol leaves nothing half-written visible.
    """
    step_failures = logging.getLogger("apache_beam.runners.common")
    if not any(isinstance(f, _StepFailureEcho) for f in step_failures.filters):
        step_failures.addFilter(_StepFailureEcho())
    interrupted = _Interrupt()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, interrupted)
    try:
        return _main(argv, interrupted)
    except KeyboardInterrupt:
        print("newsbeam: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None, interrupted: "_Interrupt") -> int:
    # Logging is set up before the command modules are imported: importing Beam can log a warning on
    # the root logger, which would otherwise install Python's default handler and make the
    # basicConfig below a no-op (the --log-level and the format were then ignored).
    root = logging.getLogger()
    if not any(isinstance(f, _BeamImportNoise) for f in root.filters):
        root.addFilter(_BeamImportNoise())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args, extra = parse(parser, sys.argv[1:] if argv is None else list(argv))
    root.setLevel(args.log_level)
    try:
        return int(args.handler(args, extra) or 0)
    except ConfigError as err:
        print(f"newsbeam: configuration error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a failed run: one readable line; the traceback with --log-level DEBUG
        if interrupted.fired:  # Ctrl-C surfaced as another exception (e.g. from Beam's worker threads)
            raise KeyboardInterrupt from err
        if args.log_level == "DEBUG":
            raise
        lines = str(err).strip().splitlines() or [type(err).__name__]
        print(f"newsbeam: {args.command} failed: {lines[-1]} (rerun with --log-level DEBUG for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
