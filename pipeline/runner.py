"""Choosing the Beam runner explicitly, and naming the one that really ran.

``DirectRunner`` here means Beam's in-process FnApiRunner, chosen directly:
Beam's own DirectRunner would first try the Prism runner, which downloads a
binary from the internet and hangs or fails offline. ``PrismRunner`` must be
asked for by name. ``BundleBasedDirectRunner`` is the local runner that
executes streaming pipelines (TestStream). Other names go to Beam as given.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipeline import beam_speedups, collector
from pipeline.config import PROJECT_ROOT
from pipeline.worker import SERVER_ENV, limit_malloc_arenas, start_server, take_prestarted

LOG = logging.getLogger(__name__)

IN_PROCESS = "DirectRunner"

beam_speedups.install()  # graphs built and run in this process (pipeline/beam_speedups.py)


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


def _in_process_runner() -> Any:
    """Beam's FnApiRunner; with ``--workers N`` its worker processes run :mod:`pipeline.worker`."""
    import shlex

    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms.environments import SubprocessSDKEnvironment

    class LocalRunner(FnApiRunner):
        def run_pipeline(self, pipeline, options):
            direct = options.view_as(DirectOptions)
            if direct.direct_running_mode != "multi_processing":
                with collector.tuned():  # the bundles run in this process
                    return super().run_pipeline(pipeline, options)
            # FnApiRunner would start `python -m apache_beam.runners.worker.sdk_worker_main`: the same
            # harness, started through pipeline.worker (quiet start-up, Ctrl-C left to this process).
            self._default_environment = SubprocessSDKEnvironment.from_command_string(
                f"{shlex.quote(sys.executable)} -m pipeline.worker")
            harness = options.get_all_options()
            if not harness.get("default_sdk_harness_log_level"):
                level = logging.getLevelName(max(logging.getLogger().getEffectiveLevel(), logging.WARNING))
                options = PipelineOptions.from_dictionary({**options.get_all_options(drop_default=True),
                                                           "default_sdk_harness_log_level": level})
                direct = options.view_as(DirectOptions)
            direct.direct_running_mode = "subprocesses"  # the environment above, not FnApiRunner's own
            limit_malloc_arenas()  # before gRPC's threads start (pipeline/worker.py)
            previous = os.environ.get(SERVER_ENV)
            try:
                with _stop_workers_on_interrupt():  # Ctrl-C also ends a worker server still warming up
                    address = warm_workers_address()
                    if address:
                        os.environ[SERVER_ENV] = address  # inherited by the workers Beam starts (pipeline/worker.py)
                    return super().run_pipeline(pipeline, options)
            finally:
                if previous is None:
                    os.environ.pop(SERVER_ENV, None)
                else:
                    os.environ[SERVER_ENV] = previous

    return LocalRunner()


# -- warm workers (pipeline/worker.py --serve) --------------------------------------------------------

_WARM: dict[str, Any] = {"spec": None, "server": None}


def warm_workers(spec: dict[str, Any] | None) -> None:
    """What the next ``--workers N`` pipelines' worker server builds before it forks workers: the
    ``language`` settings and validated ``taxonomy`` of the run (the objects transforms/enrich.py caches).
    None: no server (every worker starts cold, as Beam starts it).

    The server starts warming up now, in its own process, while this one builds and translates the
    graph; the first worker Beam asks for waits until it is ready (:func:`warm_workers_address`)."""
    _WARM["spec"] = spec
    _server_for_spec()


def _server_for_spec() -> dict[str, Any] | None:
    """The worker server of the current spec, started (not necessarily ready) if it is not running."""
    spec = _WARM["spec"]
    if spec is None or os.environ.get("NEWSBEAM_COLD_WORKERS"):
        return None
    key = json.dumps(spec, sort_keys=True, default=str)
    server = _WARM["server"]
    if server is not None and server["key"] == key and server["process"].poll() is None:
        return server
    stop_warm_workers()
    early = take_prestarted()  # started before Beam was imported (pipeline.worker.prestart): only the spec is missing
    folder = early["folder"] if early else tempfile.mkdtemp(prefix="newsbeam-workers-")
    spec_path = os.path.join(folder, "spec.json")
    with open(spec_path, "w", encoding="utf-8") as handle:
        # In the spec's own order: the taxonomy's label order is the order of every row's `topics`.
        handle.write(json.dumps(spec, default=str))
    if early:
        process, address = early["process"], early["address"]
        try:
            process.stdin.write(spec_path.encode("utf-8") + b"\n")
            process.stdin.flush()
        except OSError:  # it ended: start one as usual
            early = None
    if not early:
        address = os.path.join(folder, "socket")
        process = start_server(address, spec_path)
    _WARM["server"] = {"key": key, "process": process, "address": address, "folder": folder, "ready": False}
    return _WARM["server"]


def warm_workers_address() -> str | None:
    """The address of this process's worker server for the current spec (started on first use, once per
    spec, and waited for until it is warm); None when there is no spec or the server could not start
    (workers then start cold)."""
    server = _server_for_spec()
    if server is None:
        return None
    if not server["ready"]:
        process = server["process"]
        try:
            ready = process.stdout.readline()
        except BaseException:  # Ctrl-C while it warms up: it goes too
            process.kill()
            process.wait()
            stop_warm_workers()
            raise
        if ready.strip() != b"ready":
            LOG.warning("the worker server did not start (%r): workers start cold", ready[-200:])
            process.kill()
            process.wait()
            stop_warm_workers()
            return None
        server["ready"] = True
    return server["address"]


def stop_warm_workers() -> None:
    """End this process's worker server (closing its stdin; it ends its workers)."""
    server = _WARM.get("server")
    _WARM["server"] = None
    if server is None:
        return
    process = server["process"]
    with contextlib.suppress(OSError, ValueError):
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except Exception:  # noqa: BLE001 - a stuck server is killed
        process.kill()
        process.wait()
    shutil.rmtree(server["folder"], ignore_errors=True)


atexit.register(stop_warm_workers)  # a no-op unless a run of this process started a server


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children, grandchildren ...), read from /proc; [] elsewhere."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def _stop_workers_on_interrupt():
    """Ctrl-C during a ``--workers N`` run: end the worker processes this run started.

    The workers ignore SIGINT (pipeline/worker.py), and Beam waits for a busy worker to finish its
    bundle before it lets the run stop, so on SIGINT they are sent SIGTERM (ending them silently),
    the threads that watched them stay quiet, and KeyboardInterrupt goes on as usual.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        for child in _descendants(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGTERM)
        threading.excepthook = lambda args: None  # "worker exited with -15" from Beam's watcher threads
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_runner(runner_name: str) -> Any:
    """A runner instance for ``runner_name``; the in-process runner never downloads anything."""
    if runner_name == IN_PROCESS:
        return _in_process_runner()
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
