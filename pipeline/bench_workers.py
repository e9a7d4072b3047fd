"""Benchmark: the same batch run on the DirectRunner with 1 and with N worker processes.

``python -m pipeline.bench_workers --input 'data/seeds/*.txt' --workers 2`` runs
the batch pipeline once per worker count (same run id and start time, separate
temp outputs), reports wall time and speed-up, and checks with DuckDB that
every run wrote the same article rows. Timings include Beam's start-up (about
1.4 s for the worker processes), so small inputs get slower with more workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time

import duckdb

from pipeline.batch import run_batch
from pipeline.settings import build_settings

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def article_rows(output: str) -> list[tuple]:
    con = duckdb.connect()
    return con.sql(f"SELECT * FROM read_parquet('{output}/articles/**/*.parquet', hive_partitioning=true) "
                   "ORDER BY article_id").fetchall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="data/seeds/*.txt", help="article files glob (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--profile", default="local")
    args = parser.parse_args(argv)
    import glob

    if "://" not in args.input and not glob.glob(args.input):
        print(f"bench-workers: no input files match {args.input!r}", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="newsbeam-bench-workers-")
    results = []
    try:
        for workers in args.workers:
            output = f"{work}/w{workers}"
            settings = build_settings(args.profile, {"inputs": [args.input], "output": output, "workers": workers,
                                                     "run_id": "bench-workers"})
            started = time.perf_counter()
            manifest = run_batch(settings, now=NOW)
            seconds = time.perf_counter() - started
            results.append((workers, manifest["runner"], manifest["counters"]["inputs"], seconds,
                            article_rows(output)))
        base = results[0][3]
        print(f"{'workers':>7}  {'inputs':>6}  {'seconds':>7}  {'speed-up':>8}  runner")
        for workers, runner, inputs, seconds, _ in results:
            print(f"{workers:>7}  {inputs:>6}  {seconds:>7.2f}  {base / seconds:>7.2f}x  {runner}")
        same = all(rows == results[0][4] for *_, rows in results)
        print(f"identical article rows across worker counts: {same} ({len(results[0][4])} rows)")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
