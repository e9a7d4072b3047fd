"""Lists of records as one element of a PCollection, with a coder whose size estimate is cheap.

Beam counts the bytes of every PCollection for its metrics: each output samples elements (the
first ten of a bundle, then fewer, apache_beam/runners/worker/opcounters.py) and asks the
PCollection's coder for their encoded size. With the default coder (``FastPrimitivesCoder``) that
walks every record of a list and pickles every datetime and date in it, ~45 µs per article and per
output; a list of 500 articles is one element, so nearly every list is sampled, at every DoFn
output it passes. :class:`RecordBatchCoder` encodes the same lists with pickle when a runner really
moves them between stages, and estimates their size from the lengths of their text fields.

Use: a DoFn that outputs lists of records yields :class:`RecordBatch` values and its ParDo is
declared ``.with_output_types(RecordBatch)`` (tagged outputs too); the registry maps the type to
the coder.

Lists that cross a shuffle as one value (the dedup join's article batches, the index rows) go as
bytes, :func:`encode_records` once before the GroupByKey and :func:`decode_records` once after it:
the runner's grouping then moves bytes. Pickle, not ``FastPrimitivesCoder``, which pickles each
datetime and date on its own (per record, 512 articles: ~100 µs with ``dedupe.pack``/``unpack``
around it against ~28 µs; index rows ~57 against ~7 µs; docs/bench.md round 8).
"""

from __future__ import annotations

import pickle
from typing import Any, Sequence

import apache_beam as beam

# Per record and per field beyond the text lengths: dict entry, key and small values.
_RECORD_OVERHEAD = 24
_FIELD_OVERHEAD = 12
# Records measured per estimate (Beam samples the size of a list at nearly every output it passes).
_SAMPLE = 8


class RecordBatch(list):
    """A list of records (dicts or tuples) that moves through the graph as one element."""

    __slots__ = ()


def encode_records(records: list) -> bytes:
    """A list of records (any picklable values, time zones kept) as bytes for a shuffle."""
    return pickle.dumps(records, pickle.HIGHEST_PROTOCOL)


def decode_records(encoded: bytes) -> list:
    """The list :func:`encode_records` encoded."""
    return pickle.loads(encoded)


def _record_size(record: Any) -> int:
    values = record.values() if isinstance(record, dict) else record if isinstance(record, tuple) else (record,)
    total = _RECORD_OVERHEAD
    for value in values:
        kind = type(value)
        total += _FIELD_OVERHEAD + (len(value) if kind is str or kind is bytes else 0)
    return total


def estimated_size(records: Sequence[Any]) -> int:
    """Approximate encoded size of ``records``: the lengths of their ``str`` and ``bytes`` values
    (top level of dicts and tuples) plus a fixed overhead per record and field, measured on at most
    ``_SAMPLE`` records spread over the list and scaled to its length."""
    count = len(records)
    if count <= _SAMPLE:
        return sum(map(_record_size, records))
    step = count // _SAMPLE
    return sum(_record_size(records[i * step]) for i in range(_SAMPLE)) * count // _SAMPLE


class RecordBatchCoder(beam.coders.Coder):
    """Pickle for :class:`RecordBatch` (decodes to a RecordBatch); the size estimate is
    :func:`estimated_size`, which never encodes. Not deterministic: never a grouping key."""

    def encode(self, value: list) -> bytes:
        return encode_records(list(value))

    def decode(self, encoded: bytes) -> RecordBatch:
        return RecordBatch(decode_records(encoded))

    def estimate_size(self, value: list) -> int:
        return estimated_size(value)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return RecordBatch

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


beam.coders.registry.register_coder(RecordBatch, RecordBatchCoder)

__all__ = ["RecordBatch", "RecordBatchCoder", "decode_records", "encode_records", "estimated_size"]
