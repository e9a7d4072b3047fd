"""One bench variant in a fresh process, started the way ``newsbeam run`` starts: ``python -m bench.child JOB``.

``newsbeam run --workers N`` starts its worker server before it imports Beam (``pipeline.worker.prestart``,
pipeline/commands/run.py), so the server imports Beam's harness on the other core while the launcher imports
Beam. This entry does the same before it imports the bench (which imports Beam) and then runs
:func:`bench.bench.child`; it prints the variant's figures as one JSON line. Until session 9 the variant ran
from ``python -m bench.bench --child``, which imports Beam first: a two-worker run then waited ~1.5 s for a
server that the command line has warmed by then. The measured time starts, as before, once the imports are
done; the CPU figures count the whole process tree, start-up included.
"""

from __future__ import annotations

import json
import sys
from typing import Any


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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.child JOB_JSON (started by bench/bench.py)", file=sys.stderr)
        return 2
    job = json.loads(argv[0])
    if job["variant"].startswith("beam-"):
        from pipeline.worker import prestart

        settings = job_settings(job)
        prestart(settings.runner, settings.workers)
    from bench.bench import child

    print(json.dumps(child(job), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
