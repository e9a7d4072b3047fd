"""Polling feeds in a stream: every tick fetches every feed, with per-feed keyed state.

The batch run keeps a feed's validators (ETag, Last-Modified), body hash and
backoff in files under ``_state/feeds``; a stream keeps the same dict in Beam
keyed state (key = feed URL), so conditional GETs, "unchanged body" skips and
backoff after failures work from one poll to the next without any files.

Cores come from the feeds modules: :func:`transforms.fetch.fetch_feed` and
:func:`transforms.feeds.feed_to_outputs`. Transform: :class:`PollFeedsOnTicks`
turns ticks (timestamped poll times, global window) into
``{'items', 'dead_letter', 'status'}``; every output carries its tick's
timestamp. The HTTP client is built in ``DoFn.setup``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.common import DEAD_LETTER, RunInfo
from transforms.feeds import STATUS, feed_to_outputs, status_row
from transforms.fetch import FetchSettings, NetworkPolicy, empty_state, fetch_feed, make_client
from transforms.streaming import to_datetime


class _PollFeedFn(beam.DoFn):
    STATE = ReadModifyWriteStateSpec("feed_state", PickleCoder())

    def __init__(self, settings: FetchSettings, policy: NetworkPolicy, run_id: str, payload_cap: int):
        self._settings = settings
        self._policy = policy
        self._run_id = run_id
        self._payload_cap = payload_cap
        self._client = None

    def setup(self):
        self._client = make_client(self._settings)

    def process(self, keyed: tuple[str, Mapping[str, Any]], timestamp=beam.DoFn.TimestampParam,
                state=beam.DoFn.StateParam(STATE)) -> Iterable[Any]:
        _, feed = keyed
        now = to_datetime(timestamp).replace(microsecond=0)
        run = RunInfo(run_id=self._run_id, ingested_at=now)
        previous = state.read() or empty_state(feed)
        try:
            fetched = fetch_feed(self._client, feed, previous, self._settings, self._policy, now, self._run_id)
            items, letter, status = feed_to_outputs(fetched, run, self._payload_cap)
        except Exception as err:  # a bug or an exotic failure costs one poll of one feed, not the stream
            fetched = {"feed": feed["name"], "url": feed["url"], "final_url": None, "http_status": None,
                       "outcome": "failed", "error": f"internal: {type(err).__name__}: {err}", "bytes": 0,
                       "latency_ms": None, "fetched_at": now, "state": previous}
            items, letter = [], None
            status = status_row(fetched, run)
        state.write(fetched.get("state") or previous)
        yield from items
        if letter is not None:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)
        yield beam.pvalue.TaggedOutput(STATUS, status)

    def teardown(self):
        if self._client is not None:
            self._client.close()


class PollFeedsOnTicks(beam.PTransform):
    """Ticks -> ``{'items', 'dead_letter', 'status'}``: each tick fetches every feed once.

    ``feeds`` are the enabled feeds (``{'name', 'url', 'language'}``). Items
    are parsed items like the batch feed reader's; ``status`` holds one
    feed_status row per feed and tick.
    """

    def __init__(self, feeds: Iterable[Mapping[str, Any]], settings: FetchSettings, policy: NetworkPolicy,
                 run_id: str, payload_cap: int):
        super().__init__()
        self._feeds = [dict(f) for f in feeds]
        self._fn = _PollFeedFn(settings, policy, run_id, payload_cap)

    def expand(self, ticks):
        feeds = self._feeds
        results = (
            ticks
            | "EveryFeed" >> beam.FlatMap(lambda _: [(f["url"], f) for f in feeds]).with_output_types(
                tuple[str, dict])
            | "Poll" >> beam.ParDo(self._fn).with_outputs(DEAD_LETTER, STATUS, main="items")
        )
        return {"items": results.items, DEAD_LETTER: results[DEAD_LETTER], STATUS: results[STATUS]}
