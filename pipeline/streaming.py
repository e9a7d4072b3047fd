"""Assembly of the streaming pipeline.

    source (poll feeds on a PeriodicImpulse; TestStream in tests)
      -> normalize (ingested_at = poll time)
      -> dedup with keyed state (article_id, then content_hash; TTL timer)
      -> event time (published_at) -> fixed windows, allowed lateness, late panes
      -> language -> topics
      -> Parquet per window and pane (articles, duplicates, errors, feed_status), staged
      -> one commit per window firing (transforms/streaming.py CommitFirings)

The source is pluggable: any PTransform from the pipeline root to
``{'items': ..., 'dead_letter': ...}`` (optionally ``'status'``: feed_status
rows) whose items are parsed items (the
dicts the feed and file readers produce) timestamped with the time of the poll
that found them, in the global window.

Where it runs: Dataflow (streaming engine) and Prism stream for real. The
in-process DirectRunner (FnApiRunner) runs the graph as a bounded job: with a
``duration`` the impulse stops, and every window fires at the end.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

import apache_beam as beam
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from pipeline.config import ConfigError
from pipeline.runner import IN_PROCESS, describe, make_runner, pipeline_options, running_mode_for
from pipeline.settings import RunSettings
from schemas import ARTICLES, DEAD_LETTERS, DUPLICATES, FEED_STATUS
from transforms.common import DEAD_LETTER, stable_hash
from transforms.dedupe import DUPLICATE
from transforms.feed_poll import PollFeedsOnTicks
from transforms.feeds import STATUS
from transforms.language import DetectLanguage
from transforms.commit import recover, stream_staging_root
from transforms.dedup_index import published_segments, window_cutoff
from transforms.streaming import (AssignEventTime, CommitFirings, DedupStream, NormalizeAtIngestion,
                                  WriteWindowedIndex, WriteWindowedTable, attempt_id, event_time_windows)
from transforms.topics import LabelTopics, load_taxonomy

LOG = logging.getLogger(__name__)

STREAM_KEYS = ("poll_interval_seconds", "window_seconds", "allowed_lateness_seconds", "dedup_ttl_seconds")


def stream_params(settings: RunSettings) -> dict[str, int]:
    """The profile's ``stream`` section, complete (every key is required)."""
    missing = [k for k in STREAM_KEYS if k not in settings.stream]
    if missing:
        raise ConfigError(f"profile {settings.profile!r}: stream section lacks {missing}")
    return {k: int(settings.stream[k]) for k in STREAM_KEYS}


def stream_run_id(settings: RunSettings) -> str:
    """``--run-id`` if given, else derived from the feeds file: a restarted stream writes the same names."""
    return settings.run_id or f"stream-{stable_hash(str(settings.feeds_file))[:12]}"


def build_stream_pipeline(p: beam.Pipeline, settings: RunSettings, run_id: str, source: beam.PTransform,
                          manifest_base: dict[str, Any] | None = None, started: dt.datetime | None = None):
    """Add the streaming graph to ``p``; returns the PCollection of the firings' manifests (each
    lists the files it committed). ``started``: when this attempt of the stream was launched (its
    file names and firing ids carry it; default now)."""
    started = started or dt.datetime.now(dt.timezone.utc)
    writer_id = attempt_id(run_id, started)
    params = stream_params(settings)
    taxonomy = load_taxonomy(settings.topics)
    lateness = params["allowed_lateness_seconds"]
    windows = lambda: event_time_windows(params["window_seconds"], lateness)  # noqa: E731

    polled = p | "Source" >> source
    normalized = polled["items"] | "Normalize" >> NormalizeAtIngestion(
        run_id, settings.read["min_body_chars"], settings.read["dead_letter_payload_bytes"],
        settings.feeds.get("allow_future_minutes", 0), minhash=settings.dedup)
    # First against the archive's index as published now (earlier attempts, batch runs), then keyed state.
    window_days = settings.dedup.get("window_days")
    deduped = normalized["articles"] | "Dedupe" >> DedupStream(
        params["dedup_ttl_seconds"], published_segments(settings.output), window_cutoff(started, window_days))
    articles = (
        deduped["articles"]
        | "ArticleEventTime" >> AssignEventTime(lateness)
        | "ArticleWindows" >> windows()
        | "Language" >> DetectLanguage(settings.language)
        | "Topics" >> LabelTopics(taxonomy)
    )
    duplicates = (
        deduped[DUPLICATE]
        | "DuplicateEventTime" >> AssignEventTime(lateness)
        | "DuplicateWindows" >> windows()
    )
    # Dead letters have no publication time: they stay at the time of the poll that found them.
    dead = (
        (polled[DEAD_LETTER], normalized[DEAD_LETTER])
        | "AllDeadLetters" >> beam.Flatten()
        | "DeadLetterWindows" >> windows()
    )
    write = settings.write
    staged = stream_staging_root(settings.output, run_id)  # published by each firing's commit
    files = (
        articles | "WriteArticles" >> WriteWindowedTable(
            ARTICLES, staged, writer_id, shards=write["shards"], rows_per_file=write["rows_per_file"]),
        duplicates | "WriteDuplicates" >> WriteWindowedTable(
            DUPLICATES, staged, writer_id, rows_per_file=write["rows_per_file"]),
        dead | "WriteDeadLetters" >> WriteWindowedTable(
            DEAD_LETTERS, staged, writer_id, rows_per_file=write["rows_per_file"], shard_key="origin"),
        articles | "WriteIndexRows" >> WriteWindowedIndex(staged, writer_id),
    )
    if STATUS in polled:  # feed_status rows of each poll, windowed by poll time
        statuses = polled[STATUS] | "StatusWindows" >> windows()
        files += (statuses | "WriteFeedStatus" >> WriteWindowedTable(
            FEED_STATUS, staged, writer_id, rows_per_file=write["rows_per_file"]),)
    files = files | "AllFiles" >> beam.Flatten()
    base = {"runner_requested": settings.runner, "profile": settings.profile, "inputs": [],
            "feeds_file": settings.feeds_file, "output": settings.output,
            "language_detector": settings.language.get("detector"),
            "language_second_opinion": settings.language.get("second_opinion"), **(manifest_base or {})}
    compaction = {"now": started.isoformat(), "window_days": window_days,
                  "after_segments": settings.dedup["compact_after_segments"]}
    committed = files | "CommitFirings" >> CommitFirings(settings.output, run_id, writer_id, base, compaction)
    committed | "LogFirings" >> beam.Map(lambda m: LOG.info(
        "committed %s: %s rows in %s files (%s)", m["run_id"], m["counters"]["inputs"], len(m["files"]),
        m["firing_timing"]))
    return committed


class PollFeeds(beam.PTransform):
    """Fetch every feed of the settings' feeds file on each tick of a PeriodicImpulse.

    Returns ``{'items', 'dead_letter', 'status'}``; everything carries the
    tick's timestamp (the poll time). ``stop`` (epoch seconds) ends the
    impulse; None polls forever.
    """

    def __init__(self, settings: RunSettings, run_id: str, interval_seconds: int, start: float,
                 stop: float | None):
        super().__init__()
        from pipeline.feeds_config import fetch_settings, load_feeds, page_settings
        from transforms.common import RunInfo
        from transforms.page import FetchPages

        config = load_feeds(settings.feeds_file)
        self._poll = PollFeedsOnTicks(config.feeds, fetch_settings(settings.feeds, config, settings.profile),
                                      config.policy, run_id, settings.read["dead_letter_payload_bytes"])
        self._pages = FetchPages(page_settings(settings.feeds, config), config.policy,
                                 RunInfo(run_id=run_id, ingested_at=dt.datetime.fromtimestamp(start, dt.timezone.utc)),
                                 settings.read["dead_letter_payload_bytes"], None, config.no_full_text, streaming=True)
        self._interval = interval_seconds
        self._start = start
        self._stop = stop

    def expand(self, pbegin):
        ticks = pbegin | "Every" >> PeriodicImpulse(
            start_timestamp=self._start,
            stop_timestamp=self._stop if self._stop is not None else MAX_TIMESTAMP,
            fire_interval=self._interval)
        polled = ticks | "FetchFeeds" >> self._poll
        pages = polled["items"] | "FetchPages" >> self._pages  # full text (transforms/page.py)
        dead = (polled[DEAD_LETTER], pages[DEAD_LETTER]) | "PollDeadLetters" >> beam.Flatten()
        return {**polled, "items": pages["items"], DEAD_LETTER: dead}


def streaming_options(settings: RunSettings, extra_args: list[str] | None, bounded: bool):
    workers = settings.workers
    mode = running_mode_for(workers, settings.direct_running_mode)
    options = pipeline_options(settings.runner, workers, mode, extra_args, settings.beam_options,
                               streaming=not bounded)
    return options, describe(settings.runner, workers, mode)


def run_stream(settings: RunSettings, extra_args: list[str] | None = None, duration_seconds: float | None = None,
               source_factory: Callable[..., beam.PTransform] | None = None, now: dt.datetime | None = None,
               wait: bool = True) -> dict[str, Any]:
    """Start the streaming pipeline; with ``duration_seconds`` the feeds are polled for that long only.

    The in-process DirectRunner cannot stream: it needs ``duration_seconds``
    (then it runs as a bounded job and writes when the polls are done).
    """
    if not settings.feeds_file and source_factory is None:
        raise ConfigError("stream needs --feeds FILE (the feeds to poll)")
    bounded = duration_seconds is not None
    if settings.runner == IN_PROCESS and not bounded:
        raise ConfigError(
            "the in-process DirectRunner cannot run an unbounded stream: give --duration SECONDS (a bounded run "
            "that writes when it ends), or stream with --runner PrismRunner --prism_location PATH_OR_URL, "
            "or --runner DataflowRunner (--profile dataflow-streaming)")
    params = stream_params(settings)
    run_id = stream_run_id(settings)
    start = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
    stop = start + duration_seconds if bounded else None
    options, runner_name = streaming_options(settings, extra_args, bounded)
    source = (source_factory or PollFeeds)(settings, run_id, params["poll_interval_seconds"], start, stop)
    LOG.info("stream %s on %s, polling every %ss", run_id, runner_name, params["poll_interval_seconds"])
    import contextlib

    from transforms.lease import WriterLease

    # A stream that runs here holds the output's writer lease while it runs (a batch run or another
    # stream waits or exits); a submitted job (--no-wait) runs elsewhere and cannot hold it.
    lease = (WriterLease(settings.output, run_id, wait_seconds=settings.wait_lock_seconds) if wait
             else contextlib.nullcontext())
    with lease:
        if wait:
            from pipeline.launch import check_layout

            check_layout(settings.output)
            # finish committed firings of an earlier attempt, drop its uncommitted window files
            recover(settings.output, active=(run_id,), streams=(run_id,))
        pipeline = beam.Pipeline(runner=make_runner(settings.runner), options=options)
        started = dt.datetime.fromtimestamp(start, dt.timezone.utc)
        build_stream_pipeline(pipeline, settings, run_id, source,
                              {"runner": runner_name, "started_at": started.isoformat()}, started)
        result = pipeline.run()
        if wait:
            result.wait_until_finish()
            recover(settings.output, active=(run_id,), streams=(run_id,))  # empty staging folders
    return {"run_id": run_id, "runner": runner_name, "state": str(result.state), "output": settings.output,
            "stream": params, "feeds_file": settings.feeds_file}
