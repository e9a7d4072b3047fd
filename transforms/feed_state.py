"""Feeds, step 3: per-feed state kept between runs, and the feed_status rows.

State (validators, body hash, consecutive failures, next attempt time) lives
in ``<output>/_state/feeds/<key>.json``, one JSON file per feed URL, read and
written through Beam's FileSystems so ``gs://`` outputs work. A run stages
its new state under ``_state/feeds/_pending/<run_id>/`` while it fetches;
:class:`CommitFeedState` (a CommitRun hook) moves it into place only after
every file of the run is written, so a crashed run leaves the old state and
the next run simply fetches again.

Transform: :class:`StageFeedState` writes the pending state of each feed and
passes its feed_status row on (so the commit waits for the state to be staged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.commit import read_text, write_text_atomically
from transforms.common import stable_hash
from transforms.write import join

STATE_DIR = ("_state", "feeds")
PENDING = "_pending"
OUTCOMES = ("ok", "not_modified", "unchanged", "failed", "skipped_backoff", "dead_letter")


def state_key(url: str) -> str:
    return stable_hash("feed:" + url)[:20]


def state_path(output_root: str, url: str) -> str:
    return join(output_root, *STATE_DIR, f"{state_key(url)}.json")


def pending_dir(output_root: str, run_id: str) -> str:
    return join(output_root, *STATE_DIR, PENDING, run_id)


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
        path = join(pending_dir(self._root, self._run_id), f"{state_key(status['url'])}.json")
        write_text_atomically(path, json.dumps(state, sort_keys=True, default=str))
        yield status


class StageFeedState(beam.PTransform):
    """``{'status', 'state'}`` elements -> feed_status rows, after staging each feed's next state."""

    def __init__(self, output_root: str, run_id: str):
        super().__init__()
        self._fn = _StageFn(output_root, run_id)

    def expand(self, statuses):
        return statuses | beam.ParDo(self._fn)


class CommitFeedState:
    """CommitRun hook: move this run's staged feed state into place; adds ``feeds`` to the manifest."""

    def __init__(self, output_root: str, run_id: str):
        self._root = output_root
        self._run_id = run_id

    def __call__(self, files=None, counts=None) -> dict[str, Any]:
        staged_dir = pending_dir(self._root, self._run_id)
        matches = FileSystems.match([join(staged_dir, "*.json")])[0].metadata_list
        outcomes = {name: 0 for name in OUTCOMES}
        for meta in sorted(matches, key=lambda m: m.path):
            state = json.loads(read_text(meta.path) or "{}")
            outcome = state.get("last_outcome") or "failed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            target = join(self._root, *STATE_DIR, FileSystems.split(meta.path)[1])
            if FileSystems.exists(target):
                FileSystems.delete([target])
            FileSystems.rename([meta.path], [target])
        # State staged by runs that never committed (crashed) is stale: one writer per output root.
        leftovers = FileSystems.match([join(self._root, *STATE_DIR, PENDING, "*", "*.json")])[0].metadata_list
        if leftovers:
            FileSystems.delete([m.path for m in leftovers])
        for folder in {staged_dir} | {FileSystems.split(m.path)[0] for m in leftovers}:
            try:
                if FileSystems.exists(folder):
                    FileSystems.delete([folder])
            except OSError:  # object stores have no directories to delete (BeamIOError is an OSError)
                continue
        new_articles = sum(r.get("rows", 0) for r in files or [] if r.get("table") == "articles")
        return {"feeds": {"count": len(matches), "outcomes": outcomes, "articles_written": new_articles}}
