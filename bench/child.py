"""One bench variant in a fresh process, started the way ``newsbeam run`` starts: ``python -m bench.child JOB``.

``newsbeam run --workers N`` starts its worker server before it imports Beam (``pipeline.worker.prestart``,
pipeline/commands/run.py), so the server imports Beam's harness on the other core while the launcher imports
Beam. This entry does the same before it imports Beam (the steps do, when :func:`child` runs them) and then
runs the variant; it prints the variant's figures as one JSON line. Until session 9 the variant ran
from ``python -m bench.bench --child``, which imports Beam first: a two-worker run then waited ~1.5 s for a
server that the command line has warmed by then. The measured time starts, as before, once the imports are
done; the CPU figures count the whole process tree, start-up included.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import sys
import time
from typing import Any

FIXED_NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


def job_settings(job: dict[str, Any]):
    """The run settings of a bench ``job`` (profile, input pattern, output, variant's workers)."""
    from pipeline.settings import build_settings

    overrides: dict[str, Any] = {"inputs": [job["pattern"]], "output": job["output"], "run_id": "bench"}
    if job.get("max_files_per_run") is not None:
        overrides["read"] = {"max_files_per_run": job["max_files_per_run"]}
    if job["variant"].startswith("beam-"):
        workers = int(job["variant"].split("-")[1])
        overrides["workers"] = workers
        overrides["direct_running_mode"] = "multi_processing" if workers > 1 else "in_memory"
    return build_settings(job["profile"], overrides)


def child(job: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in this process; returns its figures (printed as JSON by :func:`main`)."""
    shutil.rmtree(job["output"], ignore_errors=True)
    settings = job_settings(job)
    profiler = None
    if job.get("cprofile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    if job["variant"] == "datatrove":
        from bench.bench_peers import run_datatrove

        result = run_datatrove(job["pattern"], job["output"])
        counters = result["counters"]
        extra = {"files": result["files"]}
    elif job["variant"] == "loop":
        from bench.bench_loop import run_plain_loop

        result = run_plain_loop(settings, settings.run_info(FIXED_NOW))
        counters = result["counters"]
        extra = {"step_seconds": result["step_seconds"], "step_cpu_seconds": result["step_cpu_seconds"],
                 "files": result["files"]}
    else:
        from pipeline.launch import run_once  # the worker server is started already (main)

        manifest = run_once(settings, now=FIXED_NOW)
        counters = {k: manifest["counters"][k] for k in ("inputs", "articles", "duplicates", "dead_letters", "balanced")}
        extra = {"files": len(manifest["files"]), "runner": manifest["runner"],
                 "chunks": len(manifest.get("chunks") or []) or 1}
    seconds = time.perf_counter() - start
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        extra["cprofile_top"] = out.getvalue().splitlines()
    if not job.get("keep_output"):
        shutil.rmtree(job["output"], ignore_errors=True)
    return {
        "seconds": round(seconds, 3),
        "counters": counters,
        "max_rss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "max_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        **extra,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.child JOB_JSON (started by bench/bench.py)", file=sys.stderr)
        return 2
    job = json.loads(argv[0])
    if job["variant"].startswith("beam-"):
        from pipeline.worker import prestart

        settings = job_settings(job)
        prestart(settings.runner, settings.workers)
    print(json.dumps(child(job), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
