"""Benchmark tools without their corpora: exit 2 with a clear message, and no file changed.

The project is copied into a temporary folder that has no ../shared next to it, and the real
command (`python -m pipeline bench ...`) runs there as a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

PROJECT = pathlib.Path(__file__).resolve().parent.parent
COPIED = ("pipeline", "transforms", "schemas", "analyst", "bench", "configs", "data", "docs", "README.md")


def snapshot(root: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def bare_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("noshared") / "newsbeam"
    root.mkdir()
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "work", "*.pyc"))
        else:
            shutil.copy2(source, root / name)
    assert not (root.parent / "shared").exists()
    return root


@pytest.mark.parametrize("args, what", [
    (["bench", "--language"], "language"),
    (["bench", "--articles", "20"], "bench"),
])
def test_bench_tools_refuse_without_corpora(bare_project, args, what):
    before = snapshot(bare_project)
    env = {**os.environ, "PYTHONPATH": str(bare_project)}
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=bare_project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "refusing to run" in done.stderr and "shared" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(bare_project) == before, "a tool without its corpora changed files"


@pytest.mark.parametrize("args", [[], ["/nonexistent/articles"], ["/nonexistent/articles", "10"]])
def test_normalize_speed_refuses_without_its_corpus(bare_project, args):
    before = snapshot(bare_project)
    env = {**os.environ, "PYTHONPATH": str(bare_project)}
    done = subprocess.run([sys.executable, "bench/normalize_speed.py", *args], cwd=bare_project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "needs the bench corpus" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(bare_project) == before
