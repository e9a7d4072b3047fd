"""The Dataflow dry run builds both jobs offline (needs .venv-gcp: `make setup-gcp`; CI runs `make dataflow-dryrun`)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import PROJECT

GCP_PYTHON = PROJECT / ".venv-gcp" / "bin" / "python"


@pytest.mark.skipif(not GCP_PYTHON.exists(), reason="no .venv-gcp (make setup-gcp); CI runs make dataflow-dryrun")
def test_dry_run_builds_batch_and_streaming_jobs():
    done = subprocess.run([str(GCP_PYTHON), "-m", "deploy.dataflow_dryrun", "--skip-package"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "self-test: an unpicklable DoFn is refused" in done.stdout
    assert "dataflow-batch       JOB_TYPE_BATCH" in done.stdout
    assert "dataflow-streaming   JOB_TYPE_STREAMING" in done.stdout
