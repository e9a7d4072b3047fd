"""Assembly of the batch pipeline: read -> normalize -> dedupe -> language -> topics -> write -> commit.

Read and normalize move one element per file; dedup gathers the run's slim records and outputs
the articles and duplicates as lists, which language, topics, the writers and the counters take
as they are (one element per few hundred articles)."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import logging
import os
from typing import Any, Callable, Iterable

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import progress
from pipeline.config import ConfigError
from pipeline.runner import IN_PROCESS, describe, make_runner, pipeline_options, running_mode_for, warm_workers
from pipeline.settings import RunSettings
from schemas import ARTICLES, DEAD_LETTERS, DUPLICATES
from transforms.commit import CommitRun, read_manifest, recover, staging_root
from transforms.common import DEAD_LETTER, RunInfo
from transforms.dedup_index import LookupDedupIndex, WritePendingIndex, window_cutoff
from transforms.dedupe import DUPLICATE, Deduplicate
from transforms.enrich import EnrichArticles
from transforms.normalize import NormalizeArticles
from transforms.read import ReadArticleFiles, display_path
from transforms.topics import load_taxonomy
from transforms.write import WriteTable

LOG = logging.getLogger(__name__)


class _CountKeysFn(beam.DoFn):
    """Counts ``keys(element)`` per window over a bundle; emits ``(key, n)`` pairs when the bundle ends.

    One call per element and a handful of pairs per bundle, instead of a ``(key, 1)`` element
    per key and element through the shuffle.
    """

    def __init__(self, keys: Callable[[Any], Iterable[str]], batched: bool = False):
        self._keys = keys
        self._batched = batched
        self._counts: dict = {}

    def start_bundle(self):
        self._counts = {}

    def process(self, element, window=beam.DoFn.WindowParam):
        counts = self._counts.get(window)
        if counts is None:
            counts = self._counts[window] = collections.Counter()
        if self._batched:
            for one in element:
                counts.update(self._keys(one))
        else:
            counts.update(self._keys(element))

    def finish_bundle(self):
        for window, counts in self._counts.items():
            for key, n in counts.items():
                yield WindowedValue((key, n), window.max_timestamp(), [window])
        self._counts = {}


def count_keys(pcoll, label: str, keys: Callable[[Any], Iterable[str]], batched: bool = False):
    """``(key, n)`` pairs: how many elements of ``pcoll`` yield each key of ``keys(element)``
    (several pairs per key may come out: sum them). ``batched``: the elements are lists, and the
    elements of the lists are counted."""
    return pcoll | label >> beam.ParDo(_CountKeysFn(keys, batched))


def _count(pcoll, label: str, key: str, batched: bool = False):
    """``(key, n)`` pairs counting the elements of ``pcoll`` (``batched``: of its lists)."""
    keys = (key,)
    return count_keys(pcoll, f"Count{label}", lambda _: keys, batched)


def _article_keys(article) -> list[str]:
    return ["articles", f"language:{article['language']}", *(f"topic:{topic}" for topic in article["topics"]),
            f"published_date:{article['published_date'].isoformat()}"]


def article_counts(articles, batched: bool = False):
    """``(articles, n)``, ``(language:xx, n)``, ``(topic:label, n)`` and ``(published_date:..., n)``
    pairs, for the manifest (``batched``: ``articles`` holds lists of articles)."""
    return count_keys(articles, "ArticleCounts", _article_keys, batched)


def process_items(items, dead_letters: list, input_counts, settings: RunSettings, run: RunInfo, taxonomy: dict,
                  manifest_base: dict[str, Any], extra_files: list | None = None,
                  commit_hooks: list[Callable] | None = None, record_extras: dict[str, Any] | None = None):
    """The shared article flow, for files and feeds alike.

    ``items`` are parsed items, ``dead_letters`` PCollections of dead letters
    so far, ``input_counts`` a PCollection of ``('inputs', n)``. Returns the
    manifest PCollection.
    """
    normalized = items | "Normalize" >> NormalizeArticles(
        run, settings.read["min_body_chars"], settings.read["dead_letter_payload_bytes"],
        settings.feeds.get("allow_future_minutes", 0), minhash=settings.dedup)
    dedup = settings.dedup
    lookup = LookupDedupIndex(settings.output, run.run_id, window_cutoff(run.ingested_at, dedup["window_days"]),
                              settings.replaces_runs, dedup)
    # From dedup on, articles and duplicates move as lists (one per dedup join shard): the runner's
    # per-element cost is paid per list, not per article (docs/bench.md, round 4).
    deduped = normalized["articles"] | "Dedupe" >> Deduplicate(dedup, lookup=lookup, output_batches=True)
    labeled = deduped["articles"] | "LanguageAndTopics" >> EnrichArticles(settings.language, taxonomy)
    all_dead = [*dead_letters, normalized[DEAD_LETTER]] | "AllDeadLetters" >> beam.Flatten()
    progress.attach([items, *dead_letters], [labeled, deduped[DUPLICATE], all_dead],  # only on a terminal
                    batches=[labeled, deduped[DUPLICATE]])

    write = settings.write
    run_id = run.run_id
    # Every file goes to the run's staging folder; the commit publishes them together (transforms/commit.py).
    staged = staging_root(settings.output, run_id)
    files = [
        labeled | "WriteArticles" >> WriteTable(ARTICLES, staged, run_id, shards=write["shards"],
                                                rows_per_file=write["rows_per_file"], batched=True),
        deduped[DUPLICATE] | "WriteDuplicates" >> WriteTable(DUPLICATES, staged, run_id, shards=1,
                                                             rows_per_file=write["rows_per_file"], batched=True),
        all_dead | "WriteDeadLetters" >> WriteTable(DEAD_LETTERS, staged, run_id, shards=1,
                                                    rows_per_file=write["rows_per_file"], shard_key="origin"),
        labeled | "WriteIndexSegment" >> WritePendingIndex(staged, run_id, batched=True),
        *(extra_files or []),
    ]
    compaction = {"now": run.ingested_at.isoformat(), "window_days": dedup["window_days"],
                  "after_segments": dedup["compact_after_segments"]}
    counts = (
        input_counts,
        _count(deduped[DUPLICATE], "Duplicates", "duplicates", batched=True),
        _count(all_dead, "DeadLetters", "dead_letters"),
        article_counts(labeled, batched=True),
    ) | "AllCounts" >> beam.Flatten()
    all_files = files | "AllFileDescriptors" >> beam.Flatten()
    return (all_files, counts) | "CommitRun" >> CommitRun(
        settings.output, run_id, manifest_base, summaries=list(commit_hooks or []),
        replaces=settings.replaces_runs, lease_owner=settings.lease_owner or run_id, compaction=compaction,
        record_extras=record_extras)


_TAXONOMY: dict[tuple, dict] = {}


def taxonomy_of(path: str) -> dict[str, Any]:
    """``load_taxonomy(path)``, read once per process while the file stays the same (path, size and
    modification time): the chunks of a chunked run would parse the YAML file once each (~0.2 s)."""
    from schemas.config import resolve_config_path

    resolved = resolve_config_path(path)
    stat = os.stat(resolved)
    key = (os.path.abspath(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _TAXONOMY:
        _TAXONOMY.clear()
        _TAXONOMY[key] = load_taxonomy(path)
    return copy.deepcopy(_TAXONOMY[key])  # a caller's change stays its own


def build_file_pipeline(p: beam.Pipeline, settings: RunSettings, run: RunInfo, manifest_base: dict[str, Any]):
    taxonomy = taxonomy_of(settings.topics)
    read = p | "ReadFiles" >> ReadArticleFiles(
        list(settings.inputs), settings.source(), run,
        max_bytes=settings.read["max_bytes"], payload_cap=settings.read["dead_letter_payload_bytes"],
        max_title_chars=settings.read["max_title_chars"])
    read_dead = read[DEAD_LETTER]
    inputs = _count(read["matched"], "MatchedPaths", "inputs", batched=True)  # every matched path, before reading
    return process_items(read["items"], [read_dead], inputs, settings, run, taxonomy, manifest_base)


def start_warm_workers(settings: RunSettings) -> None:
    """Start warming up the worker server of ``--workers N`` (N > 1) on the local runner, or drop it
    (one worker, other runners); idempotent for the same settings (pipeline.runner.warm_workers)."""
    warm_workers({"language": dict(settings.language), "taxonomy": taxonomy_of(settings.topics)}
                 if settings.workers > 1 and settings.runner == IN_PROCESS else None)


def manifest_base(settings: RunSettings, run: RunInfo, workers: int, running_mode: str) -> dict[str, Any]:
    chunk = {"parent_run_id": settings.parent_run_id} if settings.parent_run_id else {}
    return {
        "run_id": run.run_id,
        "status": "running",
        "started_at": run.ingested_at.isoformat(),
        "runner_requested": settings.runner,
        "runner": describe(settings.runner, workers, running_mode),
        "profile": settings.profile,
        "inputs": [display_path(p) for p in settings.inputs],  # names need not be UTF-8
        "feeds_file": settings.feeds_file,
        "output": settings.output,
        "language_detector": settings.language.get("detector"),
        "language_second_opinion": settings.language.get("second_opinion"),
        **chunk,
    }


def check_output(output_root: str) -> None:
    """Fail fast with a clear message when a local output root cannot hold the tables."""
    if "://" in output_root:
        return
    if os.path.exists(output_root) and not os.path.isdir(output_root):
        raise ConfigError(f"output {output_root!r} exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(output_root))
    if not os.path.isdir(output_root) and not os.access(parent if os.path.isdir(parent) else "/", os.W_OK):
        raise ConfigError(f"output {output_root!r} cannot be created: {parent!r} is not writable")


def run_batch(settings: RunSettings, extra_args: list[str] | None = None, now: dt.datetime | None = None,
              build: Callable | None = None, wait: bool = True) -> dict[str, Any]:
    """Build and run the batch pipeline; returns the run manifest.

    With ``wait=False`` (a Flex Template launcher, a scheduler) the job is only
    submitted: the job itself writes the manifest when it commits, and this
    returns the manifest's start fields with ``status: submitted``.
    """
    run = settings.run_info(now)
    workers = settings.workers
    running_mode = running_mode_for(workers, settings.direct_running_mode)
    options = pipeline_options(settings.runner, workers, running_mode, extra_args, settings.beam_options)
    base = manifest_base(settings, run, workers, running_mode)
    LOG.info("run %s on %s", run.run_id, base["runner"])
    check_output(settings.output)
    with writer_lease(settings, run.run_id):
        recovered = recover(settings.output, active=(settings.lease_owner, settings.parent_run_id, run.run_id))
        base["recovered"] = {k: v for k, v in recovered.items() if v}
        # Local worker processes fork from one warm server per run (models loaded once: pipeline/worker.py);
        # it warms up on the other core while this process builds the graph (run_once starts it earlier).
        start_warm_workers(settings)
        pipeline = beam.Pipeline(runner=make_runner(settings.runner), options=options)
        (build or build_file_pipeline)(pipeline, settings, run, base)
        result = pipeline.run()
        if not wait:
            return {**base, "status": "submitted", "pipeline_state": str(result.state)}
        result.wait_until_finish()
        manifest = read_manifest(settings.output, run.run_id)
    if manifest is None:
        raise RuntimeError(f"run {run.run_id} finished without a manifest under {settings.output}/_runs")
    return manifest


def writer_lease(settings: RunSettings, run_id: str):
    """The output root's writer lease for this run: a no-op context when the caller (a chunked run,
    ``watch``) already holds it under ``settings.lease_owner``."""
    import contextlib

    from transforms.lease import WriterLease, held_by

    if settings.lease_owner and held_by(settings.output, settings.lease_owner):
        return contextlib.nullcontext()
    return WriterLease(settings.output, run_id, wait_seconds=settings.wait_lock_seconds)
