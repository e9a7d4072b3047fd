"""Cross-run dedup state: which articles earlier runs already wrote.

Layout under ``<output>/_state/dedup_index/``:
  * ``pending/segment-<run_id>.parquet``: written by the run, next to its articles;
  * ``segment-<run_id>.parquet``: published by the commit hook, only after the
    run's article files are in place (a crashed run never marks articles as seen);
  * ``compacted-<run_id>.parquet``: segments merged and trimmed to the retention window.
All I/O goes through Beam's FileSystems, so local disk and gs:// behave alike.

Before a run starts, :func:`rollback_uncommitted` deletes the table files and
pending segments of runs that have no committed manifest, so a run that died
after writing articles but before publishing its segment leaves nothing behind
and its input is ingested again by the next run. One writer per output root at
a time is assumed (as for any table format without a lock service).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas import DEDUP_INDEX, TABLES
from transforms.commit import MANIFEST_DIR, read_text
from transforms.dedupe import prior_article
from transforms.write import batch_run_id, join, write_parquet_file

INDEX_DIR = "_state/dedup_index"
_SEGMENT = re.compile(r"(?:segment|compacted)-(?P<run>.+)\.parquet$")


def index_dir(output_root: str) -> str:
    return join(output_root, *INDEX_DIR.split("/"))


def pending_segment_path(output_root: str, run_id: str) -> str:
    return join(index_dir(output_root), "pending", f"segment-{run_id}.parquet")


def segment_path(output_root: str, run_id: str) -> str:
    return join(index_dir(output_root), f"segment-{run_id}.parquet")


def _match(pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def published_segments(output_root: str) -> list[str]:
    return [p for p in _match(join(index_dir(output_root), "*.parquet")) if _SEGMENT.search(p)]


def index_row(article: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "article_id": article["article_id"],
        "content_hash": article["content_hash"],
        "minhash": article["minhash"],
        "published_at": article.get("published_at"),
        "text_length": article.get("text_length") or 0,
        "source": article["source"],
        "run_id": article["run_id"],
        "indexed_at": article["ingested_at"],
    }


def read_segment(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return pq.read_table(io.BytesIO(handle.read()), schema=DEDUP_INDEX.file_schema)


def keep_rows(table: pa.Table, exclude_run: str | Iterable[str] | None, cutoff: dt.datetime | None) -> pa.Table:
    """Rows of other runs (a replayed run does not dedup against itself) inside the window.

    ``exclude_run`` is one run id or several (a run that replaces other runs' output, e.g. the
    later chunks of a chunked run being replayed, does not dedup against them either)."""
    mask = pa.array([True] * table.num_rows, type=pa.bool_())
    if isinstance(exclude_run, str):
        mask = pc.and_(mask, pc.not_equal(table["run_id"], exclude_run))
    elif exclude_run is not None:
        excluded = pc.is_in(table["run_id"], value_set=pa.array(sorted(exclude_run), type=pa.string()))
        mask = pc.and_(mask, pc.invert(excluded))
    if cutoff is not None:
        mask = pc.and_(mask, pc.greater_equal(table["indexed_at"], pa.scalar(cutoff, type=table.schema.field("indexed_at").type)))
    return table.filter(mask)


def window_cutoff(now: dt.datetime, window_days: int | None) -> dt.datetime | None:
    return now - dt.timedelta(days=window_days) if window_days else None


class _ReadSegmentsFn(beam.DoFn):
    def __init__(self, exclude_runs: tuple[str, ...], cutoff: dt.datetime | None):
        self._exclude = exclude_runs
        self._cutoff = cutoff

    def process(self, path: str):
        for row in keep_rows(read_segment(path), self._exclude, self._cutoff).to_pylist():
            yield prior_article(row)


class ReadDedupIndex(beam.PTransform):
    """Index rows of earlier runs (inside the retention window) as prior articles.

    Segments are listed when the pipeline is built, so a run sees exactly the
    state that was committed before it started. Rows of ``run_id`` itself and of
    the runs in ``replaces`` (whose output this run replaces) are left out.
    """

    def __init__(self, output_root: str, run_id: str, cutoff: dt.datetime | None, replaces: Iterable[str] = ()):
        super().__init__()
        self._paths = published_segments(output_root)
        self._fn = _ReadSegmentsFn(tuple(sorted({run_id, *replaces})), cutoff)

    def expand(self, pbegin):
        return (pbegin
                | "Segments" >> beam.Create(self._paths)
                | "ReadSegments" >> beam.ParDo(self._fn))


class _WritePendingFn(beam.DoFn):
    def __init__(self, output_root: str, run_id: str):
        self._root = output_root
        self._run_id = run_id

    def process(self, rows: list[dict[str, Any]]):
        path = pending_segment_path(self._root, self._run_id)
        rows = sorted(rows, key=lambda r: r["article_id"])
        write_parquet_file(DEDUP_INDEX, rows, path)
        yield {"table": "dedup_index_pending", "partition": "", "path": path, "rows": len(rows)}


class WritePendingIndex(beam.PTransform):
    """Write the run's index rows to one pending segment; outputs its file descriptor."""

    def __init__(self, output_root: str, run_id: str):
        super().__init__()
        self._fn = _WritePendingFn(output_root, run_id)

    def expand(self, articles):
        return (articles
                | "IndexRows" >> beam.Map(index_row)
                | "OneSegment" >> beam.combiners.ToList()
                | "WritePending" >> beam.ParDo(self._fn))


class PublishIndex:
    """Commit hook: publish the pending segment, then compact when there are many segments."""

    def __init__(self, output_root: str, run_id: str, now: dt.datetime, window_days: int | None,
                 compact_after_segments: int):
        self.output_root = output_root
        self.run_id = run_id
        self.now = now
        self.window_days = window_days
        self.compact_after_segments = compact_after_segments

    def __call__(self, files: list[dict[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
        pending = pending_segment_path(self.output_root, self.run_id)
        final = segment_path(self.output_root, self.run_id)
        if FileSystems.exists(pending):
            if FileSystems.exists(final):
                FileSystems.delete([final])
            FileSystems.rename([pending], [final])
        segments = published_segments(self.output_root)
        compacted = None
        if len(segments) > self.compact_after_segments:
            compacted = compact(self.output_root, segments, self.run_id, window_cutoff(self.now, self.window_days))
            segments = published_segments(self.output_root)
        return {"dedup_index": {"segments": len(segments), "compacted_into": compacted}}


def compact(output_root: str, segments: list[str], run_id: str, cutoff: dt.datetime | None) -> str:
    """Merge ``segments`` into one, dropping rows older than ``cutoff`` and repeated ids."""
    tables = [keep_rows(read_segment(p), None, cutoff) for p in segments]
    merged = pa.concat_tables(tables) if tables else DEDUP_INDEX.file_schema.empty_table()
    rows = {}
    for row in merged.to_pylist():
        rows.setdefault(row["article_id"], row)
    target = join(index_dir(output_root), f"compacted-{run_id}.parquet")
    write_parquet_file(DEDUP_INDEX, sorted(rows.values(), key=lambda r: r["article_id"]), target)
    FileSystems.delete([p for p in segments if p != target])
    return target


def committed_runs(output_root: str) -> set[str]:
    runs = set()
    for path in _match(join(output_root, MANIFEST_DIR, "*.json")):
        try:
            manifest = json.loads(read_text(path) or "{}")
        except ValueError:
            continue
        if manifest.get("status") == "committed":
            runs.add(manifest["run_id"])
    return runs


def rollback_uncommitted(output_root: str) -> list[str]:
    """Delete table files and pending segments of runs without a committed manifest."""
    committed = committed_runs(output_root)
    doomed = []
    for table in TABLES.values():
        for path in _match(join(output_root, table.name, "**", "part-*.parquet")):
            run = batch_run_id(path)
            if run is not None and run not in committed:
                doomed.append(path)
    for path in _match(join(index_dir(output_root), "pending", "*.parquet")):
        doomed.append(path)
    if doomed:
        FileSystems.delete(doomed)
    return doomed


def purge_runs(output_root: str, run_ids: Iterable[str]) -> list[str]:
    """Delete every trace of committed runs whose output was replaced: their table files (exact
    run id, not a prefix), index rows (their segments, and their rows in compacted segments) and
    manifests. Returns the deleted paths; compacted segments are rewritten, not listed."""
    doomed_runs = set(run_ids)
    if not doomed_runs:
        return []
    doomed = []
    for table in TABLES.values():
        for path in _match(join(output_root, table.name, "**", "part-*.parquet")):
            if batch_run_id(path) in doomed_runs:
                doomed.append(path)
    for path in published_segments(output_root):
        match = _SEGMENT.search(path)
        if path.rsplit("/", 1)[-1].startswith("segment-") and match["run"] in doomed_runs:
            doomed.append(path)
        elif path.rsplit("/", 1)[-1].startswith("compacted-"):
            table = read_segment(path)
            kept = keep_rows(table, doomed_runs, None)
            if kept.num_rows != table.num_rows:
                write_parquet_file(DEDUP_INDEX, kept.to_pylist(), path)
    for run_id in sorted(doomed_runs):
        manifest = join(output_root, MANIFEST_DIR, f"{run_id}.json")
        if FileSystems.exists(manifest):
            doomed.append(manifest)
    if doomed:
        FileSystems.delete(doomed)
    return doomed


def index_size(output_root: str) -> dict[str, Any]:
    """Rows and bytes of the published index (for the README figures and the manifest)."""
    paths = published_segments(output_root)
    metadata = [m for p in paths for m in FileSystems.match([p])[0].metadata_list]
    rows = sum(read_segment(p).num_rows for p in paths)
    return {"segments": len(paths), "rows": rows, "bytes": sum(m.size_in_bytes for m in metadata)}


__all__ = ["PublishIndex", "ReadDedupIndex", "WritePendingIndex", "compact", "index_size", "purge_runs",
           "rollback_uncommitted"]
