"""bench/topics_classifier_probe.py is an optional probe: without scikit-learn (not in the lock) it exits 2."""

import os
import subprocess
import sys

from conftest import PROJECT


def test_probe_exits_2_without_scikit_learn_or_test_set(tmp_path):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        args = []
    else:  # scikit-learn is there: the missing test set is what makes it exit 2
        args = ["--test", str(tmp_path / "missing.jsonl")]
    done = subprocess.run([sys.executable, "-m", "bench.topics_classifier_probe", *args], cwd=PROJECT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "scikit-learn" in done.stderr or "no test set" in done.stderr
    assert done.stdout == ""

