"""Benchmarks and evaluations: not part of the runtime; run through `make bench`, `make eval*`."""
