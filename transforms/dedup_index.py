"""Cross-run dedup state: which articles earlier runs already wrote.

Layout under ``<output>/_state/dedup_index/``:
  * ``segment-<run_id>.parquet``: one per committed run. The run writes it into its staging
    folder; the commit protocol (transforms/commit.py) moves it here together with the run's
    articles, after the run's commit point, so a run that did not commit never marks articles as
    seen and a committed run always does;
  * ``compacted-<run_id>.parquet``: segments merged and trimmed to the retention window.
All I/O goes through Beam's FileSystems, so local disk and gs:// behave alike.

:func:`rollback_files` (called by the commit protocol's recovery, under the writer lease) deletes
table files, segments and index rows of runs that have no commit, also those left by versions
before the protocol.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from typing import Any, Iterable, Mapping

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils import shared

from schemas import DEDUP_INDEX, TABLES
from transforms.batching import decode_records, encode_records
from transforms.dedupe import prior_article, slim
from transforms import storage
from transforms.storage import read_text
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


def read_segment(path: str, columns: list[str] | None = None) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return pq.read_table(io.BytesIO(handle.read()), schema=DEDUP_INDEX.file_schema, columns=columns)


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


_PRIOR_COLUMNS = ("article_id", "content_hash", "minhash", "published_at", "text_length")
_U64 = np.uint64


def _string_keys(values: Iterable[str], domain: str) -> np.ndarray:
    salt = f"{domain}:".encode("utf-8")
    return np.fromiter((int.from_bytes(hashlib.blake2b(salt + v.encode("utf-8"), digest_size=8).digest(), "little")
                        for v in values), dtype=_U64)


def _band_salts(bands: int) -> np.ndarray:
    return _string_keys((str(b) for b in range(bands)), "band")


def _band_values(signatures: np.ndarray, bands: int, salts: np.ndarray) -> np.ndarray:
    """``(n, num_perm)`` uint16 signatures -> ``(n, bands)`` band keys; equal bands, equal keys."""
    rows = signatures.shape[1] // bands
    folded = np.zeros((signatures.shape[0], bands), dtype=_U64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            folded = folded * _U64(1 << 16) + signatures[:, j::rows].astype(_U64)
    return folded ^ salts


def _signature_matrix(column: pa.ChunkedArray, num_perm: int) -> np.ndarray:
    """The minhash column as one ``(n, num_perm)`` uint16 matrix (shorter ones zero-padded:
    padding can only add candidates, which decide nothing)."""
    width = 2 * num_perm
    values = column.to_pylist()
    if all(v is not None and len(v) == width for v in values):
        return np.frombuffer(b"".join(values), dtype="<u2").reshape(-1, num_perm)
    return np.frombuffer(b"".join((v or b"").ljust(width, b"\0")[:width] for v in values),
                         dtype="<u2").reshape(-1, num_perm)


class PriorIndex:
    """Index rows of earlier runs, loaded once, looked up by a current article's keys.

    Memory: the rows' Arrow columns (~0.4 KB: id, hash, 256-byte signature, dates) plus
    ``2 + bands`` sorted keys of 12 bytes each (~0.4 KB with 32 bands): ~0.8 KB per indexed row.
    """

    def __init__(self, table: pa.Table, num_perm: int | None, bands: int | None):
        self.table = table.select(list(_PRIOR_COLUMNS)).combine_chunks()
        n = self.table.num_rows
        keys = [_string_keys(self.table["article_id"].to_pylist(), "id"),
                _string_keys(self.table["content_hash"].to_pylist(), "hash")]
        self._bands = bands if num_perm and bands else 0
        self._num_perm = num_perm or 0
        if self._bands:
            self._salts = _band_salts(self._bands)
            keys.append(_band_values(_signature_matrix(self.table["minhash"], num_perm), bands, self._salts).ravel())
        row_ids = np.arange(n, dtype=np.int64 if n >= 2**31 else np.int32)
        rows = np.concatenate([row_ids, row_ids] + ([np.repeat(row_ids, self._bands)] if self._bands else []))
        keys = np.concatenate(keys) if n else np.zeros(0, dtype=_U64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._rows = rows[order] if n else np.zeros(0, dtype=np.int32)

    @classmethod
    def load(cls, paths: Iterable[str], exclude_runs: Iterable[str], cutoff: dt.datetime | None,
             num_perm: int | None, bands: int | None) -> "PriorIndex":
        tables = [keep_rows(read_segment(p), tuple(exclude_runs), cutoff) for p in paths]
        table = pa.concat_tables(tables) if tables else DEDUP_INDEX.file_schema.empty_table()
        return cls(table, num_perm, bands)

    def __len__(self) -> int:
        return self.table.num_rows

    def match(self, article_id: str, content_hash: str, signature: bytes | None = None) -> np.ndarray:
        """Sorted distinct row numbers sharing the article_id, the content_hash or (with a
        signature) an LSH band with the given article."""
        if not len(self._keys):
            return np.zeros(0, dtype=np.int64)
        query = [_string_keys([article_id], "id"), _string_keys([content_hash], "hash")]
        if self._bands and signature is not None:
            sig = np.frombuffer(signature.ljust(2 * self._num_perm, b"\0")[:2 * self._num_perm], dtype="<u2")
            query.append(_band_values(sig.reshape(1, -1), self._bands, self._salts).ravel())
        query = np.concatenate(query)
        lo = np.searchsorted(self._keys, query, "left")
        hi = np.searchsorted(self._keys, query, "right")
        hits = [self._rows[a:b] for a, b in zip(lo, hi) if b > a]
        return np.unique(np.concatenate(hits)) if hits else np.zeros(0, dtype=np.int64)

    def match_many(self, records: list[tuple[str, str, bytes | None]]) -> np.ndarray:
        """Sorted distinct row numbers sharing a key with any of ``records``
        (``(article_id, content_hash, signature or None)``): the union of :meth:`match` of each,
        looked up in one pass."""
        if not len(self._keys) or not records:
            return np.zeros(0, dtype=np.int64)
        query = [_string_keys((r[0] for r in records), "id"), _string_keys((r[1] for r in records), "hash")]
        signed = [r[2] for r in records if r[2] is not None]
        if self._bands and signed:
            width = 2 * self._num_perm
            matrix = np.frombuffer(b"".join(sig.ljust(width, b"\0")[:width] for sig in signed),
                                   dtype="<u2").reshape(-1, self._num_perm)
            query.append(_band_values(matrix, self._bands, self._salts).ravel())
        query = np.unique(np.concatenate(query))
        lo = np.searchsorted(self._keys, query, "left")
        hi = np.searchsorted(self._keys, query, "right")
        hits = [self._rows[a:b] for a, b in zip(lo[hi > lo], hi[hi > lo])]
        return np.unique(np.concatenate(hits)) if hits else np.zeros(0, dtype=np.int64)

    def rows(self, indices) -> list[dict[str, Any]]:
        return self.table.take(pa.array(indices, type=pa.int64())).to_pylist() if len(indices) else []


# Slim record fields the lookup reads (see transforms.dedupe.slim).
_SLIM_ID, _SLIM_HASH, _SLIM_SIG = 4, 6, 8


class _LookupIndexFn(beam.DoFn):
    """Current slim record (or a list of them) -> ``(row number, prior slim record)`` for every index
    row it matches.

    The index is loaded in ``setup``, once per worker process (shared between its threads); a
    row is output once per bundle (``LookupDedupIndex`` keeps one per row overall)."""

    def __init__(self, paths: tuple[str, ...], exclude_runs: tuple[str, ...], cutoff: dt.datetime | None,
                 num_perm: int | None, bands: int | None):
        self._args = (paths, exclude_runs, cutoff, num_perm, bands)
        self._shared = shared.Shared()
        self._index: PriorIndex | None = None

    def setup(self):
        self._index = self._shared.acquire(lambda: PriorIndex.load(*self._args), tag=repr(self._args))

    def start_bundle(self):
        # Rows already output in this bundle: a band many articles share would otherwise send
        # its rows once per current article (a retried bundle starts afresh).
        self._seen: set[int] = set()

    def process(self, records: tuple | list[tuple]):
        records = records if isinstance(records, list) else [records]
        matched = self._index.match_many([(r[_SLIM_ID], r[_SLIM_HASH], r[_SLIM_SIG]) for r in records]).tolist()
        fresh = [i for i in matched if i not in self._seen]
        self._seen.update(fresh)
        for index, row in zip(fresh, self._index.rows(fresh)):
            yield index, slim(prior_article(row))


class LookupDedupIndex(beam.PTransform):
    """Current slim records (or lists of them) -> slim records of the index rows of earlier runs that
    match them.

    A row matches when it has the same ``article_id`` or ``content_hash`` as a current
    article, or (``params`` given, near dedup enabled) shares an LSH band with it; each
    matching row is output once. Rows outside the retention window (``cutoff``) and rows
    of ``run_id`` itself (a replayed run) and of the runs in ``replaces`` (whose output this run
    replaces) are left out.
    Segments are listed when the pipeline is built.
    """

    def __init__(self, output_root: str, run_id: str, cutoff: dt.datetime | None, replaces: Iterable[str] = (),
                 params: Mapping[str, Any] | None = None):
        super().__init__()
        self._paths = tuple(published_segments(output_root))
        near = params is not None and params.get("enabled_near", True)
        self._fn = _LookupIndexFn(self._paths, tuple(sorted({run_id, *replaces})), cutoff,
                                  params["num_perm"] if near else None, params["bands"] if near else None)

    def expand(self, records):
        if not self._paths:
            return records | "NoIndex" >> beam.FlatMap(lambda _: ())
        return (records
                | "LookupIndex" >> beam.ParDo(self._fn)
                | "DistinctRows" >> beam.Distinct()
                | "PriorSlim" >> beam.Map(lambda indexed: indexed[1]))


class _WritePendingFn(beam.DoFn):
    def __init__(self, output_root: str, run_id: str):
        self._root = output_root
        self._run_id = run_id

    def process(self, keyed: tuple[None, Iterable[bytes | None]]):
        _, batches = keyed
        path = segment_path(self._root, self._run_id)
        rows = sorted((row for batch in batches if batch is not None for row in decode_records(batch)),
                      key=lambda r: r["article_id"])
        write_parquet_file(DEDUP_INDEX, rows, path)
        yield {"table": "dedup_index_pending", "partition": "", "path": path, "rows": len(rows)}


class _IndexRowsFn(beam.DoFn):
    """An article (``batched``: a list of them) -> ``(None, encoded list of its index rows)``."""

    def __init__(self, batched: bool):
        self._batched = batched

    def process(self, articles):
        yield None, encode_records([index_row(a) for a in (articles if self._batched else (articles,))])


class WritePendingIndex(beam.PTransform):
    """Write the run's index rows to one segment under ``output_root`` (the run's staging root);
    outputs its file descriptor. ``batched``: the input is lists of articles."""

    def __init__(self, output_root: str, run_id: str, batched: bool = False):
        super().__init__()
        self._fn = _WritePendingFn(output_root, run_id)
        self._batched = batched

    def expand(self, articles):
        # Rows cross as one encoded list per input element (batching.encode_records: Beam's coder
        # would pickle each datetime on its own), grouped under one key: the runner moves bytes. A
        # seed element makes the group exist when there are no articles: a run always writes one segment.
        seed = articles.pipeline | "Seed" >> beam.Create([(None, None)])
        return ((articles | "IndexRows" >> beam.ParDo(_IndexRowsFn(self._batched)), seed)
                | "WithSeed" >> beam.Flatten()
                | "OneSegment" >> beam.GroupByKey()
                | "WritePending" >> beam.ParDo(self._fn))


def compact(output_root: str, segments: list[str], run_id: str, cutoff: dt.datetime | None) -> str:
    """Merge ``segments`` into one, dropping rows older than ``cutoff`` and repeated ids."""
    tables = [keep_rows(read_segment(p), None, cutoff) for p in segments]
    merged = pa.concat_tables(tables) if tables else DEDUP_INDEX.file_schema.empty_table()
    rows = {}
    for row in merged.to_pylist():
        rows.setdefault(row["article_id"], row)
    target = join(index_dir(output_root), f"compacted-{run_id}.parquet")
    write_parquet_file(DEDUP_INDEX, sorted(rows.values(), key=lambda r: r["article_id"]), target)
    storage.delete([p for p in segments if p != target])
    return target


def rollback_files(output_root: str, committed: set[str]) -> list[str]:
    """Delete table files, index segments and index rows of runs not in ``committed``, and the
    pending folders of versions before the commit protocol. Returns the deleted paths."""
    doomed = []
    for table in TABLES.values():
        for path in _match(join(output_root, table.name, "**", "part-*")):
            run = batch_run_id(path)
            if run is not None and run not in committed:
                doomed.append(path)
    for path in _match(join(index_dir(output_root), "pending", "*.parquet")):
        doomed.append(path)
    for path in _match(join(output_root, "_state", "feeds", "_pending", "*", "*.json")):
        doomed.append(path)
    for path in published_segments(output_root):
        name = path.rsplit("/", 1)[-1]
        match = _SEGMENT.search(name)
        if name.startswith("segment-") and match["run"] not in committed:
            doomed.append(path)
        elif name.startswith("compacted-"):
            # Only versions before the commit protocol could compact rows of runs that never
            # committed: decode just the run ids, and the whole segment only when it must be rewritten.
            run_ids = set(pc.unique(read_segment(path, columns=["run_id"])["run_id"]).to_pylist())
            uncommitted = sorted(run_ids - committed)
            if uncommitted:
                write_parquet_file(DEDUP_INDEX, keep_rows(read_segment(path), uncommitted, None).to_pylist(), path)
    if doomed:
        storage.delete(doomed)
    return doomed


def purge_runs(output_root: str, run_ids: Iterable[str], commit_dir: str, manifest_dir: str) -> list[str]:
    """Delete every trace of committed runs whose output was replaced: their commit records first
    (so recovery never tries to publish them again), then their table files (exact run id),
    index rows (their segments, and their rows in compacted segments) and last their manifests.
    Idempotent. Returns the deleted paths; compacted segments are rewritten, not listed."""
    doomed_runs = set(run_ids)
    if not doomed_runs:
        return []
    records = [p for p in (join(commit_dir, f"{r}.json") for r in sorted(doomed_runs)) if FileSystems.exists(p)]
    if records:
        storage.delete(records)
    doomed = list(records)
    files = []
    for table in TABLES.values():
        for path in _match(join(output_root, table.name, "**", "part-*.parquet")):
            if batch_run_id(path) in doomed_runs:
                files.append(path)
    for path in published_segments(output_root):
        match = _SEGMENT.search(path)
        if path.rsplit("/", 1)[-1].startswith("segment-") and match["run"] in doomed_runs:
            files.append(path)
        elif path.rsplit("/", 1)[-1].startswith("compacted-"):
            table = read_segment(path)
            kept = keep_rows(table, doomed_runs, None)
            if kept.num_rows != table.num_rows:
                write_parquet_file(DEDUP_INDEX, kept.to_pylist(), path)
    if files:
        storage.delete(files)
    doomed += files
    from transforms.layout import purge_rows  # their rows inside files that migrate/compact wrote

    doomed += purge_rows(output_root, doomed_runs, manifest_dir)
    manifests = [p for p in (join(manifest_dir, f"{r}.json") for r in sorted(doomed_runs)) if FileSystems.exists(p)]
    if manifests:
        storage.delete(manifests)
    return doomed + manifests


def index_size(output_root: str) -> dict[str, Any]:
    """Rows and bytes of the published index (for the README figures and the manifest)."""
    paths = published_segments(output_root)
    metadata = [m for p in paths for m in FileSystems.match([p])[0].metadata_list]
    rows = sum(read_segment(p).num_rows for p in paths)
    return {"segments": len(paths), "rows": rows, "bytes": sum(m.size_in_bytes for m in metadata)}


__all__ = ["LookupDedupIndex", "PriorIndex", "WritePendingIndex", "compact", "index_size", "purge_runs",
           "rollback_files"]
