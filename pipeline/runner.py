"""Choosing the Beam runner explicitly, and naming the one that really ran.

``DirectRunner`` here means Beam's in-process FnApiRunner, chosen directly:
Beam's own DirectRunner would first try the Prism runner, which downloads a
binary from the internet and hangs or fails offline. ``PrismRunner`` must be
asked for by name. ``BundleBasedDirectRunner`` is the local runner that
executes streaming pipelines (TestStream). Other names go to Beam as given.
"""

from __future__ import annotations

import os
from typing import Any

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipeline.config import PROJECT_ROOT

IN_PROCESS = "DirectRunner"


def describe(runner_name: str, workers: int, running_mode: str) -> str:
    """The runner that executes, as recorded in the run manifest."""
    if runner_name == IN_PROCESS:
        return f"FnApiRunner (DirectRunner, {running_mode}, {workers} worker{'s' if workers != 1 else ''})"
    return runner_name


def running_mode_for(workers: int, requested: str) -> str:
    # Several workers only run in parallel as processes (the GIL serializes threads).
    if workers > 1 and requested == "in_memory":
        return "multi_processing"
    return requested


def make_runner(runner_name: str) -> Any:
    """A runner instance for ``runner_name``; the in-process runner never downloads anything."""
    if runner_name == IN_PROCESS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    if runner_name == "BundleBasedDirectRunner":
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

        return BundleBasedDirectRunner()
    return runner_name


def pipeline_options(runner_name: str, workers: int, running_mode: str, extra_args: list[str] | None = None,
                     beam_options: dict[str, Any] | None = None, streaming: bool = False) -> PipelineOptions:
    """Beam options from profile ``beam_options`` and pass-through command-line flags.

    A flag given on the command line wins over the same key in the profile. A
    relative ``setup_file`` is resolved against the project root, so the
    package ships to Dataflow workers from any working directory.
    """
    flags = list(extra_args or [])
    given = PipelineOptions(flags=flags).get_all_options(drop_default=True)
    profile = {k: v for k, v in dict(beam_options or {}).items() if k not in given}
    setup_file = profile.get("setup_file")
    if setup_file and not os.path.isabs(setup_file):
        profile["setup_file"] = os.path.normpath(os.path.join(PROJECT_ROOT, setup_file))
    options = PipelineOptions(flags=flags, **profile)
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    direct.direct_running_mode = running_mode
    standard = options.view_as(StandardOptions)
    standard.streaming = streaming or standard.streaming
    if runner_name not in (IN_PROCESS, "BundleBasedDirectRunner"):
        standard.runner = runner_name
    return options
