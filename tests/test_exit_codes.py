"""Exit codes of the real command, in real subprocesses (0 done: tests/test_progress.py), 1 failed, 2 usage/configuration
error, 130 interrupted (SIGINT at start-up and mid-run, one line on stderr, no traceback, nothing
half-written visible, and the next run completes the work)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import PROJECT, SEEDS
from test_progress import many_inputs

ENV = {**os.environ, "PYTHONPATH": str(PROJECT)}


def newsbeam(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=PROJECT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["run", "--input", "no/such/folder/*.txt", "--output", "OUT"], "matches no file"),
    (["run", "--profile", "no-such-profile", "--input", str(SEEDS / "*.txt"), "--output", "OUT"], "config file not found"),
    (["frobnicate"], "invalid choice"),
    (["run", "--workers", "many"], "invalid int value"),
])
def test_usage_and_configuration_errors_are_2(tmp_path, args, message):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    done = newsbeam(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists(), "a usage error wrote output"


def test_a_failed_run_is_1_with_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "_runs").write_text("a file where the run manifests go")  # the commit cannot write its manifest
    done = newsbeam("run", "--input", str(SEEDS / "*.txt"), "--output", str(out))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failure = [line for line in done.stderr.splitlines() if line.startswith("newsbeam:")]
    assert len(failure) == 1 and "run failed" in failure[0] and "--log-level DEBUG" in failure[0]


def interrupt(args: list[str], when, timeout: float = 120) -> tuple[int, str, float]:
    """Start the command, send SIGINT once ``when(stderr_so_far, seconds)`` is true; (code, stderr, seconds to stop)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=PROJECT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    started = time.monotonic()
    while not when("".join(lines), time.monotonic() - started):
        assert proc.poll() is None, "finished before the interrupt:\n" + "".join(lines)
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the interrupted run did not stop")
    stopped = time.monotonic() - sent
    reader.join(timeout=10)
    return proc.returncode, "".join(lines), stopped


@pytest.mark.parametrize("delay", [0.3, 1.5])
def test_sigint_at_start_up_is_130(tmp_path, delay):
    """While Python, the command modules and Beam load and the graph is built."""
    code, stderr, _ = interrupt(["run", "--input", str(SEEDS / "*.txt"), "--output", str(tmp_path / "out")],
                                lambda seen, elapsed: elapsed >= delay)
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == "newsbeam: interrupted", stderr[-3000:]
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    return many_inputs(tmp_path_factory.mktemp("sigint_in"), copies=30)  # 150 files


def visible_state(out: pathlib.Path) -> dict:
    """What a reader can see: committed manifests, and every *.parquet file readable in full."""
    manifests = [json.loads(p.read_text()) for p in sorted((out / "_runs").glob("*.json"))] if (out / "_runs").is_dir() else []
    for path in out.rglob("*.parquet"):
        pq.read_table(path)  # raises on a half-written file
    return {"committed": [m["run_id"] for m in manifests if m.get("status") == "committed"]}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_mid_run_is_130_and_the_next_run_completes(tmp_path, big_input, workers):
    out = tmp_path / "out"
    args = ["--log-level", "INFO", "run", "--input", big_input, "--output", str(out), "--workers", workers]
    # mid-run: the graph is running (its start is logged) and has been for a moment
    marks = {}

    def running(seen, elapsed):
        if "INFO pipeline.batch: run " in seen and "start" not in marks:
            marks["start"] = elapsed
        return "start" in marks and elapsed >= marks["start"] + 2.0

    code, stderr, stop_seconds = interrupt(args, running)
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == "newsbeam: interrupted", stderr[-3000:]
    assert "Traceback" not in stderr and "Exception in thread" not in stderr
    assert stop_seconds < 30, f"took {stop_seconds:.1f} s to stop"
    assert visible_state(out)["committed"] == [], "an interrupted run is committed"

    again = newsbeam("run", "--input", big_input, "--output", str(out), "--quiet", "--json")
    assert again.returncode == 0, again.stderr
    manifest = json.loads(again.stdout)
    counters = manifest["counters"]
    assert counters["inputs"] == 150 and counters["balanced"]
    con = duckdb.connect()
    ids = con.execute(f"SELECT count(*), count(DISTINCT article_id) FROM read_parquet('{out}/articles/**/*.parquet', "
                      "hive_partitioning=true)").fetchone()
    assert ids[0] == ids[1] == counters["articles"], "articles lost or duplicated after the interrupt"
