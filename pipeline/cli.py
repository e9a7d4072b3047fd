"""Command line: ``python -m pipeline <command>`` or ``newsbeam <command>``.

Each command lives in its own module that exposes ``register(subparsers)``;
the module's handler receives the parsed arguments and the flags argparse did
not know, which are passed through to Beam (``--project``, ``--region`` ...).
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
    args, extra = parser.parse_known_args(argv)
    root.setLevel(args.log_level)
    if extra and not getattr(args, "accepts_beam_flags", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
