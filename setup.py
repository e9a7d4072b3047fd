"""Shim for Beam's --setup_file: Dataflow builds an sdist of this project and installs it on workers.

All metadata lives in pyproject.toml; this file only lets ``python setup.py sdist`` (Beam's
fallback when the ``build`` module is missing) work.
"""

from setuptools import setup

setup()
