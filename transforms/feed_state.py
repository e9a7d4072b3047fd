"""Feeds, step 3: per-feed state kept between runs, and the feed_status rows.

State (validators, body hash, consecutive failures, next attempt time) lives
in ``<output>/_state/feeds/<key>.json``, one JSON file per feed URL, read and
written through Beam's FileSystems so ``gs://`` outputs work. A run stages
its new state in its staging folder (``<output>/_staging/<run_id>/_state/feeds/``);
the commit protocol (transforms/commit.py) moves it into place together with
the run's articles, after the run's commit point, so a run that did not commit
leaves the old state and the next run simply fetches again, and a committed
run's state is never lost. :class:`FeedStateSummary` (a CommitRun summary)
counts the outcomes for the manifest.

Transform: :class:`StageFeedState` writes the pending state of each feed and
passes its feed_status row on (so the commit waits for the state to be staged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.common import stable_hash
from transforms.storage import join, read_text, write_text_atomically

STATE_DIR = ("_state", "feeds")
PENDING = "_pending"
OUTCOMES = ("ok", "not_modified", "unchanged", "failed", "skipped_backoff", "dead_letter")


def state_key(url: str) -> str:
    return stable_hash("feed:" + url)[:20]


def state_path(output_root: str, url: str) -> str:
    return join(output_root, *STATE_DIR, f"{state_key(url)}.json")


def pending_dir(staging_root: str) -> str:
    """Where a run stages its feeds' next state: the state folder under its staging root."""
    return join(staging_root, *STATE_DIR)


def load_state(output_root: str, url: str) -> dict[str, Any] | None:
    """The committed state of the feed at ``url``, or None (never fetched, or unreadable)."""
    try:
        text = read_text(state_path(output_root, url))
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def load_states(output_root: str, feeds: Iterable[Mapping[str, Any]]) -> list[tuple[dict, dict | None]]:
    """``(feed, state)`` for each feed, in the feeds file's order."""
    return [(dict(feed), load_state(output_root, feed["url"])) for feed in feeds]


class _StageFn(beam.DoFn):
    def __init__(self, output_root: str, run_id: str):
        self._root = output_root
        self._run_id = run_id

    def process(self, element: Mapping[str, Any]) -> Iterable[dict]:
        status, state = element["status"], dict(element["state"] or {})
        state["last_outcome"] = status["outcome"]
        path = join(pending_dir(self._root), f"{state_key(status['url'])}.json")
        write_text_atomically(path, json.dumps(state, sort_keys=True, default=str), point="feed_state")
        yield status


class StageFeedState(beam.PTransform):
    """``{'status', 'state'}`` elements -> feed_status rows, after staging each feed's next state."""

    def __init__(self, output_root: str, run_id: str):
        super().__init__()
        self._fn = _StageFn(output_root, run_id)

    def expand(self, statuses):
        return statuses | beam.ParDo(self._fn)


class FeedStateSummary:
    """CommitRun summary: the outcomes of this run's feeds (from their staged state) for the manifest."""

    def __call__(self, files=None, counts=None) -> dict[str, Any]:
        outcomes = {name: 0 for name in OUTCOMES}
        staged = [f for f in files or [] if f.get("table") == "feed_state"]
        for entry in staged:
            state = json.loads(read_text(entry["staged"]) or "{}")
            outcome = state.get("last_outcome") or "failed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        new_articles = sum(r.get("rows", 0) for r in files or [] if r.get("table") == "articles")
        return {"feeds": {"count": len(staged), "outcomes": outcomes, "articles_written": new_articles}}
