"""Step 6: write records as Hive-partitioned Parquet through Beam's FileSystems.

Core: ``partition_path`` (``published_month=2026-01``),
``file_name`` (``part-<run_id>-<shard>-<chunk>.parquet``, stable per run) and
``write_parquet_file`` (temp file, then rename into place, so a reader never
sees a partial file and a re-run of the same run id replaces its files).
Transform: :class:`WriteTable` groups records by (partition, stable shard),
writes one file per group and chunk, and outputs one descriptor per file.
Records cross the shuffle as compact rows (``encode_row``: the file columns
only, as a tuple, timestamps as int microseconds and dates as int days, which
Beam's coder encodes natively; datetimes would be pickled one by one), encoded
to bytes once before the GroupByKey and decoded once after it.

Why not ``fileio.WriteToFiles``: on local disk it can fail to create partition
folders, it names files by bundle (not idempotent) and it loses sink arguments.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils.windowed_value import WindowedValue

from schemas import Table
from transforms.batching import RecordBatch
from transforms.common import stable_int
from transforms.storage import TEMP_SUFFIX, fault_point, join, replace_file  # noqa: F401 (re-exported)

PARQUET_SUFFIX = ".parquet"


def partition_value(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = str(value)
    # Hive partition values must not contain path separators.
    return text.replace("/", "_").replace("=", "_") or "__empty__"


def partition_path(table: Table, record: Mapping[str, Any]) -> str:
    return "/".join(f"{col}={partition_value(record[col])}" for col in table.partitions)


def file_name(run_id: str, shard: int, chunk: int) -> str:
    return f"part-{run_id}-{shard:05d}-{chunk:03d}{PARQUET_SUFFIX}"


def window_file_name(run_id: str, window_start: dt.datetime, window_end: dt.datetime, pane_index: int,
                     shard: int, chunk: int) -> str:
    """File of one firing of a streaming window: ``part-<run_id>-<start>-<end>-p<pane>-<shard>-<chunk>.parquet``.

    Window bounds (UTC, ``20261121T100000Z``) and the pane index name the firing, so every
    firing gets its own files and a retried firing replaces exactly its own.
    """
    stamp = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")  # noqa: E731
    return f"part-{run_id}-{stamp(window_start)}-{stamp(window_end)}-p{pane_index:04d}-{shard:05d}-{chunk:03d}{PARQUET_SUFFIX}"


# Batch files are part-<run_id>-<shard:5>-<chunk:3>.parquet; streaming files add window bounds
# and a pane (window_file_name) and belong to no batch run.
_BATCH_FILE = re.compile(r"^part-(?P<run>.+?)-\d{5}-\d{3}\.parquet(?:\.[0-9a-f]+\.inprogress)?$")
_WINDOW_FILE = re.compile(r"-\d{8}T\d{6}Z-\d{8}T\d{6}Z-p\d{4}-\d{5}-\d{3}\.parquet")


def batch_run_id(path: str) -> str | None:
    """Run id of a batch file (or its temp file); None for streaming and foreign files."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if _WINDOW_FILE.search(name):
        return None
    match = _BATCH_FILE.match(name)
    return match["run"] if match else None


def run_file_pattern(output_root: str, table: Table, run_id: str) -> str:
    """Glob of every file a run wrote to a table (to find stale files of an earlier attempt)."""
    return join(output_root, table.name, "**", f"part-{run_id}-*{PARQUET_SUFFIX}")


def run_temp_pattern(output_root: str, table: Table, run_id: str) -> str:
    """Glob of a run's temporary files (left behind only by a writer that died mid-write)."""
    return join(output_root, table.name, "**", f"part-{run_id}-*{TEMP_SUFFIX}")


# Row groups of sorted tables: small enough that a month file's groups span few languages and dates.
SORTED_ROW_GROUP_ROWS = 16_384


def write_parquet_file(table: Table, records: list[Mapping[str, Any]], path: str) -> None:
    """Write ``records`` to ``path`` atomically: temp file, then rename into place."""
    write_arrow_file(table, table.to_table(records), path)


def write_parquet_rows(table: Table, rows: list[tuple], path: str) -> None:
    """:func:`write_parquet_file` for rows as :func:`encode_row` makes them (``Table.rows_to_table``)."""
    write_arrow_file(table, table.rows_to_table(rows), path)


def write_arrow_file(table: Table, arrow_table: pa.Table, path: str) -> None:
    """Write an Arrow table of ``table``'s file schema to ``path`` atomically (temp file, then rename)."""
    temp_path = f"{path}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    with FileSystems.create(temp_path, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as sink:
        pq.write_table(arrow_table, sink, compression="zstd",
                       row_group_size=SORTED_ROW_GROUP_ROWS if table.sort_by else None)
    fault_point("parquet_temp")
    replace_file(temp_path, path)
    fault_point("parquet")


# -- compaction ---------------------------------------------------------------------
#
# Scheduled runs each add a few small files per partition. ``compact_files`` merges them; it is a
# pure step for the commit protocol to call: it reads its inputs and writes its targets (each
# atomically), and neither deletes nor changes an input. Publishing the targets and removing the
# inputs is one commit of the single writer (staging + commit record), so a crash at any point
# leaves either the inputs or the committed targets, never both or neither.

def _read_file(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return pq.read_table(pa.BufferReader(handle.read()))


def _aligned(table: Table, data: list[pa.Table]) -> pa.Table:
    """The files' rows as ``table``'s file schema; a column some older file lacks reads as null
    there (and is written nullable)."""
    schema = table.file_schema
    for i, field in enumerate(schema):
        if not field.nullable and any(field.name not in d.column_names for d in data):
            schema = schema.set(i, field.with_nullable(True))
    return pa.concat_tables([
        pa.Table.from_arrays([d.column(f.name).cast(f.type) if f.name in d.column_names
                              else pa.nulls(d.num_rows, f.type) for f in schema], schema=schema)
        for d in data])


def _parent(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0]


def compact_files(table: Table, inputs: list[str], targets: list[str]) -> list[dict[str, Any]]:
    """Merge the Parquet files ``inputs`` (all in one partition folder of ``table``) into ``targets``.

    Rows keep their values; they are sorted as the writer sorts them (``sort_key``: the table's
    ``sort_by`` columns, nulls last, then origin) and split into ``len(targets)`` files of nearly
    equal size, in order. Each target is written atomically; inputs are only read. A target that
    is also an input, or inputs from several folders, are refused (ValueError). Returns one
    descriptor ``{table, partition, path, rows}`` per target, as ``WriteTable`` does.
    """
    if not inputs or not targets:
        raise ValueError("compact_files needs at least one input and one target")
    if set(inputs) & set(targets):
        raise ValueError(f"compaction targets must be new files, not inputs: {sorted(set(inputs) & set(targets))}")
    folders = {_parent(p) for p in inputs}
    if len(folders) != 1:
        raise ValueError(f"compaction inputs span several partitions: {sorted(folders)}")
    folder = folders.pop()
    partition = folder.split(f"/{table.name}/", 1)[1] if f"/{table.name}/" in folder else ""
    return write_sorted(table, _aligned(table, [_read_file(p) for p in inputs]), targets, partition)


def write_sorted(table: Table, merged: pa.Table, targets: list[str], partition: str) -> list[dict[str, Any]]:
    """Sort ``merged`` as the writer sorts rows (``sort_key``) and write it to ``targets`` in
    nearly equal, ordered slices, each file atomically; one descriptor per target."""
    keys = [c for c in (*table.sort_by, "origin") if c in merged.column_names] if table.sort_by \
        else [table.file_schema[0].name]
    merged = merged.take(pc.sort_indices(merged, sort_keys=[(c, "ascending", "at_end") for c in keys]))
    n, parts = merged.num_rows, len(targets)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    descriptors = []
    for target, start, end in zip(targets, bounds, bounds[1:]):
        write_arrow_file(table, merged.slice(start, end - start), target)
        descriptors.append({"table": table.name, "partition": partition, "path": target, "rows": end - start})
    return descriptors


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_MICROSECOND = dt.timedelta(microseconds=1)


def _to_micros(value: Any) -> Any:
    """An aware or naive (read as UTC, as pyarrow does) datetime -> int µs since the epoch; others unchanged."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - _EPOCH) // _MICROSECOND
    return value


def _to_days(value: Any) -> Any:
    """A date -> int days since the epoch; others (datetimes included) unchanged."""
    return value.toordinal() - _EPOCH_DAY if type(value) is dt.date else value


def row_codec(table: Table) -> tuple[list[str], list[tuple[int, Any]]]:
    """``(names, converters)`` of :func:`encode_row`: the file columns, and (index, function) per
    timestamp/date column."""
    names, converters = [], []
    for index, field in enumerate(table.file_schema):
        names.append(field.name)
        if pa.types.is_timestamp(field.type) and field.type.unit == "us":
            converters.append((index, _to_micros))
        elif pa.types.is_date32(field.type):
            converters.append((index, _to_days))
    return names, converters


def encode_row(record: Mapping[str, Any], names: list[str], converters: list[tuple[int, Any]]) -> tuple:
    """The file columns of ``record`` as a tuple, timestamps as int µs (UTC) and dates as int days.

    ``Table.to_table`` gives the same Arrow values for these ints as for the datetimes and dates.
    """
    row = [record.get(name) for name in names]
    for index, convert in converters:
        row[index] = convert(row[index])
    return tuple(row)


def _order_key(table: Table, value_of):
    """Row order inside a file, over records read by ``value_of(record, column, default=None)``:
    the table's ``sort_by`` columns (nulls last), else its first column; then ``origin``."""
    if table.sort_by:
        columns = (*table.sort_by, "origin")
        return lambda record: tuple((v is None, "" if v is None else v)
                                    for v in (value_of(record, c) for c in columns))
    first = table.columns[0].name
    return lambda record: (str(value_of(record, first)), str(value_of(record, "origin", "")))


def sort_key(table: Table):
    """Row order inside a file, for records as dicts: the table's ``sort_by`` columns (nulls last),
    else its first column; for reproducible files and, with ``sort_by``, tight row-group statistics."""
    return _order_key(table, lambda record, name, default=None: record.get(name, default))


def row_sort_key(table: Table):
    """:func:`sort_key` for rows as :func:`encode_row` makes them (the same order as of their dicts)."""
    index = {name: i for i, name in enumerate(row_codec(table)[0])}

    def value_of(row: tuple, name: str, default: Any = None) -> Any:
        i = index.get(name)
        return default if i is None else row[i]

    return _order_key(table, value_of)


class _WriteGroupFn(beam.DoFn):
    def __init__(self, table: Table, output_root: str, run_id: str, rows_per_file: int):
        self._table = table
        self._root = output_root
        self._run_id = run_id
        self._rows_per_file = rows_per_file

    def process(self, group: tuple[tuple[str, int], Iterable[tuple]]):
        (partition, shard), records = group
        rows = sorted(records, key=row_sort_key(self._table))
        for chunk, start in enumerate(range(0, len(rows), self._rows_per_file)):
            part = rows[start:start + self._rows_per_file]
            path = join(self._root, self._table.name, partition, file_name(self._run_id, shard, chunk))
            write_parquet_rows(self._table, part, path)
            yield {"table": self._table.name, "partition": partition, "path": path, "rows": len(part)}


# Rows cross the shuffle as bytes, encoded once: the runner's grouping then moves bytes instead of
# decoding and re-encoding every nested value of every row.
ROW_CODER = beam.coders.FastPrimitivesCoder()


class _KeyByFileFn(beam.DoFn):
    """record -> ``((partition, shard), ROW_CODER-encoded encode_row(record))``."""

    def __init__(self, table: Table, shards: int, shard_key: str):
        self._table = table
        self._shards = shards
        self._shard_key = shard_key
        self._codec = None

    def setup(self):
        self._codec = row_codec(self._table)
        self._encode = ROW_CODER.get_impl().encode

    def process(self, record: Mapping[str, Any]):
        key = (partition_path(self._table, record), stable_int(str(record.get(self._shard_key))) % self._shards)
        yield key, self._encode(encode_row(record, *self._codec))


class _KeyBatchesByFileFn(_KeyByFileFn):
    """Lists of records -> ``((partition, shard), [encoded rows])``: the rows of a bundle buffered per
    window and file key, emitted in lists of up to ``batch`` rows (at the latest when the bundle ends)."""

    def __init__(self, table: Table, shards: int, shard_key: str, batch: int = 4096):
        super().__init__(table, shards, shard_key)
        self._batch = batch
        self._buffers: dict = {}

    def start_bundle(self):
        self._buffers = {}  # window -> {file key: encoded rows}

    def process(self, records: list[Mapping[str, Any]], window=beam.DoFn.WindowParam):
        buffers = self._buffers.get(window)
        if buffers is None:
            buffers = self._buffers[window] = {}
        table, shards, shard_key, encode, codec = self._table, self._shards, self._shard_key, self._encode, self._codec
        for record in records:
            key = (partition_path(table, record), stable_int(str(record.get(shard_key))) % shards)
            rows = buffers.get(key)
            if rows is None:
                rows = buffers[key] = []
            rows.append(encode(encode_row(record, *codec)))
            if len(rows) >= self._batch:
                yield key, rows
                buffers[key] = []

    def finish_bundle(self):
        for window, buffers in self._buffers.items():
            for key, rows in buffers.items():
                if rows:
                    yield WindowedValue((key, rows), window.max_timestamp(), [window])
        self._buffers = {}


class _DecodeRowsFn(beam.DoFn):
    """``(key, encoded rows)`` -> ``(key, rows)``: the rows as :func:`encode_row` made them (tuples in
    file-column order), once per group (``batched``: the group's values are lists of encoded rows)."""

    def __init__(self, table: Table, batched: bool = False):
        self._table = table
        self._batched = batched

    def setup(self):
        self._decode = ROW_CODER.get_impl().decode

    def process(self, group):
        key, rows = group
        if self._batched:
            rows = [row for batch in rows for row in batch]
        yield key, RecordBatch(map(self._decode, rows))


class WriteTable(beam.PTransform):
    """Write records of ``table`` under ``<output_root>/<table.name>/<partitions>/``.

    Records are dicts with the table's columns (``batched``: lists of such dicts). Returns a
    PCollection of ``{'table', 'partition', 'path', 'rows'}``, one per file written.
    """

    def __init__(self, table: Table, output_root: str, run_id: str, *, shards: int = 1,
                 rows_per_file: int = 50_000, shard_key: str | None = None, batched: bool = False):
        super().__init__()
        self._batched = batched
        self._table = table
        self._root = output_root
        self._run_id = run_id
        self._shards = shards
        self._rows_per_file = rows_per_file
        self._shard_key = shard_key or table.columns[0].name

    def write_fn(self) -> beam.DoFn:
        """The DoFn that writes one (partition, shard) group; windowed writers override it.

        Its input: ``((partition, shard), rows)``, rows as :func:`encode_row` makes them: tuples of
        the table's file columns (no partition columns) in file-schema order, timestamps as int µs
        (UTC) and dates as int days; sort them with :func:`row_sort_key`, write them with
        :func:`write_parquet_rows`.
        """
        return _WriteGroupFn(self._table, self._root, self._run_id, self._rows_per_file)

    def expand(self, records):
        return (
            records
            | "KeyByFile" >> beam.ParDo((_KeyBatchesByFileFn if self._batched else _KeyByFileFn)(
                self._table, self._shards, self._shard_key))
            | "GroupByFile" >> beam.GroupByKey()
            | "DecodeRows" >> beam.ParDo(_DecodeRowsFn(self._table, self._batched)).with_output_types(
                beam.typehints.Tuple[Any, RecordBatch])
            | "WriteFiles" >> beam.ParDo(self.write_fn())
        )
