"""Shim for Beam's --setup_file (Dataflow builds an sdist of this project and installs it on workers), and
the C extensions.

The metadata lives in pyproject.toml. The C extensions are optional: without a C compiler the install goes
on and their modules run their numpy paths, with the same answers, slower:

* ``transforms._langdetect_trial``: langdetect's trial loop (transforms/langdetect_np.py, ~3x);
* ``transforms._minhash_signature``: MinHash signatures (transforms/minhash.py);
* ``transforms._topics_scan``: topic matching's lower-casing, automaton pass and simple hit checks
  (transforms/topics.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("transforms._langdetect_trial", ["transforms/_langdetect_trial.c"], optional=True,
              # no fused multiply-adds: the same double operations as Python's, so the same bits
              extra_compile_args=["-O2", "-ffp-contract=off"]),
    Extension("transforms._minhash_signature", ["transforms/_minhash_signature.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("transforms._topics_scan", ["transforms/_topics_scan.c"], optional=True,
              extra_compile_args=["-O2"]),
])
