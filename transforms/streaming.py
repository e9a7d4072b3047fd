"""Streaming steps: ingestion-time normalize, keyed-state dedup, event time, per-pane Parquet.

In the streaming graph an element's timestamp starts as the time of the poll
that found it (ingestion time) and becomes its publication time (event time)
only after deduplication, so that dedup expiry is measured from first sight.

Cores:
  * ``event_time`` - the event timestamp of an article: ``published_at``
    clamped into ``[poll - allowed_lateness, poll]``. An item published longer
    ago than the allowed lateness would be dropped by the window as too late;
    clamped, it lands in the oldest window still open (its ``published_date``
    partition still comes from ``published_at``). Future dates are clamped to
    the poll time. No item is ever dropped for lateness.
  * ``pane_descriptor`` - what the manifest of a firing records.

Transforms:
  * :class:`NormalizeAtIngestion` - ``to_article`` with ``ingested_at`` = the
    element's (poll) timestamp; empty items become dead letters.
  * :class:`DedupFirstSeen` - keeps the first article per key (``article_id``
    or ``content_hash``) in keyed state, across windows and polls; later copies
    become duplicates-table rows. An event-time timer clears the key
    ``ttl_seconds`` after first sight (like Beam's ``DeduplicatePerKey``, but
    duplicates are emitted, not dropped, so the counts still balance).
  * :class:`AssignEventTime` and :func:`event_time_windows` - event time, fixed windows, late panes.
  * :class:`WriteWindowedTable` - one Parquet file per partition, shard, window and pane.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.transforms import trigger, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import PaneInfoTiming

from schemas import Table
from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.dedupe import DUPLICATE, duplicate_record
from transforms.normalize import EmptyArticleError, to_article
from transforms.write import WriteTable, join, sort_key, window_file_name, write_parquet_file


# -- cores --------------------------------------------------------------------

def event_time(published_at: dt.datetime | None, poll_time: float, allowed_lateness_seconds: float) -> float:
    """Event timestamp (seconds since epoch) for an article found by the poll at ``poll_time``."""
    if published_at is None:
        return poll_time
    return min(max(published_at.timestamp(), poll_time - allowed_lateness_seconds), poll_time)


def to_datetime(timestamp: Timestamp) -> dt.datetime:
    return timestamp.to_utc_datetime(has_tz=True)


def pane_descriptor(table: str, partition: str, path: str, rows: int, win: window.IntervalWindow,
                    pane: Any) -> dict[str, Any]:
    return {
        "table": table,
        "partition": partition,
        "path": path,
        "rows": rows,
        "window_start": to_datetime(win.start).isoformat(),
        "window_end": to_datetime(win.end).isoformat(),
        "pane_index": pane.index,
        "pane_timing": PaneInfoTiming.to_string(pane.timing).lower(),
    }


# -- normalize with the poll time as ingestion time ----------------------------

class _NormalizeAtIngestionFn(beam.DoFn):
    def __init__(self, run_id: str, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int):
        self._run_id = run_id
        self._min_body_chars = min_body_chars
        self._payload_cap = payload_cap
        self._future_tolerance = future_tolerance_minutes

    def process(self, item: Mapping[str, Any], timestamp=beam.DoFn.TimestampParam) -> Iterable[Any]:
        run = RunInfo(run_id=self._run_id, ingested_at=to_datetime(timestamp).replace(microsecond=0))
        try:
            yield to_article(item, run, self._min_body_chars, self._future_tolerance)
        except EmptyArticleError as err:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead_letter(
                source=item.get("source") or "unknown", origin=item.get("origin") or "unknown",
                stage="normalize", error=str(err),
                raw=item.get("raw") or f"{item.get('title') or ''}\n{item.get('body') or ''}",
                run=run, payload_cap=self._payload_cap))


class NormalizeAtIngestion(beam.PTransform):
    """Parsed items (timestamped with their poll time) -> ``{'articles', 'dead_letter'}``.

    Like :class:`transforms.normalize.NormalizeArticles`, but ``ingested_at`` is
    each element's own timestamp instead of one start time for the whole run.
    """

    def __init__(self, run_id: str, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int = 0):
        super().__init__()
        self._fn = _NormalizeAtIngestionFn(run_id, min_body_chars, payload_cap, future_tolerance_minutes)

    def expand(self, items):
        results = items | beam.ParDo(self._fn).with_outputs(DEAD_LETTER, main="articles")
        return {"articles": results.articles, DEAD_LETTER: results[DEAD_LETTER]}


# -- dedup with keyed state ------------------------------------------------------

class _FirstSeenFn(beam.DoFn):
    KEPT = ReadModifyWriteStateSpec("kept_article_id", StrUtf8Coder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, method: str, ttl_seconds: int):
        self._method = method
        self._ttl = Duration(seconds=ttl_seconds)

    def process(self, keyed: tuple[str, Mapping[str, Any]], timestamp=beam.DoFn.TimestampParam,
                kept=beam.DoFn.StateParam(KEPT), expiry=beam.DoFn.TimerParam(EXPIRY)):
        _, article = keyed
        first = kept.read()
        if first is None:
            kept.write(article["article_id"])
            # An event-time timer holds the watermark only at its own (future) time,
            # so expiry never delays the windows downstream.
            expiry.set(timestamp + self._ttl)
            yield dict(article)
        else:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(article, first, 1.0, self._method))

    @on_timer(EXPIRY)
    def expire(self, kept=beam.DoFn.StateParam(KEPT)):
        kept.clear()


class DedupFirstSeen(beam.PTransform):
    """Keep the first article seen per ``key`` within ``ttl_seconds``; returns ``{'articles', 'duplicates'}``.

    Input must be in the global window (state then spans all windows and polls).
    Every input is in exactly one output; duplicates point at the kept article_id.
    """

    def __init__(self, key: str, method: str, ttl_seconds: int):
        super().__init__()
        self._key = key
        self._fn = _FirstSeenFn(method, ttl_seconds)

    def expand(self, articles):
        key = self._key
        results = (
            articles
            | "Key" >> beam.Map(lambda a: (a[key], a)).with_output_types(tuple[str, dict])
            | "FirstSeen" >> beam.ParDo(self._fn).with_outputs(DUPLICATE, main="articles")
        )
        return {"articles": results.articles, DUPLICATE: results[DUPLICATE]}


class DedupStream(beam.PTransform):
    """One article per ``article_id``, then per ``content_hash``, across polls and windows.

    The streaming counterpart of :class:`transforms.dedupe.DedupExact`: the first
    copy to arrive is kept (a stream cannot wait for the canonical one).
    Returns ``{'articles', 'duplicates'}``.
    """

    def __init__(self, ttl_seconds: int):
        super().__init__()
        self._ttl = ttl_seconds

    def expand(self, articles):
        by_id = articles | "ById" >> DedupFirstSeen("article_id", "id", self._ttl)
        by_hash = by_id["articles"] | "ByContentHash" >> DedupFirstSeen("content_hash", "content_hash", self._ttl)
        duplicates = (by_id[DUPLICATE], by_hash[DUPLICATE]) | "AllDuplicates" >> beam.Flatten()
        # Near-duplicate clustering is batch-only: each kept article is a cluster of one.
        kept = by_hash["articles"] | "ClusterOfOne" >> beam.Map(lambda a: {**a, "cluster_id": a["article_id"]})
        return {"articles": kept, DUPLICATE: duplicates}


# -- event time and windows ----------------------------------------------------------

class _EventTimeFn(beam.DoFn):
    def __init__(self, allowed_lateness_seconds: int):
        self._lateness = allowed_lateness_seconds

    def process(self, record: Mapping[str, Any], timestamp=beam.DoFn.TimestampParam):
        when = event_time(record.get("published_at"), float(timestamp), self._lateness)
        yield window.TimestampedValue(record, when)


class AssignEventTime(beam.PTransform):
    """Re-timestamp records from their poll time to ``event_time(published_at, ...)``."""

    def __init__(self, allowed_lateness_seconds: int):
        super().__init__()
        self._lateness = allowed_lateness_seconds

    def expand(self, records):
        return records | beam.ParDo(_EventTimeFn(self._lateness))


def event_time_windows(window_seconds: int, allowed_lateness_seconds: int) -> beam.WindowInto:
    """Fixed windows; one pane when the watermark passes the end, then one per late element batch.

    Panes discard what earlier panes emitted, so each pane's files hold only its new rows.
    """
    return beam.WindowInto(
        window.FixedWindows(window_seconds),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
        allowed_lateness=Duration(seconds=allowed_lateness_seconds),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
    )


# -- per-pane files ---------------------------------------------------------------------

class _WriteWindowFn(beam.DoFn):
    def __init__(self, table: Table, output_root: str, run_id: str, rows_per_file: int):
        self._table = table
        self._root = output_root
        self._run_id = run_id
        self._rows_per_file = rows_per_file

    def process(self, group, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (partition, shard), records = group
        rows = sorted(records, key=sort_key(self._table))
        start, end = to_datetime(win.start), to_datetime(win.end)
        for chunk, first in enumerate(range(0, len(rows), self._rows_per_file)):
            part = rows[first:first + self._rows_per_file]
            name = window_file_name(self._run_id, start, end, pane.index, shard, chunk)
            path = join(self._root, self._table.name, partition, name)
            write_parquet_file(self._table, part, path)
            yield pane_descriptor(self._table.name, partition, path, len(part), win, pane)


class WriteWindowedTable(WriteTable):
    """Write windowed records of ``table``: one file per partition, shard, window and pane.

    Same layout and atomic write as :class:`transforms.write.WriteTable`; the file
    name carries the window bounds and pane index (``window_file_name``), so a
    firing never overwrites another and a retried firing rewrites its own files.
    Returns one descriptor per file (with ``window_start``, ``window_end``, ``pane_index``).
    """

    def write_fn(self) -> beam.DoFn:
        return _WriteWindowFn(self._table, self._root, self._run_id, self._rows_per_file)
