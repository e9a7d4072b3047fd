"""Entry point for one run: checks inputs early, then builds and runs the right pipeline."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import datetime as dt
from typing import Any

from pipeline.batch import run_batch
from pipeline.config import ConfigError
from pipeline.settings import RunSettings
from transforms.read import match_pattern


def check_inputs(settings: RunSettings) -> None:
    """Fail fast, with the pattern named, when an input glob matches no file."""
    for pattern in settings.inputs:
        try:
            matched = match_pattern(pattern)
        except Exception as err:  # Beam raises BeamIOError for unreadable roots
            raise ConfigError(f"cannot list input {pattern!r}: {err}") from err
        if not matched:
            raise ConfigError(f"input {pattern!r} matches no file")
        if "://" not in pattern and all(os.path.isdir(m) for m in matched):
            raise ConfigError(f"input {pattern!r} is a directory; give a file pattern such as "
                              f"'{pattern.rstrip('/')}/*.txt'")


def feeds_run_id(now: dt.datetime, prefix: str = "feeds") -> str:
    """A fresh run id per fetch (``feeds-20261121T120000-123456``)."""
    return f"{prefix}-{now.astimezone(dt.timezone.utc).strftime('%Y%m%dT%H%M%S-%f')}"


def replaced_runs(settings: RunSettings) -> tuple[str, ...]:
    """The committed runs ``--replace-run`` names, with the chunks of a chunked one; exit 2 on an
    unknown run id."""
    if not settings.replaces_runs:
        return ()
    from transforms.commit import committed_runs, read_manifest

    committed = committed_runs(settings.output)
    runs: list[str] = []
    for run_id in settings.replaces_runs:
        manifest = read_manifest(settings.output, run_id) or {}
        chunks = list(manifest.get("chunks") or [])
        if run_id not in committed and not chunks:
            raise ConfigError(f"--replace-run {run_id}: no committed run with that id under {settings.output}")
        if manifest.get("rewrite"):  # its files hold the rows of many runs (transforms/rewrite.py)
            raise ConfigError(f"--replace-run {run_id}: that is a {manifest.get('kind')} of earlier runs' rows, "
                              f"not a run of inputs; replace the runs whose rows it holds")
        runs += [run_id, *chunks]
    return tuple(sorted(set(runs)))


def check_layout(output_root: str) -> None:
    """Under the writer lease: refuse (exit 2) to write into an archive of the old layout
    (``newsbeam migrate`` first); record the layout of a new root."""
    from transforms.layout import LayoutError
    from transforms.rewrite import ensure_current_layout

    try:
        ensure_current_layout(output_root)
    except LayoutError as err:
        raise ConfigError(str(err)) from err


def run_once(settings: RunSettings, extra_args: list[str] | None = None,
             now: dt.datetime | None = None, wait: bool = True) -> dict[str, Any]:
    """One batch run over the settings' files, feeds, or both in one pipeline.

    Takes the output root's writer lease first (waiting ``--wait-lock`` seconds for another
    writer), gives the run a fresh id and holds the lease until the run has committed. Files alone
    on a local runner run in chunks of ``read.max_files_per_run`` files, feeds alone in chunks of
    ``feeds.max_items_per_run`` items, each a committed sub-run (pipeline/chunking.py), so memory
    does not grow with the input."""
    from pipeline.batch import check_output, start_warm_workers
    from transforms.commit import run_id_taken
    from transforms.lease import WriterLease

    check_inputs(settings)
    check_output(settings.output)
    start_warm_workers(settings)  # warms up while the inputs are matched and the graph is built
    now = now or dt.datetime.now(dt.timezone.utc)
    config = None
    if settings.feeds_file:
        from pipeline.feeds_config import fetch_settings, load_feeds

        config = load_feeds(settings.feeds_file)  # fail fast on a bad feeds file
        fetch_settings(settings.feeds, config, settings.profile)
    given = settings.run_id
    run_id = given or (feeds_run_id(now) if settings.feeds_file and not settings.inputs
                       else settings.default_run_id(now))
    if settings.lease_owner:  # the caller (watch) holds the lease
        lease = contextlib.nullcontext()
    else:
        lease = WriterLease(settings.output, run_id, wait_seconds=settings.wait_lock_seconds)
    with lease:
        check_layout(settings.output)
        if given and run_id_taken(settings.output, run_id):
            raise ConfigError(f"run id {run_id!r} is already used under {settings.output}; every run needs a "
                              f"new id (leave --run-id out), and --replace-run {run_id} replaces that run's rows")
        settings = dataclasses.replace(settings, run_id=run_id, lease_owner=settings.lease_owner or run_id,
                                       replaces_runs=replaced_runs(settings))
        if not settings.feeds_file:
            from pipeline.chunking import run_files

            return run_files(settings, extra_args, now=now, wait=wait)
        if not settings.inputs:
            from pipeline.chunking import run_feeds

            return run_feeds(settings, config, extra_args, now=now, wait=wait)
        from pipeline.feeds_pipeline import build_pipeline

        return run_batch(settings, extra_args, now=now, wait=wait,
                         build=lambda p, s, run, base: build_pipeline(p, s, run, base, config))
