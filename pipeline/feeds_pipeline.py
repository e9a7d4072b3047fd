"""Assembly of a batch run over feeds (and files, when both are given).

feeds file -> (feed, state) -> FetchFeeds -> ParseFeeds -> items -> FetchPages
(each item's article page, transforms/page.py) -> the shared article flow
(pipeline.batch.process_items); feed_status rows are written as an extra table
and the feeds' next state and the page cache are committed by CommitRun hooks.

Counting: each feed entry is one input, and so is each feed that becomes a
dead letter; a feed that fails to fetch, is not modified or is unchanged adds
no input (it is recorded in feed_status). So inputs = articles + duplicates +
dead_letters holds.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from pipeline.batch import _count, process_items
from pipeline.feeds_config import FeedsConfig, fetch_settings, load_feeds, page_settings
from pipeline.settings import RunSettings
from schemas import FEED_STATUS
from transforms.common import DEAD_LETTER, RunInfo
from transforms.commit import staging_root
from transforms.feed_state import FeedStateSummary, StageFeedState, load_states
from transforms.feeds import STATUS, ParseFeeds
from transforms.fetch import FetchFeeds
from transforms.page import FetchPages, PageCacheSummary
from transforms.read import ReadArticleFiles
from transforms.topics import load_taxonomy
from transforms.write import WriteTable


class FeedSource(beam.PTransform):
    """Fetch and parse every feed of ``config``; returns ``{'items', 'dead_letter', 'inputs', 'files'}``.

    ``inputs`` holds ``('inputs', 1)`` per entry item and per dead-lettered
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
        staged = staging_root(settings.output, run.run_id)
        statuses = parsed[STATUS] | "StageFeedState" >> StageFeedState(staged, run.run_id)
        status_files = statuses | "WriteFeedStatus" >> WriteTable(
            FEED_STATUS, staged, run.run_id, shards=1, rows_per_file=settings.write["rows_per_file"])
        pages = parsed["items"] | "FetchPages" >> FetchPages(
            page_settings(settings.feeds, self._config), self._config.policy, run,
            settings.read["dead_letter_payload_bytes"], settings.output, self._config.no_full_text,
            stage_root=staged)
        inputs = (
            _count(parsed["items"], "FeedItems", "inputs"),
            _count(parsed[DEAD_LETTER], "FeedFailures", "inputs"),
            _count(pages[DEAD_LETTER], "PageFailures", "inputs"),
        ) | "FeedInputCounts" >> beam.Flatten()
        dead = (parsed[DEAD_LETTER], pages[DEAD_LETTER]) | "FeedDeadLetters" >> beam.Flatten()
        return {"items": pages["items"], DEAD_LETTER: dead, "inputs": inputs, "files": status_files}


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
