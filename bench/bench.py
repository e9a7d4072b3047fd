"""Throughput benchmark: Beam pipeline (1 and 2 workers) next to a plain loop over the same cores.

``python -m pipeline bench`` (or ``make bench``) generates a seeded corpus
(:mod:`bench.bench_corpus`) under ``bench/work/``, then, for each
profile, runs in a fresh subprocess each:

  * ``beam-1``: ``pipeline.launch.run_once`` (what ``newsbeam run`` does, chunks of
    ``read.max_files_per_run`` files included) on the DirectRunner (in-process FnApiRunner), 1 worker;
  * ``beam-2``: the same with 2 worker processes (``multi_processing``);
  * ``loop``: :func:`bench.bench_loop.run_plain_loop`, which also times
    every step (read, parse, normalize, dedup, language, topics, write).

Per variant it records wall time, articles per second (input files / time
inside the run), peak memory (the largest sum of RSS over the subprocess and
all its children, sampled from /proc every 100 ms, PSS every 500 ms, and the largest single
process from ``getrusage``), the run's counters and the ratio to the plain
loop. ``datatrove`` (``make bench-peers``, optional extra ``peers``) runs datatrove's
equivalent pipeline (:mod:`bench.bench_peers`) on the same files, profile ``fast`` only
(it uses the same fastText model); ``make bench`` adds it when datatrove is installed.
Results go to ``bench/results.json`` and ``bench/results.md`` (only those files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from typing import Any

from bench.bench_corpus import GNAD_CSV, LINGUA_DIR, PROJECT, CorpusSpec, generate
from bench.child import FIXED_NOW, child, job_settings  # noqa: F401  (one variant in its process)

WORK = PROJECT / "bench" / "work"
RESULTS = PROJECT / "bench" / "results.json"
TABLE = PROJECT / "bench" / "results.md"  # the tables of docs/bench.md, written by this tool only
VARIANTS = ("beam-1", "beam-2", "loop")
PEER_VARIANTS = ("datatrove",)  # other projects' equivalent pipelines (bench/bench_peers.py)
PROFILES = ("local", "fast")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# -- memory of a process tree ---------------------------------------------------

def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids.extend(int(p) for p in handle.read().split())
    except OSError:
        pass
    return kids


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once it is gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except OSError:
            continue
        stack.extend(_children(current))
    return total


def tree_pss(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants (bytes; 0 once gone): a page shared by n
    processes counts 1/n in each, so forked workers sharing their models are not counted n times, as
    their RSS sum counts them (the warm workers of ``--workers N``)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
        stack.extend(_children(current))
    return total


class PeakSampler(threading.Thread):
    """Peak RSS and PSS of a process tree, sampled in this (the bench's) process.

    The sampler competes with the measured run for the machine's two cores: reading every
    process's ``smaps_rollup`` every 50 ms took about a fifth of a core during a ``beam-2`` run
    (py-spy, session 6). RSS (``statm``, cheap) is read every ``interval`` seconds, PSS every
    ``pss_every``-th sample; runs last tens of seconds and their peaks far longer than a sample."""

    def __init__(self, pid: int, interval: float = 0.1, pss_every: int = 5):
        super().__init__(daemon=True)
        self.pid, self.interval, self.pss_every, self.peak, self.peak_pss = pid, interval, pss_every, 0, 0
        self._stop_event = threading.Event()

    def run(self):
        sample = 0
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            if sample % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, tree_pss(self.pid))
            sample += 1
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


# -- one variant, in its own process (bench/child.py) ---------------------------

def run_measured(args: list[str], cwd, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``args`` as a process; its exit code, output, wall time, CPU seconds (the process and
    the children it reaped) and the peak RSS of its process tree (bytes)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.stop()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr, "wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), "peak": sampler.peak,
            "peak_pss": sampler.peak_pss}


def run_variant(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` in a fresh Python process; adds wall time and the peak RSS of its process tree."""
    done = run_measured([sys.executable, "-m", "bench.child", json.dumps(job)], PROJECT)
    stdout, wall, cpu = done["stdout"], done["wall"], done["cpu"]
    if done["returncode"] != 0:
        raise RuntimeError(f"bench variant {job['variant']}/{job['profile']} failed:\n{done['stderr'][-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    inputs = result["counters"]["inputs"]
    result.update({
        "variant": job["variant"],
        "profile": job["profile"],
        "wall_seconds": round(wall, 3),
        "articles_per_second": round(inputs / result["seconds"], 1) if result["seconds"] else None,
        "peak_rss_tree_mb": round(done["peak"] / 2**20, 1),
        "peak_pss_tree_mb": round(done["peak_pss"] / 2**20, 1),
        # CPU seconds of the subprocess and the workers it reaped, start-up included: unlike wall
        # time, not inflated by other programs on a shared machine.
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_article": round(cpu / inputs * 1e6, 1) if inputs else None,
    })
    return result


# -- checks and reporting -------------------------------------------------------

def check(result: dict[str, Any], corpus: dict[str, Any]) -> list[str]:
    """What a correct run over the corpus must report; returns the problems found."""
    expected, c = corpus["expected"], result["counters"]
    problems = []
    if c["inputs"] != expected["inputs"]:
        problems.append(f"inputs {c['inputs']} != {expected['inputs']} files")
    if c["dead_letters"] != expected["dead_letters"]:
        problems.append(f"dead letters {c['dead_letters']} != {expected['dead_letters']} bad files")
    if c["duplicates"] < expected["exact_duplicates"]:
        problems.append(f"duplicates {c['duplicates']} < {expected['exact_duplicates']} exact copies")
    if not c["balanced"]:
        problems.append("counters do not balance")
    return problems


def check_peer(result: dict[str, Any], corpus: dict[str, Any]) -> list[str]:
    """A peer pipeline (no dead letters of its own) must read every file and account for each as kept or removed."""
    expected, c = corpus["expected"], result["counters"]
    problems = []
    if c["inputs"] != expected["inputs"]:
        problems.append(f"inputs {c['inputs']} != {expected['inputs']} files")
    if c["articles"] + c["duplicates"] + c["dead_letters"] != c["inputs"]:
        problems.append("counters do not balance")
    if c["duplicates"] < expected["exact_duplicates"]:
        problems.append(f"duplicates {c['duplicates']} < {expected['exact_duplicates']} exact copies")
    return problems


def step_costs(loop: dict[str, Any]) -> dict[str, dict[str, float]]:
    """CPU and wall µs per input article of each step of the plain loop, and each step's share of the CPU."""
    inputs = loop["counters"]["inputs"]
    cpu = loop["step_cpu_seconds"]
    total = sum(cpu.values())
    return {step: {"cpu_us_per_article": round(cpu[step] / inputs * 1e6, 1),
                   "wall_us_per_article": round(loop["step_seconds"][step] / inputs * 1e6, 1),
                   "share": round(cpu[step] / total, 3)}
            for step in cpu}


def markdown(results: dict[str, Any]) -> str:
    corpus = results["corpus"]
    lines = [
        f"Corpus: {corpus['files']:,} files ({corpus['bytes'] / 2**20:.0f} MiB; "
        f"{corpus['made_up_of']['exact_duplicates']:,} exact and {corpus['made_up_of']['near_duplicates']:,} near "
        f"copies, {sum(v for k, v in corpus['languages_of_articles'].items() if k != 'de'):,} not German, "
        f"{corpus['made_up_of']['dead_letters']} bad files), machine: {results['machine']['cpus']} CPUs, "
        f"Python {results['machine']['python']}, run {results['started_at'][:16]} UTC.",
        "",
        "| profile | variant | articles/s | run time (s) | time vs plain loop | CPU µs per article | "
        "peak RSS, process tree (MiB) | peak PSS, process tree (MiB) | articles | duplicates | dead letters | "
        "files written |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        c = r["counters"]
        lines.append(
            f"| {r['profile']} | {r['variant']} | {r['articles_per_second']:,.0f} | {r['seconds']:.1f} | "
            f"{r.get('ratio_to_loop', 1.0):.2f}x | {r['cpu_us_per_article']:,.0f} | {r['peak_rss_tree_mb']:,.0f} | "
            f"{r.get('peak_pss_tree_mb', 0):,.0f} | {c['articles']:,} | "
            f"{c['duplicates']:,} | {c['dead_letters']:,} | {r.get('files', 0):,} |")
    for profile, costs in results["step_costs"].items():
        lines += ["", f"Cost per input article of each step (plain loop, profile `{profile}`):", "",
                  "| step | CPU µs per article | wall µs per article | share of CPU |", "|---|---:|---:|---:|"]
        for step, figures in costs.items():
            lines.append(f"| {step} | {figures['cpu_us_per_article']:,.0f} | {figures['wall_us_per_article']:,.0f} | "
                         f"{figures['share']:.0%} |")
    if results.get("scaling"):
        lines += ["", "Peak memory against corpus size (profile `fast`, beam-1):", "",
                  "| articles | run time (s) | articles/s | peak RSS (MiB) |", "|---:|---:|---:|---:|"]
        main = [r for r in results["runs"] if r["profile"] == "fast" and r["variant"] == "beam-1"]
        for r in sorted(results["scaling"] + main, key=lambda r: r["counters"]["inputs"]):
            lines.append(f"| {r['counters']['inputs']:,} | {r['seconds']:.1f} | {r['articles_per_second']:,.0f} | "
                         f"{r['peak_rss_tree_mb']:,.0f} |")
    if results.get("problems"):
        lines += ["", "**Checks failed:** " + "; ".join(results["problems"])]
    return "\n".join(lines)


def print_run(r: dict[str, Any]) -> None:
    c = r["counters"]
    print(f"  {r['profile']:<6} {r['variant']:<9} {r['articles_per_second']:>8,.0f} articles/s  "
          f"{r['seconds']:>7.1f} s  x{r.get('ratio_to_loop', 1.0):.2f} vs loop  cpu {r['cpu_seconds']:>7.1f} s = "
          f"{r['cpu_us_per_article']:>6,.0f} µs/article (x{r.get('cpu_ratio_to_loop', 1.0):.2f} loop)  "
          f"peak RSS {r['peak_rss_tree_mb']:>6,.0f} MiB (PSS {r.get('peak_pss_tree_mb', 0):>6,.0f})  "
          f"articles={c['articles']} duplicates={c['duplicates']} dead={c['dead_letters']} files={r.get('files')}"
          + (f" chunks={r['chunks']}" if r.get("chunks", 1) > 1 else ""), flush=True)


def run_bench(articles: int, profiles: list[str], variants: list[str], scaling: list[int], write: bool,
              cprofile: bool = False, force_corpus: bool = False, max_files_per_run: int | None = None) -> dict[str, Any]:
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    corpus = generate(CorpusSpec(articles=articles), WORK, force=force_corpus)
    print(f"corpus: {corpus['files']:,} files in {corpus['folder']} "
          f"({'reused' if corpus['reused'] else 'generated'} in {time.perf_counter() - t0:.1f} s)", flush=True)
    for warning in corpus["sources"]["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    runs, problems, costs = [], [], {}
    for profile in profiles:
        by_variant = {}
        for variant in variants:
            if variant in PEER_VARIANTS and profile != "fast":
                continue  # datatrove's pipeline uses fastText: it compares with the fast profile
            job = {"variant": variant, "profile": profile, "pattern": corpus["pattern"],
                   "output": str(WORK / f"out-{profile}-{variant}"), "cprofile": cprofile,
                   "max_files_per_run": max_files_per_run}
            result = run_variant(job)
            problems += [f"{profile}/{variant}: {p}"
                         for p in (check_peer if variant in PEER_VARIANTS else check)(result, corpus)]
            by_variant[variant] = result
            runs.append(result)
        loop = by_variant.get("loop")
        if loop:
            costs[profile] = step_costs(loop)
            for r in by_variant.values():
                r["ratio_to_loop"] = round(r["seconds"] / loop["seconds"], 3)
                r["cpu_ratio_to_loop"] = round(r["cpu_seconds"] / loop["cpu_seconds"], 3)
                if r is not loop and r["variant"] not in PEER_VARIANTS and r["counters"] != loop["counters"]:
                    problems.append(f"{profile}/{r['variant']}: counters {r['counters']} differ from the plain "
                                    f"loop's {loop['counters']}")
        for r in by_variant.values():
            print_run(r)
    scaled = []
    for n in scaling:
        sc = generate(CorpusSpec(articles=n), WORK)
        result = run_variant({"variant": "beam-1", "profile": "fast", "pattern": sc["pattern"],
                              "output": str(WORK / f"out-scaling-{n}"), "max_files_per_run": max_files_per_run})
        problems += [f"scaling {n}: {p}" for p in check(result, sc)]
        scaled.append(result)
        print(f"  scaling {n:>7,}: {result['seconds']:.1f} s, peak RSS {result['peak_rss_tree_mb']:,.0f} MiB", flush=True)
    results = {
        "started_at": started.isoformat(),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "corpus": {k: corpus[k] for k in ("spec", "key", "files", "bytes", "sources", "made_up_of",
                                          "languages_of_articles", "expected")},
        "runs": runs,
        "step_costs": costs,
        "scaling": scaled,
        "problems": problems,
    }
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        TABLE.write_text(markdown(results) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(PROJECT)} and {TABLE.relative_to(PROJECT)} "
              f"({results['total_seconds']:.0f} s in all)")
    return results


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--articles", type=int, default=int(os.environ.get("BENCH_ARTICLES", 100_000)),
                        help="corpus size in files (default: %(default)s)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated run profiles (%(default)s)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated variants (default: " + ",".join(VARIANTS) + ", plus datatrove when "
                             "it is installed; datatrove needs the optional extra `peers`, profile fast only)")
    parser.add_argument("--scaling", type=_int_list, default=[],
                        help="comma-separated corpus sizes for a peak-memory-vs-size run (fast profile, beam-1)")
    parser.add_argument("--cprofile", action="store_true",
                        help="run every variant under cProfile and keep the top entries (slower; for diagnosis)")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="print only; do not update bench/results.json and bench/results.md")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the corpus even if it exists")
    parser.add_argument("--max-files-per-run", dest="max_files_per_run", type=int, metavar="N",
                        help="chunk size of the beam variants (as `run --max-files-per-run`) and of the "
                             "plain loop (default: the profile's read.max_files_per_run; 0 = one run)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return handle(args)


def missing_corpora() -> list[str]:
    """The shared corpora the recorded figures are made of, when absent (../shared/corpora)."""
    return [str(path) for path in (GNAD_CSV, LINGUA_DIR) if not path.exists()]


def handle(args: argparse.Namespace) -> int:
    missing = missing_corpora()
    if missing and args.write:
        print(f"bench: refusing to run: {', '.join(missing)} not found; the recorded results in "
              f"{RESULTS.relative_to(PROJECT)} are made of them. Add --no-write to measure on the "
              "seed-only corpus without writing anything.", file=sys.stderr)
        return 2
    from bench.bench_peers import available

    if args.variants is None:  # make bench runs the peers too when they are installed
        variants = list(VARIANTS) + (list(PEER_VARIANTS) if available() else [])
    else:
        variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS + PEER_VARIANTS]
    if unknown:
        print(f"bench: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS + PEER_VARIANTS)}",
              file=sys.stderr)
        return 2
    if any(v in PEER_VARIANTS for v in variants) and not available():
        print("bench: variant datatrove requested but datatrove is not installed; install the optional extra "
              "`peers` (pip install -e '.[peers]')", file=sys.stderr)
        return 2
    profiles = [p for p in args.profiles.split(",") if p]
    if args.variants is not None and any(v in PEER_VARIANTS for v in variants) and "fast" not in profiles:
        print("bench: variant datatrove compares with the fast profile (fastText); add fast to --profiles",
              file=sys.stderr)
        return 2
    results = run_bench(args.articles, profiles, variants, args.scaling, args.write, args.cprofile,
                        args.regenerate, getattr(args, "max_files_per_run", None))
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
