"""WriteTable's compact shuffle rows: the file columns as a tuple, timestamps as int µs and dates
as int days. The Parquet written from them must equal the Parquet written from the records."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import FIXED_NOW
from schemas import ARTICLES, DEAD_LETTERS, DUPLICATES
from schemas.article import TIMESTAMP, Column, Table
from transforms.common import RunInfo, dead_letter
from transforms.write import (ROW_CODER, encode_row, row_codec, row_sort_key, sort_key,
                             write_parquet_file, write_parquet_rows)

RUN = RunInfo(run_id="test-rows", ingested_at=FIXED_NOW)
CET = dt.timezone(dt.timedelta(hours=1))
# A table with a date column inside its files and a string partition.
DATED = Table(name="dated", partitions=("part",), doc="test", columns=(
    Column("id", pa.string(), False, ""), Column("day", pa.date32(), True, ""), Column("at", TIMESTAMP, True, ""),
    Column("part", pa.string(), False, "")))


def article(i: int, published_at):
    return {
        "article_id": f"a{i}", "url": None, "canonical_url": None, "guid": None, "source": "files",
        "origin": f"/in/{i}.txt", "title": f"Titel {i}", "summary": None, "body": f"Text {i}", "author": None,
        "categories": ["x"], "published_at": published_at,
        "published_date": published_at.date() if published_at else FIXED_NOW.date(),
        "published_month": (published_at.date() if published_at else FIXED_NOW.date()).isoformat()[:7],
        "date_source": "text", "date_precision": "second", "date_in_future": False, "ingested_at": FIXED_NOW,
        "language": "de", "language_confidence": 0.9, "declared_language": None, "topics": ["t"],
        "topic_evidence": [{"label": "t", "score": 1.5, "terms": ["nato"],
                            "matches": [{"term": "nato", "field": "body", "start": 0, "end": 4}]}],
        "taxonomy_version": "v", "content_hash": f"h{i}", "text_length": 7, "cluster_id": "", "cluster_size": 1,
        "run_id": RUN.run_id, "schema_version": "1", "minhash": b"not a column",
    }


def decode(table, rows):
    names = row_codec(table)[0]
    return [dict(zip(names, row)) for row in rows]


def test_row_holds_file_columns_with_ints_for_times():
    names, _ = row_codec(ARTICLES)
    assert names == [f.name for f in ARTICLES.file_schema]
    assert "published_month" not in names and "minhash" not in names
    assert "language" in names and "published_date" in names  # sorted columns inside the files
    row = encode_row(article(1, dt.datetime(1970, 1, 1, 1, 0, 0, 5, tzinfo=CET)), *row_codec(ARTICLES))
    assert row[names.index("published_at")] == 5  # 01:00 at UTC+1 is the epoch, plus 5 µs
    assert row[names.index("ingested_at")] == int(FIXED_NOW.timestamp()) * 1_000_000
    names, _ = row_codec(DUPLICATES)
    assert "ingested_date" not in names


def test_parquet_from_rows_equals_parquet_from_records(tmp_path):
    """Aware (UTC and not), naive (read as UTC), missing and pre-epoch times; dead letters' bytes."""
    records = [article(0, dt.datetime(2026, 1, 6, 9, 30, 1, 123456, tzinfo=dt.timezone.utc)),
               article(1, dt.datetime(2026, 1, 6, 23, 59, tzinfo=CET)),
               article(2, dt.datetime(2026, 1, 6, 8, 0)),
               article(3, None),
               article(4, dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc))]
    dead = [dead_letter(source="files", origin="/in/x.bin", stage="read", error="binary", raw=b"\x00\xff",
                        run=RUN, payload_cap=100)]
    dated = [{"id": "x", "day": dt.date(2026, 1, 6), "at": dt.datetime(2026, 1, 6, 1, tzinfo=CET), "part": "p"},
             {"id": "y", "day": dt.date(1969, 12, 31), "at": None, "part": "p"},
             {"id": "z", "day": None, "at": dt.datetime(1900, 1, 1), "part": "p"}]
    assert encode_row(dated[1], *row_codec(DATED)) == ("y", -1, None)
    for table, rows in ((ARTICLES, records), (DEAD_LETTERS, dead), (DATED, dated)):
        direct, compact = tmp_path / f"{table.name}-direct.parquet", tmp_path / f"{table.name}-compact.parquet"
        write_parquet_file(table, rows, str(direct))
        codec = row_codec(table)
        write_parquet_file(table, decode(table, [encode_row(r, *codec) for r in rows]), str(compact))
        assert pq.read_table(compact).equals(pq.read_table(direct), check_metadata=True)
        assert pq.read_table(direct).num_rows == len(rows)
        # The writers' path: the rows as tuples, no dicts.
        tuples = tmp_path / f"{table.name}-tuples.parquet"
        write_parquet_rows(table, [encode_row(r, *codec) for r in rows], str(tuples))
        assert pq.read_table(tuples).equals(pq.read_table(direct), check_metadata=True)
    assert ARTICLES.rows_to_table([]).equals(ARTICLES.to_table([]))


def test_rows_sort_as_their_records():
    """``row_sort_key`` on the tuples gives the order ``sort_key`` gives the dicts, for sorted tables
    (nulls last), tables sorted by their first column, and tables without an ``origin`` column."""
    import random

    rng = random.Random(5)
    records = [article(i, None if i % 4 == 0 else dt.datetime(2026, 1, 1 + i % 3, tzinfo=dt.timezone.utc))
               for i in range(40)]
    for i, record in enumerate(records):
        record["language"] = None if i % 7 == 0 else rng.choice(["de", "en", "und"])
        record["origin"] = rng.choice(["/b", "/a", "/c"])
    dead = [dead_letter(source="files", origin=rng.choice(["/z", "/y", "/y"]), stage="read", error=str(i),
                        raw=b"", run=RUN, payload_cap=10) for i in range(12)]
    dated = [{"id": rng.choice(["b", "a", None]), "day": None, "at": None, "part": "p"} for _ in range(12)]
    for table, rows in ((ARTICLES, records), (DEAD_LETTERS, dead), (DATED, dated)):
        rng.shuffle(rows)
        codec = row_codec(table)
        by_dict = [encode_row(r, *codec) for r in sorted(rows, key=sort_key(table))]
        by_row = sorted((encode_row(r, *codec) for r in rows), key=row_sort_key(table))
        assert by_row == by_dict, table.name
        assert len({repr(r) for r in by_row}) > 1


def test_rows_survive_the_shuffle_coder():
    """The row coder round-trips the compact row exactly; no value in it needs pickling."""
    row = encode_row(article(1, dt.datetime(2026, 1, 6, 9, tzinfo=CET)), *row_codec(ARTICLES))
    assert ROW_CODER.decode(ROW_CODER.encode(row)) == row
    assert not any(isinstance(v, (dt.date, dt.datetime)) for v in row)
