"""Build the Dataflow batch and streaming jobs offline: ``make dataflow-dryrun``.

For each profile (``dataflow-batch``, ``dataflow-streaming``) this builds the
real pipeline graph with ``--runner=DataflowRunner --dry_run=True`` and a fake
project: Beam translates the graph into a Dataflow job and pickles every DoFn,
then returns without contacting Google Cloud. On top of that it

* unpickles every DoFn again from the job's pipeline proto (what a worker does);
* builds the sdist that ``--setup_file`` makes Beam stage, and checks that it
  carries every module of the package and the C source of the extension (what a worker pip-installs
  and builds), and no module compiled here.

Input and output roots are local temp paths here: the batch graph lists the
dedup index and feed state of its output root while it is built, and listing
``gs://`` needs credentials. Temp and staging locations stay ``gs://`` (they
are only validated). Needs ``apache-beam[gcp]`` (``make dataflow-dryrun``
installs it into ``.venv-gcp``). Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tarfile
import tempfile
import time
from typing import Any

import apache_beam as beam

from pipeline.config import PROJECT_ROOT
from pipeline.settings import RunSettings, build_settings

FAKE = {
    "project": "newsbeam-dryrun",
    "region": "europe-west1",
    "temp_location": "gs://newsbeam-dryrun/tmp",
    "staging_location": "gs://newsbeam-dryrun/staging",
}
PACKAGES = ("pipeline", "transforms", "schemas", "analyst", "bench")


def dry_run_flags(job_name: str) -> list[str]:
    return [f"--{k}={v}" for k, v in FAKE.items()] + ["--dry_run=True", f"--job_name={job_name}"]


def _settings(profile: str, work: str) -> RunSettings:
    overrides: dict[str, Any] = {"output": os.path.join(work, "output")}
    if profile == "dataflow-batch":
        overrides["inputs"] = [os.path.join(PROJECT_ROOT, "data", "seeds", "*.txt")]
    return build_settings(profile, overrides)


def build_batch(p: beam.Pipeline, settings: RunSettings) -> None:
    from pipeline.batch import build_file_pipeline, manifest_base

    run = settings.run_info(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    base = manifest_base(settings, run, 1, "in_memory")
    if settings.feeds_file:
        from pipeline.feeds_pipeline import build_pipeline

        build_pipeline(p, settings, run, base)
    else:
        build_file_pipeline(p, settings, run, base)


def build_streaming(p: beam.Pipeline, settings: RunSettings) -> None:
    from pipeline.streaming import PollFeeds, build_stream_pipeline, stream_params, stream_run_id

    run_id = stream_run_id(settings)
    source = PollFeeds(settings, run_id, stream_params(settings)["poll_interval_seconds"], time.time(), None)
    build_stream_pipeline(p, settings, run_id, source)


def unpickle_all_dofns(pipeline_proto) -> int:
    """Load every pickled DoFn of the job the way a worker does; returns how many there were."""
    from apache_beam.internal import pickler
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    count = 0
    for transform in pipeline_proto.components.transforms.values():
        if transform.spec.urn != common_urns.primitives.PAR_DO.urn:
            continue
        payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
        if payload.do_fn.urn == "beam:dofn:pickled_python_info:v1":
            pickler.loads(payload.do_fn.payload)
            count += 1
    return count


def check_job(profile: str, build, streaming: bool, work: str) -> dict[str, Any]:
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.runner import pipeline_options

    settings = _settings(profile, work)
    if settings.runner != "DataflowRunner":
        raise SystemExit(f"profile {profile} does not select DataflowRunner")
    started = time.perf_counter()
    options = pipeline_options(settings.runner, 1, "in_memory", dry_run_flags(f"newsbeam-{profile}-dryrun"),
                               settings.beam_options, streaming=streaming)
    assert options.view_as(StandardOptions).streaming == streaming, "streaming flag not as the profile says"
    p = beam.Pipeline(runner="DataflowRunner", options=options)
    build(p, settings)
    result = p.run()  # translate + pickle; dry_run returns before any cloud call
    proto = p.to_runner_api()
    dofns = unpickle_all_dofns(proto)
    job = result.job
    return {
        "profile": profile,
        "streaming": streaming,
        "job_type": {1: "JOB_TYPE_BATCH", 2: "JOB_TYPE_STREAMING"}.get(int(job.proto.type), str(job.proto.type)),
        "transforms": len(proto.components.transforms),
        "dofns_unpickled": dofns,
        "setup_file": options.get_all_options()["setup_file"],
        "seconds": round(time.perf_counter() - started, 2),
    }


class _ClientInInit(beam.DoFn):
    """The classic mistake: an HTTP client built in ``__init__`` instead of ``setup`` cannot be pickled."""

    def __init__(self):
        import httpx

        self._client = httpx.Client()

    def process(self, element):
        yield element


def self_test() -> str:
    """The dry run must fail on an unpicklable DoFn, or it checks nothing."""
    from pipeline.runner import pipeline_options

    options = pipeline_options("DataflowRunner", 1, "in_memory", dry_run_flags("newsbeam-selftest"), {})
    p = beam.Pipeline(runner="DataflowRunner", options=options)
    try:  # Beam pickles a DoFn when the ParDo is built, and the whole job again when it is translated
        _ = p | beam.Create([1]) | beam.ParDo(_ClientInInit())
        p.run()
    except Exception as err:  # Beam raises a pickling error (type varies with the pickler)
        return f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
    raise SystemExit("self-test failed: an unpicklable DoFn passed the dry run")


def check_package(setup_file: str, work: str) -> list[str]:
    """Build the sdist Beam stages for ``--setup_file`` and check it carries every module."""
    from apache_beam.runners.portability.stager import Stager

    out = os.path.join(work, "sdist")
    os.makedirs(out)
    sdist = Stager._build_setup_package(setup_file, out)
    with tarfile.open(sdist) as tar:
        names = {"/".join(n.split("/")[1:]) for n in tar.getnames()}
    missing = []
    for package in PACKAGES:
        for name in os.listdir(os.path.join(PROJECT_ROOT, package)):
            # the modules, and the C source a worker compiles (setup.py: transforms/_langdetect_trial.c)
            if name.endswith((".py", ".c")) and f"{package}/{name}" not in names:
                missing.append(f"{package}/{name}")
    if missing:
        raise SystemExit(f"the sdist for the workers lacks {missing}: fix [tool.setuptools] in pyproject.toml")
    built = sorted(n for n in names if n.endswith(".so"))
    if built:  # a module compiled here would not load on a worker of another platform
        raise SystemExit(f"the sdist for the workers carries compiled modules {built}")
    return sorted(n for n in names if n.endswith(".py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-package", action="store_true", help="do not build the worker sdist")
    args = parser.parse_args(argv)
    try:
        import apache_beam.runners.dataflow.internal.apiclient  # noqa: F401
    except ImportError as err:
        print(f"dataflow-dryrun: apache-beam[gcp] is not installed here ({err}); use `make dataflow-dryrun`",
              file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="newsbeam-dryrun-")
    started = time.perf_counter()
    try:
        print(f"ok  self-test: an unpicklable DoFn is refused ({self_test()})")
        reports = [
            check_job("dataflow-batch", build_batch, False, work),
            check_job("dataflow-streaming", build_streaming, True, work),
        ]
        for r in reports:
            print(f"ok  {r['profile']:<20} {r['job_type']}: "
                  f"{r['transforms']} transforms, {r['dofns_unpickled']} DoFns pickled and unpickled, "
                  f"{r['seconds']} s")
        if not args.skip_package:
            modules = check_package(reports[0]["setup_file"], work)
            print(f"ok  worker package: sdist of {os.path.relpath(reports[0]['setup_file'], PROJECT_ROOT)} "
                  f"carries {len(modules)} modules of {', '.join(PACKAGES)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"dataflow dry run passed in {time.perf_counter() - started:.1f} s (no cloud calls, fake project)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
