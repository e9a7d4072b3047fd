"""Entry point for one run: checks inputs early, then builds and runs the right pipeline."""

from __future__ import annotations

from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.batch import run_batch
from pipeline.config import ConfigError
from pipeline.settings import RunSettings


def check_inputs(settings: RunSettings) -> None:
    """Fail fast, with the pattern named, when an input glob matches no file."""
    for pattern in settings.inputs:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as err:  # Beam raises BeamIOError for unreadable roots
            raise ConfigError(f"cannot list input {pattern!r}: {err}") from err
        if not matched:
            raise ConfigError(f"input {pattern!r} matches no file")


def run_once(settings: RunSettings, extra_args: list[str] | None = None) -> dict[str, Any]:
    check_inputs(settings)
    return run_batch(settings, extra_args)
