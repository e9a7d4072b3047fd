"""Runner choice: what the manifest says ran is what ran, and more workers give the same rows."""

from __future__ import annotations

import os
import subprocess
import sys

import apache_beam as beam
import duckdb
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import PROJECT_ROOT
from pipeline.runner import describe, make_runner, pipeline_options, running_mode_for
from conftest import FIXED_NOW

# Columns that may differ between two runs of the same input. With the same
# run id and start time none do; the list stays explicit so the test says so.
RUN_SPECIFIC_COLUMNS: tuple[str, ...] = ()


def test_describe_names_the_in_process_runner_and_its_mode():
    assert describe("DirectRunner", 1, running_mode_for(1, "in_memory")) == \
        "FnApiRunner (DirectRunner, in_memory, 1 worker)"
    assert describe("DirectRunner", 2, running_mode_for(2, "in_memory")) == \
        "FnApiRunner (DirectRunner, multi_processing, 2 workers)"
    assert describe("DataflowRunner", 1, "in_memory") == "DataflowRunner"


def test_one_worker_runs_in_this_process():
    options = pipeline_options("DirectRunner", 1, running_mode_for(1, "in_memory"))
    with beam.Pipeline(runner=make_runner("DirectRunner"), options=options) as p:
        pids = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: os.getpid()) | beam.Distinct()
        assert_that(pids, equal_to([os.getpid()]))


def test_two_workers_run_in_other_processes():
    """The manifest says 'multi_processing, 2 workers': the DoFns really run outside this process."""
    options = pipeline_options("DirectRunner", 2, running_mode_for(2, "in_memory"))
    here = os.getpid()
    # A lambda is pickled by value; a DoFn class of this test module could not be
    # imported by the worker processes.
    with beam.Pipeline(runner=make_runner("DirectRunner"), options=options) as p:
        pids = p | beam.Create(list(range(6))) | beam.Map(lambda x: os.getpid()) | beam.Distinct()
        outside = pids | beam.combiners.ToList() | beam.Map(lambda ps: bool(ps) and here not in ps)
        assert_that(outside, equal_to([True]))


def _article_rows(output) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect()
    exclude = f" EXCLUDE ({', '.join(RUN_SPECIFIC_COLUMNS)})" if RUN_SPECIFIC_COLUMNS else ""
    rel = con.sql(
        f"SELECT *{exclude} FROM read_parquet('{output}/articles/**/*.parquet', hive_partitioning=true) "
        "ORDER BY article_id")
    return rel.columns, rel.fetchall()


def test_one_and_two_workers_write_identical_articles(tmp_path, seeds_glob, run_pipeline):
    one = run_pipeline(tmp_path / "one", [seeds_glob], now=FIXED_NOW, workers=1, run_id="same")
    two = run_pipeline(tmp_path / "two", [seeds_glob], now=FIXED_NOW, workers=2, run_id="same")
    assert one["runner"] == "FnApiRunner (DirectRunner, in_memory, 1 worker)"
    assert two["runner"] == "FnApiRunner (DirectRunner, multi_processing, 2 workers)"
    assert one["counters"] == two["counters"]
    assert one["counters"]["articles"] == 5
    columns_one, rows_one = _article_rows(tmp_path / "one")
    columns_two, rows_two = _article_rows(tmp_path / "two")
    assert columns_one == columns_two
    assert len(rows_one) == 5
    assert rows_one == rows_two
    relative = lambda m: sorted((f["table"], f["partition"], os.path.basename(f["path"]), f["rows"]) for f in m["files"])
    assert relative(one) == relative(two)


@pytest.mark.parametrize("workers, requested, expected", [
    (1, "in_memory", "in_memory"),
    (2, "in_memory", "multi_processing"),
    (3, "multi_threading", "multi_threading"),
])
def test_running_mode_for(workers, requested, expected):
    assert running_mode_for(workers, requested) == expected


def test_command_line_flags_win_over_profile_beam_options():
    options = pipeline_options("DataflowRunner", 1, "in_memory", ["--project=from-flag"],
                               {"project": "from-profile", "region": "europe-west1", "setup_file": "./setup.py"})
    values = options.get_all_options()
    assert values["project"] == "from-flag"
    assert values["region"] == "europe-west1"
    assert values["runner"] == "DataflowRunner"
    # A relative setup_file is resolved against the project, whatever the working directory.
    assert os.path.isabs(values["setup_file"]) and os.path.isfile(values["setup_file"])


@pytest.mark.parametrize("profile, streaming", [("dataflow-batch", False), ("dataflow-streaming", True)])
def test_dataflow_profiles_select_dataflow(profile, streaming):
    from pipeline.settings import build_settings

    settings = build_settings(profile)
    assert settings.runner == "DataflowRunner"
    assert bool(settings.beam_options.get("streaming")) == streaming
    for key in ("project", "region", "temp_location", "setup_file", "machine_type", "max_num_workers"):
        assert key in settings.beam_options, key
    assert settings.output.startswith("gs://")


def test_two_workers_fork_from_one_warm_server_across_pipelines():
    """With a warm spec, `--workers 2` workers are children of one worker server (pipeline/worker.py
    --serve), which the next pipeline of the same process reuses; without a spec they start cold."""
    import pipeline.runner as runner

    runner.warm_workers({"language": None, "taxonomy": None})
    try:
        # it starts warming up at once (while the caller builds its graph), ready when first asked for
        started = runner._WARM["server"]
        assert started is not None and started["process"].poll() is None and not started["ready"]
        assert runner.warm_workers_address() == started["address"] and started["ready"]
        options = pipeline_options("DirectRunner", 2, running_mode_for(2, "in_memory"))
        parents = []
        for _ in range(2):
            runner.warm_workers_address()  # started (or kept) for this spec before the pipeline asks for it
            server = runner._WARM["server"]["process"].pid
            with beam.Pipeline(runner=make_runner("DirectRunner"), options=options) as p:
                ppids = p | beam.Create(list(range(6))) | beam.Map(lambda x: os.getppid()) | beam.Distinct()
                assert_that(ppids, equal_to([server]))
            parents.append(server)
        assert parents[0] == parents[1]  # one server for both pipelines
    finally:
        runner.warm_workers(None)
        runner.stop_warm_workers()
    assert runner._WARM["server"] is None


def test_the_worker_server_ends_when_its_launcher_is_killed(tmp_path):
    """kill -9 of the launching process closes the server's stdin: the server (and its workers) end."""
    import signal
    import subprocess
    import sys
    import time

    script = ("import pipeline.runner as r, os, sys, time\n"
              "r.warm_workers({'language': None, 'taxonomy': None})\n"
              "r.warm_workers_address()\n"
              "print(r._WARM['server']['process'].pid, flush=True)\n"
              "time.sleep(120)\n")
    launcher = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                cwd=os.path.dirname(os.path.dirname(__file__)))
    server = int(launcher.stdout.readline())
    assert os.path.exists(f"/proc/{server}")
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{server}/stat") as handle:
                if handle.read().split(") ", 1)[1].startswith("Z"):
                    break  # gone, waiting only for init to reap it
        except OSError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker server {server} outlived its launcher")


def _gone(pid: int, seconds: float = 10) -> bool:
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1].startswith("Z"):
                    return True  # ended, waiting only to be reaped
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_an_early_started_server_is_the_one_the_workers_fork_from():
    """`newsbeam run --workers 2` starts the worker server before it imports Beam (pipeline.worker.prestart);
    the run's spec goes to that server, and the pipeline's workers are its children."""
    import pipeline.runner as runner
    from pipeline import worker

    runner.stop_warm_workers()
    worker.prestart("DirectRunner", 2)
    early = worker._PRESTARTED
    assert early is not None and early["process"].poll() is None
    try:
        worker.prestart("DirectRunner", 2)  # idempotent
        assert worker._PRESTARTED is early
        runner.warm_workers({"language": None, "taxonomy": None})
        assert worker._PRESTARTED is None  # handed over
        assert runner._WARM["server"]["process"] is early["process"]
        assert runner.warm_workers_address() == early["address"]
        options = pipeline_options("DirectRunner", 2, running_mode_for(2, "in_memory"))
        with beam.Pipeline(runner=make_runner("DirectRunner"), options=options) as p:
            ppids = p | beam.Create(list(range(6))) | beam.Map(lambda x: os.getppid()) | beam.Distinct()
            assert_that(ppids, equal_to([early["process"].pid]))
    finally:
        runner.warm_workers(None)
        runner.stop_warm_workers()
    assert _gone(early["process"].pid) and not os.path.exists(early["folder"])


def test_no_early_server_for_one_worker_other_runners_or_cold_workers(monkeypatch):
    from pipeline import worker

    assert worker._PRESTARTED is None
    worker.prestart("DirectRunner", 1)
    worker.prestart("DataflowRunner", 4)
    worker.prestart("BundleBasedDirectRunner", 2)
    monkeypatch.setenv("NEWSBEAM_COLD_WORKERS", "1")
    worker.prestart("DirectRunner", 2)
    assert worker._PRESTARTED is None


def test_an_early_server_that_never_gets_a_spec_ends_with_its_launcher(tmp_path):
    """A run that stops before its pipeline (a configuration error, exit 2): the early server ends when the
    launcher exits, and its folder is removed; after kill -9 of the launcher it ends as well."""
    import signal
    import subprocess
    import sys

    script = ("from pipeline import worker\n"
              "import sys, time\n"
              "worker.prestart('DirectRunner', 2)\n"
              "s = worker._PRESTARTED\n"
              "print(s['process'].pid, s['folder'], flush=True)\n"
              "time.sleep(float(sys.argv[1]))\n")
    root = os.path.dirname(os.path.dirname(__file__))
    for how in ("exit", "kill"):
        launcher = subprocess.Popen([sys.executable, "-c", script, "0.5" if how == "exit" else "120"],
                                    stdout=subprocess.PIPE, text=True, cwd=root)
        pid, folder = launcher.stdout.readline().split()
        assert os.path.exists(f"/proc/{pid}")
        if how == "kill":
            launcher.send_signal(signal.SIGKILL)
        assert launcher.wait(timeout=60) == (0 if how == "exit" else -signal.SIGKILL)
        assert _gone(int(pid)), f"early server {pid} outlived its launcher ({how})"
        if how == "exit":
            assert not os.path.exists(folder)


def test_warm_and_cold_workers_write_identical_articles(tmp_path, seeds_glob, run_pipeline, monkeypatch):
    warm = run_pipeline(tmp_path / "warm", [seeds_glob], now=FIXED_NOW, workers=2, run_id="same")
    monkeypatch.setenv("NEWSBEAM_COLD_WORKERS", "1")
    cold = run_pipeline(tmp_path / "cold", [seeds_glob], now=FIXED_NOW, workers=2, run_id="same")
    assert warm["counters"] == cold["counters"]
    assert _article_rows(tmp_path / "warm") == _article_rows(tmp_path / "cold")


def test_one_glob_is_read_by_every_worker(tmp_path):
    """One pattern matching every file (the usual `--input 'inbox/*.txt'`) is matched in one call, but its
    paths are redistributed in batches before reading: both workers read, every file exactly once."""
    from transforms.common import RunInfo
    from transforms.read import ReadArticleFiles

    for n in range(24):
        (tmp_path / f"a{n:02d}.txt").write_text(f"Title {n}\n\nBody of article number {n}, long enough.\n")
    options = pipeline_options("DirectRunner", 2, running_mode_for(2, "in_memory"))
    run = RunInfo(run_id="spread", ingested_at=FIXED_NOW)
    with beam.Pipeline(runner=make_runner("DirectRunner"), options=options) as p:
        read = p | ReadArticleFiles([str(tmp_path / "*.txt")], "files", run, max_bytes=10_000, payload_cap=4096,
                                    max_title_chars=200, batch_size=3)
        readers = (read["items"] | "Reader" >> beam.Map(lambda item: (item["origin"], os.getpid()))
                   | beam.combiners.ToList())
        batches = read["matched"] | "BatchSizes" >> beam.Map(len) | "Sizes" >> beam.combiners.ToList()

        def check(lists):
            (pairs,) = lists
            origins = sorted(origin for origin, _ in pairs)
            assert origins == sorted(str(tmp_path / f"a{n:02d}.txt") for n in range(24))
            assert len({pid for _, pid in pairs}) == 2, "one worker read every file"

        assert_that(readers, check, label="spread")
        assert_that(batches, equal_to([[3] * 8]), label="batches")


_ARENA_PROBE = r"""
import ctypes, ctypes.util, re, sys, tempfile, threading
from pipeline.worker import limit_malloc_arenas
if sys.argv[1] == "limit":
    assert limit_malloc_arenas(2)
start, keep = threading.Barrier(8), []
def allocate():
    start.wait()
    keep.append([bytearray(4096) for _ in range(200)])  # above pymalloc's 512 bytes: glibc's malloc
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
path = tempfile.mktemp()
handle = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(handle))
libc.fclose(ctypes.c_void_p(handle))
print(len(re.findall(r"<heap nr=", open(path).read())))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_limit_malloc_arenas_caps_the_arenas_threads_create():
    """Eight allocating threads make glibc open arenas of their own; after limit_malloc_arenas(2) they share two."""
    def heaps(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _ARENA_PROBE, mode], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())

    assert heaps("none") > 2
    assert heaps("limit") <= 2
