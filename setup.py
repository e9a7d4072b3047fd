"""Shim for Beam's --setup_file (Dataflow builds an sdist of this project and installs it on workers), and
the one C extension.

The metadata lives in pyproject.toml. ``transforms._langdetect_trial`` (langdetect's trial loop in C,
transforms/langdetect_np.py) is optional: without a C compiler the install goes on and the detector runs
its numpy path, with the same answers, ~4x slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("transforms._langdetect_trial", ["transforms/_langdetect_trial.c"], optional=True,
              # no fused multiply-adds: the same double operations as Python's, so the same bits
              extra_compile_args=["-O2", "-ffp-contract=off"]),
])
