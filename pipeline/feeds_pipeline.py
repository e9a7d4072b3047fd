"""Assembly of a batch run over feeds (and files, when both are given).

feeds file -> (feed, state) -> FetchFeeds -> ParseFeeds -> items -> FetchPages
(each item's article page, transforms/page.py) -> the shared article flow
(pipeline.batch.process_items); feed_status rows are written as an extra table
and the feeds' next state and the page cache are committed by CommitRun hooks.

On a local runner, a feeds-only run is fetched and parsed by the launcher instead
(:func:`fetch_to_spool`, the same cores as the Beam steps), spooled to local files and run as
committed chunks of at most ``feeds.max_items_per_run`` items (pipeline/chunking.py
``run_feeds``, :func:`build_chunk_pipeline`); the feeds' state and feed_status rows are committed
with the last chunk only.

Counting: each feed entry is one input, and so is each feed that becomes a
dead letter; a feed that fails to fetch, is not modified or is unchanged adds
no input (it is recorded in feed_status). So inputs = articles + duplicates +
dead_letters holds.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from typing import Any

import apache_beam as beam

from pipeline.batch import _count, process_items
from pipeline.feeds_config import FeedsConfig, fetch_settings, load_feeds, page_settings
from pipeline.settings import RunSettings
from schemas import FEED_STATUS
from transforms.common import DEAD_LETTER, RunInfo
from transforms import storage
from transforms.commit import staging_root
from transforms.feed_state import FeedStateSummary, StageFeedState, load_states
from transforms.feeds import STATUS, ParseFeeds, feed_to_outputs
from transforms.fetch import FetchFeeds
from transforms.page import FetchPages, PageCacheSummary
from transforms.read import ReadArticleFiles
from transforms.topics import load_taxonomy
from transforms.write import WriteTable


def feed_outputs(items, feed_dead, statuses, settings: RunSettings, config: FeedsConfig, run: RunInfo) -> dict:
    """Parsed feed items, the feeds' own dead letters and (when not None) their ``{'status', 'state'}``
    elements -> ``{'items', 'dead_letter', 'inputs', 'files'}``: each item's page fetched
    (transforms/page.py, the run's page-cache segment staged), the feeds' next state and feed_status
    rows staged. Shared by the one-graph feed run and the chunks of a chunked one."""
    staged = staging_root(settings.output, run.run_id)
    files = []
    if statuses is not None:
        staged_statuses = statuses | "StageFeedState" >> StageFeedState(staged, run.run_id)
        files.append(staged_statuses | "WriteFeedStatus" >> WriteTable(
            FEED_STATUS, staged, run.run_id, shards=1, rows_per_file=settings.write["rows_per_file"]))
    pages = items | "FetchPages" >> FetchPages(
        page_settings(settings.feeds, config), config.policy, run,
        settings.read["dead_letter_payload_bytes"], settings.output, config.no_full_text,
        stage_root=staged)
    inputs = (
        _count(items, "FeedItems", "inputs"),
        _count(feed_dead, "FeedFailures", "inputs"),
        _count(pages[DEAD_LETTER], "PageFailures", "inputs"),
    ) | "FeedInputCounts" >> beam.Flatten()
    dead = (feed_dead, pages[DEAD_LETTER]) | "FeedDeadLetters" >> beam.Flatten()
    return {"items": pages["items"], DEAD_LETTER: dead, "inputs": inputs, "files": files}


class FeedSource(beam.PTransform):
    """Fetch and parse every feed of ``config``; returns ``{'items', 'dead_letter', 'inputs', 'files'}``.

    ``inputs`` holds ``('inputs', n)`` pairs counting each entry item and each dead-lettered
    feed; ``files`` the descriptors of the feed_status files.
    """

    def __init__(self, config: FeedsConfig, settings: RunSettings, run: RunInfo):
        super().__init__()
        self._config = config
        self._settings = settings
        self._run = run

    def expand(self, pbegin):
        settings, run = self._settings, self._run
        fetch = fetch_settings(settings.feeds, self._config, settings.profile)
        feeds_and_states = load_states(settings.output, self._config.feeds)
        fetched = (pbegin
                   | "FeedList" >> beam.Create(feeds_and_states)
                   | "FetchFeeds" >> FetchFeeds(fetch, self._config.policy, run.run_id, run.ingested_at))
        parsed = fetched | "ParseFeeds" >> ParseFeeds(run, settings.read["dead_letter_payload_bytes"])
        out = feed_outputs(parsed["items"], parsed[DEAD_LETTER], parsed[STATUS], settings, self._config, run)
        return {**out, "files": out["files"][0]}


# -- chunked feed runs (local runners, pipeline/chunking.py run_feeds) ---------------------------

@dataclasses.dataclass(frozen=True)
class SpooledChunk:
    """One chunk of a spooled feed fetch: a file of pickled records (``('item', item)`` or
    ``('dead_letter', letter)``), how many of each, and whether it is the last (the one that
    commits the feeds' state and feed_status rows)."""

    path: str
    items: int
    dead_letters: int
    last: bool

    @property
    def inputs(self) -> int:
        return self.items + self.dead_letters


class FeedSpool:
    """Parsed feed records spooled to local files of at most ``size`` items each, in feed order.

    The feeds' own dead letters (a feed with no usable entry) are held back and go into the last
    chunk, with the feeds' next state and status rows: a run killed between chunks then leaves no
    trace of a feed's outcome (its state is not advanced, the next run fetches it again), and the
    items of the chunks that did commit come out as duplicates. The last chunk may therefore hold
    ``size`` items plus one dead letter per failed feed.
    """

    def __init__(self, folder: str, size: int):
        self.folder = folder
        self.size = max(1, size)
        self.statuses: list[dict] = []
        self._chunks: list[list] = []     # [path, items]
        self._handle = None
        self._letters_path = os.path.join(folder, "dead-letters.pickle")
        self._letters = open(self._letters_path, "wb")
        self._letter_count = 0

    def _new_chunk(self) -> None:
        if self._handle is not None:
            self._handle.close()
            storage.fault_point("spool")
        path = os.path.join(self.folder, f"chunk-{len(self._chunks) + 1:04d}.pickle")
        self._handle = open(path, "wb")
        self._chunks.append([path, 0])

    def add_item(self, item: dict) -> None:
        if not self._chunks or self._chunks[-1][1] >= self.size:
            self._new_chunk()
        pickle.dump(("item", item), self._handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._chunks[-1][1] += 1

    def add_dead_letter(self, letter: dict) -> None:
        pickle.dump(("dead_letter", letter), self._letters, protocol=pickle.HIGHEST_PROTOCOL)
        self._letter_count += 1

    def add_status(self, status: dict, state: dict | None) -> None:
        self.statuses.append({"status": status, "state": state})

    def close(self) -> list[SpooledChunk]:
        """Finish the files; the held-back dead letters are appended to the last chunk."""
        if not self._chunks:
            self._new_chunk()
        self._letters.close()
        with open(self._letters_path, "rb") as letters:
            shutil.copyfileobj(letters, self._handle)
        self._handle.close()
        self._handle = None
        os.remove(self._letters_path)
        storage.fault_point("spool")
        count = len(self._chunks)
        return [SpooledChunk(path, items, self._letter_count if n == count else 0, n == count)
                for n, (path, items) in enumerate(self._chunks, start=1)]


def restamp(record: dict, run: RunInfo) -> dict:
    """A dead letter or feed_status row made by the launcher, stamped with the run that commits it."""
    return {**record, "run_id": run.run_id}


def fetch_to_spool(settings: RunSettings, config: FeedsConfig, run: RunInfo, spool: FeedSpool) -> list[SpooledChunk]:
    """Fetch and parse every feed in this process, one feed at a time, with the same cores the Beam
    steps use (:func:`transforms.fetch.fetch_or_fail`, :func:`transforms.feeds.feed_to_outputs`),
    and spool the results; returns the chunks. Memory holds one feed's body and items at a time."""
    from transforms.dates import name_tables
    from transforms.fetch import fetch_or_fail, make_client

    fetch = fetch_settings(settings.feeds, config, settings.profile)
    payload_cap = settings.read["dead_letter_payload_bytes"]
    name_tables()
    client = make_client(fetch)
    try:
        for feed, state in load_states(settings.output, config.feeds):
            fetched = fetch_or_fail(client, feed, state, fetch, config.policy, run.ingested_at, run.run_id)
            items, letter, status = feed_to_outputs(fetched, run, payload_cap)
            spool.add_status(status, fetched.get("state"))
            del fetched  # the body
            for item in items:
                spool.add_item(item)
            del items
            if letter is not None:
                spool.add_dead_letter(letter)
    finally:
        client.close()
    return spool.close()


class _ReadSpoolFn(beam.DoFn):
    def __init__(self, run: RunInfo):
        self._run = run

    def process(self, path: str):
        with open(path, "rb") as handle:
            while True:
                try:
                    kind, record = pickle.load(handle)
                except EOFError:
                    return
                if kind == "item":
                    yield record
                else:
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER, restamp(record, self._run))


def build_chunk_pipeline(p: beam.Pipeline, settings: RunSettings, run: RunInfo, manifest_base: dict[str, Any],
                         config: FeedsConfig, chunk: SpooledChunk, statuses: list[dict] | None):
    """One chunk of a chunked feed run: its spooled items and dead letters through page fetching and
    the shared article flow; the last chunk also stages the feeds' state and feed_status rows."""
    taxonomy = load_taxonomy(settings.topics)
    read = (p
            | "SpoolFile" >> beam.Create([chunk.path])
            | "ReadSpool" >> beam.ParDo(_ReadSpoolFn(run)).with_outputs(DEAD_LETTER, main="items"))
    status_elements = None
    if statuses is not None:
        status_elements = p | "FeedStatuses" >> beam.Create(
            [{"status": restamp(s["status"], run), "state": s["state"]} for s in statuses])
    hooks = [FeedStateSummary(), PageCacheSummary()]  # no feed state staged: 0 feeds, the articles written
    feeds = feed_outputs(read.items, read[DEAD_LETTER], status_elements, settings, config, run)
    record_extras = {"page_cache": {"cache_days": page_settings(settings.feeds, config).cache_days,
                                    "now": run.ingested_at.isoformat()}}
    return process_items(feeds["items"], [feeds[DEAD_LETTER]], feeds["inputs"], settings, run, taxonomy,
                         manifest_base, extra_files=feeds["files"], commit_hooks=hooks,
                         record_extras=record_extras)


def build_pipeline(p: beam.Pipeline, settings: RunSettings, run: RunInfo, manifest_base: dict[str, Any],
                   config: FeedsConfig | None = None):
    """Files (``settings.inputs``) and/or feeds (``settings.feeds_file``) through one shared article flow."""
    taxonomy = load_taxonomy(settings.topics)
    items, dead, inputs, extra_files, hooks = [], [], [], [], []
    if settings.inputs:
        read = p | "ReadFiles" >> ReadArticleFiles(
            list(settings.inputs), settings.source(), run,
            max_bytes=settings.read["max_bytes"], payload_cap=settings.read["dead_letter_payload_bytes"],
            max_title_chars=settings.read["max_title_chars"])
        items.append(read["items"])
        dead.append(read[DEAD_LETTER])
        inputs += [_count(read["items"], "ReadItems", "inputs"), _count(read[DEAD_LETTER], "ReadFailures", "inputs")]
    if settings.feeds_file:
        config = config or load_feeds(settings.feeds_file)
        feeds = p | "Feeds" >> FeedSource(config, settings, run)
        items.append(feeds["items"])
        dead.append(feeds[DEAD_LETTER])
        inputs.append(feeds["inputs"])
        extra_files.append(feeds["files"])
        hooks.append(FeedStateSummary())
        hooks.append(PageCacheSummary())
    all_items = items | "AllItems" >> beam.Flatten()
    all_inputs = inputs | "InputCounts" >> beam.Flatten()
    record_extras = {}
    if settings.feeds_file:
        record_extras["page_cache"] = {"cache_days": page_settings(settings.feeds, config).cache_days,
                                       "now": run.ingested_at.isoformat()}
    return process_items(all_items, dead, all_inputs, settings, run, taxonomy, manifest_base,
                         extra_files=extra_files, commit_hooks=hooks, record_extras=record_extras)
