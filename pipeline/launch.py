"""Entry point for one run: checks inputs early, then builds and runs the right pipeline."""

from __future__ import annotations

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
    """A fresh run id per fetch (``feeds-20261121T120000-123456``): feeds change between runs, so a
    second fetch must never replace the files of the first."""
    return f"{prefix}-{now.astimezone(dt.timezone.utc).strftime('%Y%m%dT%H%M%S-%f')}"


def run_once(settings: RunSettings, extra_args: list[str] | None = None,
             now: dt.datetime | None = None, wait: bool = True) -> dict[str, Any]:
    """One batch run over the settings' files, feeds, or both in one pipeline.

    Files alone on a local runner run in chunks of ``read.max_files_per_run`` files, each a
    committed sub-run (pipeline/chunking.py), so memory does not grow with the input."""
    check_inputs(settings)
    if not settings.feeds_file:
        from pipeline.chunking import run_files

        return run_files(settings, extra_args, now=now, wait=wait)
    from pipeline.feeds_config import fetch_settings, load_feeds
    from pipeline.feeds_pipeline import build_pipeline

    config = load_feeds(settings.feeds_file)  # fail fast on a bad feeds file
    fetch_settings(settings.feeds, config, settings.profile)
    if settings.run_id is None:
        settings = dataclasses.replace(settings, run_id=feeds_run_id(now or dt.datetime.now(dt.timezone.utc)))
    return run_batch(settings, extra_args, now=now, wait=wait,
                     build=lambda p, s, run, base: build_pipeline(p, s, run, base, config))
