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
  * :class:`CommitFirings` - the files of every table written for one window firing become
    visible together: they are staged under ``_staging/_streams/<stream>/``, and one commit
    record per firing (``_commits/<stream>-w<start>-p<firing>.json``, create-if-absent) is the
    commit point, exactly as for a batch run (transforms/commit.py).
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

from schemas import DEAD_LETTERS, TABLES, Table
from transforms import commit
from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.dedupe import DUPLICATE, duplicate_record
from transforms.normalize import EmptyArticleError, to_article
from transforms.write import WriteTable, join, row_sort_key, window_file_name, write_parquet_file, write_parquet_rows


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
    def __init__(self, run_id: str, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int,
                 minhash: Mapping[str, Any] | None = None):
        self._run_id = run_id
        self._min_body_chars = min_body_chars
        self._payload_cap = payload_cap
        self._future_tolerance = future_tolerance_minutes
        self._minhash = dict(minhash) if minhash else None
        self._signer = None

    def setup(self):
        if self._minhash:  # the signature goes into the stream's dedup-index segments
            from transforms.minhash import minhasher

            self._signer = minhasher(self._minhash).signature

    def process(self, item: Mapping[str, Any], timestamp=beam.DoFn.TimestampParam) -> Iterable[Any]:
        run = RunInfo(run_id=self._run_id, ingested_at=to_datetime(timestamp).replace(microsecond=0))
        try:
            yield to_article(item, run, self._min_body_chars, self._future_tolerance, self._signer)
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

    def __init__(self, run_id: str, min_body_chars: int, payload_cap: int, future_tolerance_minutes: int = 0,
                 minhash: Mapping[str, Any] | None = None):
        super().__init__()
        self._fn = _NormalizeAtIngestionFn(run_id, min_body_chars, payload_cap, future_tolerance_minutes, minhash)

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


class _SeenInArchiveFn(beam.DoFn):
    """Articles whose id or content hash the archive's dedup index holds become duplicates of the
    indexed article (a restarted stream re-polls what it committed before; a batch run may have
    archived the same story)."""

    def __init__(self, segments: tuple[str, ...], cutoff: dt.datetime | None):
        self._segments = segments
        self._cutoff = cutoff
        self._ids: set[str] = set()
        self._hashes: dict[str, str] = {}

    def setup(self):
        from transforms.dedup_index import keep_rows, read_segment

        for path in self._segments:
            table = keep_rows(read_segment(path, columns=["article_id", "content_hash", "indexed_at", "run_id"]),
                              None, self._cutoff)
            ids, hashes = table["article_id"].to_pylist(), table["content_hash"].to_pylist()
            self._ids.update(ids)
            for content_hash, article_id in sorted(zip(hashes, ids)):  # the smallest id per hash
                self._hashes.setdefault(content_hash, article_id)

    def process(self, article: Mapping[str, Any]):
        if article["article_id"] in self._ids:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(article, article["article_id"], 1.0, "id"))
        elif article["content_hash"] in self._hashes:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(
                article, self._hashes[article["content_hash"]], 1.0, "content_hash"))
        else:
            yield article


class DedupStream(beam.PTransform):
    """One article per ``article_id``, then per ``content_hash``, across polls and windows.

    The streaming counterpart of :class:`transforms.dedupe.DedupExact`: the first
    copy to arrive is kept (a stream cannot wait for the canonical one). With ``index_segments``
    (the archive's published dedup index) an article the archive already holds is a duplicate
    of that article first.
    Returns ``{'articles', 'duplicates'}``.
    """

    def __init__(self, ttl_seconds: int, index_segments: Iterable[str] = (), cutoff: dt.datetime | None = None):
        super().__init__()
        self._ttl = ttl_seconds
        self._segments = tuple(index_segments)
        self._cutoff = cutoff

    def expand(self, articles):
        earlier = []
        if self._segments:  # the archive's index, as published when the stream started
            seen = articles | "SeenInArchive" >> beam.ParDo(
                _SeenInArchiveFn(self._segments, self._cutoff)).with_outputs(DUPLICATE, main="articles")
            articles, earlier = seen.articles, [seen[DUPLICATE]]
        by_id = articles | "ById" >> DedupFirstSeen("article_id", "id", self._ttl)
        by_hash = by_id["articles"] | "ByContentHash" >> DedupFirstSeen("content_hash", "content_hash", self._ttl)
        duplicates = (*earlier, by_id[DUPLICATE], by_hash[DUPLICATE]) | "AllDuplicates" >> beam.Flatten()
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
        rows = sorted(records, key=row_sort_key(self._table))
        start, end = to_datetime(win.start), to_datetime(win.end)
        for chunk, first in enumerate(range(0, len(rows), self._rows_per_file)):
            part = rows[first:first + self._rows_per_file]
            name = window_file_name(self._run_id, start, end, pane.index, shard, chunk)
            path = join(self._root, self._table.name, partition, name)
            write_parquet_rows(self._table, part, path)
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


# -- one commit per window firing ------------------------------------------------------------

def firing_run_id(writer_id: str, start: dt.datetime, firing: int) -> str:
    """``stream-abc-a20261202T031000-w20261202T030000-p0``: the commit (and manifest) id of a window
    firing of one stream attempt (``writer_id`` = stream id + attempt, see :func:`attempt_id`)."""
    return f"{writer_id}-w{start.strftime('%Y%m%dT%H%M%S')}-p{firing}"


def attempt_id(stream_id: str, started: dt.datetime) -> str:
    """The stream id plus its start time: file names and firing ids of one attempt (a launch) of a
    stream. A restarted stream writes and commits new names, never an earlier attempt's."""
    return f"{stream_id}-a{started.astimezone(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}"


def firing_counters(files: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counters of one firing from the rows of its files: every item of the window is an article,
    a duplicate or a dead letter, so ``inputs`` is their sum (feed_status rows are not items)."""
    rows = {name: 0 for name in TABLES}
    for f in files:
        rows[f["table"]] = rows.get(f["table"], 0) + int(f["rows"])
    counts = {"articles": rows["articles"], "duplicates": rows["duplicates"],
              "dead_letters": rows[DEAD_LETTERS.name]}
    return {"inputs": sum(counts.values()), **counts}


INDEX_PENDING = "dedup_index_pending"


class _WriteWindowIndexFn(beam.DoFn):
    def __init__(self, staged_root: str, writer_id: str):
        self._root = staged_root
        self._writer = writer_id

    def process(self, group, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        from schemas import DEDUP_INDEX

        _, rows = group
        rows = sorted(rows, key=lambda r: r["article_id"])
        start, end = to_datetime(win.start), to_datetime(win.end)
        name = window_file_name(self._writer, start, end, pane.index, 0, 0)
        path = join(self._root, "_state", "dedup_index", "pending", name)
        write_parquet_file(DEDUP_INDEX, rows, path)
        yield pane_descriptor(INDEX_PENDING, "", path, len(rows), win, pane)


class WriteWindowedIndex(beam.PTransform):
    """The dedup-index rows of a window's articles, one staged file per window and pane; each
    firing's commit publishes them as its index segment (the next batch run and a restarted
    stream dedup against them)."""

    def __init__(self, staged_root: str, writer_id: str):
        super().__init__()
        self._fn = _WriteWindowIndexFn(staged_root, writer_id)

    def expand(self, articles):
        from transforms.dedup_index import index_row

        return (articles
                | "IndexRows" >> beam.Map(lambda a: ("index", index_row(a)))
                | "GroupIndexRows" >> beam.GroupByKey()
                | "WriteIndexRows" >> beam.ParDo(self._fn))


class _CommitFiringFn(beam.DoFn):
    def __init__(self, output_root: str, stream_id: str, writer_id: str, manifest_base: Mapping[str, Any],
                 compaction: Mapping[str, Any] | None):
        self._root = output_root
        self._stream = stream_id
        self._writer = writer_id
        self._base = dict(manifest_base)
        self._compaction = dict(compaction) if compaction else None

    def _index_segment(self, staged: list[Mapping[str, Any]], firing_id: str) -> dict[str, Any]:
        """One index segment for the firing: the staged pending file, or several merged into one."""
        from schemas import DEDUP_INDEX
        from transforms.dedup_index import read_segment, segment_path

        if len(staged) == 1:
            path, rows = staged[0]["path"], staged[0]["rows"]
        else:
            import pyarrow as pa

            merged = pa.concat_tables([read_segment(f["path"]) for f in staged]).sort_by("article_id")
            path = join(commit.stream_staging_root(self._root, self._stream), "_state", "dedup_index",
                        "pending", f"{firing_id}.parquet")
            write_parquet_file(DEDUP_INDEX, merged.to_pylist(), path)
            rows = merged.num_rows
        return {"table": INDEX_PENDING, "partition": "", "rows": rows, "staged": path,
                "path": segment_path(self._root, firing_id)}

    def process(self, keyed, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, files = keyed
        root = self._root
        staged_root = commit.stream_staging_root(root, self._stream).rstrip("/") + "/"
        start, end = to_datetime(win.start), to_datetime(win.end)
        firing_id = firing_run_id(self._writer, start, pane.index)
        files = sorted(files, key=lambda f: f["path"])
        entries = [{**f, "staged": f["path"], "path": join(root, f["path"][len(staged_root):])}
                   for f in files if f["table"] != INDEX_PENDING]
        index = [f for f in files if f["table"] == INDEX_PENDING]
        if index:
            entries.append(self._index_segment(index, firing_id))
        entries = [{**e, "staged": commit.relative_path(root, e["staged"]), "path": commit.relative_path(root, e["path"])}
                   for e in entries]
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        manifest = {**self._base, "run_id": firing_id, "stream_run_id": self._stream, "status": "committed",
                    "started_at": self._base.get("started_at") or now, "finished_at": now,
                    "window_start": start.isoformat(), "window_end": end.isoformat(), "firing": pane.index,
                    "firing_timing": PaneInfoTiming.to_string(pane.timing).lower(),
                    "versions": commit.versions(), "counters": commit.build_counters(firing_counters(entries)),
                    "replaced_runs": []}
        record = {"run_id": firing_id, "created_at": now, "files": entries, "replaces": [],
                  "compact": self._compaction, "manifest": manifest}
        yield commit.commit_and_publish(root, record, self._stream)


class CommitFirings(beam.PTransform):
    """Commit the files a stream staged, one commit per window firing.

    Input: file descriptors of every table's :class:`WriteWindowedTable` and of
    :class:`WriteWindowedIndex` (written under :func:`transforms.commit.stream_staging_root`), in
    the tables' common windowing. They are grouped per window (the continuation trigger groups the
    on-time panes of all tables together, and each late firing on its own); each group gets one
    commit record (its id: :func:`firing_run_id`) and is published, its index rows as the segment
    ``segment-<firing id>.parquet``. Returns the manifests (``_runs/<firing id>.json``).
    """

    def __init__(self, output_root: str, stream_id: str, writer_id: str, manifest_base: Mapping[str, Any],
                 compaction: Mapping[str, Any] | None = None):
        super().__init__()
        self._fn = _CommitFiringFn(output_root, stream_id, writer_id, manifest_base, compaction)

    def expand(self, files):
        return (files
                | "KeyByWindow" >> beam.Map(lambda f: ("firing", f))
                | "GroupFiring" >> beam.GroupByKey()
                | "CommitFiring" >> beam.ParDo(self._fn))
