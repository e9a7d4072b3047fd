"""Shared fixtures: paths of the bundled data and a helper that runs the real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import shutil

import pytest

from pipeline.settings import build_settings

PROJECT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = PROJECT / "data" / "seeds"
SHARED = PROJECT.parent / "shared"

FIXED_NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def seeds_glob() -> str:
    return str(SEEDS / "*.txt")


def seeds_with_duplicate_and_dead_letter(folder: pathlib.Path) -> str:
    """Copy the seeds into ``folder`` plus an exact copy of one and an empty file; returns the glob.

    A run over it gives 5 articles, 1 duplicate and 1 dead letter.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, folder / seed.name)
    shutil.copy(min(SEEDS.glob("*.txt")), folder / "zz_copy.txt")
    (folder / "zz_empty.txt").write_bytes(b"")
    return str(folder / "*.txt")


def make_settings(output: str | os.PathLike, inputs: list[str] | None = None, **overrides):
    """Settings from the local profile, writing to ``output``.

    The page fetch of feed items (full text, on by default) is off here unless a test asks for it with
    ``feeds={..., "full_text": True}``: the test feeds link to hosts this machine cannot reach.
    """
    values = {"output": str(output), **overrides}
    values["feeds"] = {"full_text": False, **values.get("feeds", {})}
    if inputs is not None:
        values["inputs"] = inputs
    return build_settings("local", values)


@pytest.fixture
def run_pipeline():
    """Run the batch pipeline for real (FnApiRunner) and return its manifest."""
    from pipeline.batch import run_batch

    def _run(output, inputs, now=FIXED_NOW, replaces_runs=(), **overrides):
        import dataclasses

        settings = dataclasses.replace(make_settings(output, inputs, **overrides), replaces_runs=tuple(replaces_runs))
        return run_batch(settings, now=now)

    return _run


def make_test_pipeline():
    """A TestPipeline on the in-process FnApiRunner (Beam's DirectRunner would try to download Prism)."""
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.runner import make_runner

    return TestPipeline(runner=make_runner("DirectRunner"))


def c_or_numpy(request, monkeypatch, module, name: str) -> str:
    """Body of a fixture with params ``["c", "numpy"]`` (or ``["c", "python"]``) for a step with an optional
    C core (setup.py): "numpy"/"python" sets ``module.<name>`` (the C function or module) to None, so the step
    runs its numpy or pure-Python code; "c" skips the test when the C module is not built (no C compiler at
    install)."""
    if request.param in ("numpy", "python"):
        monkeypatch.setattr(module, name, None)
    elif getattr(module, name) is None:
        pytest.skip(f"{module.__name__}.{name} is not built (no C compiler at install)")
    return request.param
