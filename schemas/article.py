"""Output tables of newsbeam, defined once.

Every writer, reader, test and document takes its columns from here. A table is
a list of :class:`Column` plus the Hive partition columns it is laid out by;
partition columns live in the folder names, not inside the Parquet files.

Bump ``SCHEMA_VERSION`` on any change a reader could notice (added, removed or
retyped column). Adding a nullable column is a minor bump; anything else is a
major bump.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = "2.0.0"

TIMESTAMP = pa.timestamp("us", tz="UTC")

MATCH = pa.struct(
    [
        pa.field("term", pa.string()),
        pa.field("field", pa.string()),
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
    ]
)

TOPIC_EVIDENCE = pa.struct(
    [
        pa.field("label", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("terms", pa.list_(pa.string())),
        pa.field("matches", pa.list_(MATCH)),
    ]
)


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    doc: str

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


@dataclasses.dataclass(frozen=True)
class Table:
    """A named output table: its folder under the output root, columns and partitions.

    ``sort_by``: row order inside each file (Parquet row-group min/max statistics of these
    columns then let readers skip row groups); empty = by the first column."""

    name: str
    columns: tuple[Column, ...]
    partitions: tuple[str, ...]
    doc: str
    sort_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def file_schema(self) -> pa.Schema:
        """Schema of the Parquet files: every column except the Hive partition columns."""
        return pa.schema(
            [c.field() for c in self.columns if c.name not in self.partitions],
            metadata={b"newsbeam.table": self.name.encode(), b"newsbeam.schema_version": SCHEMA_VERSION.encode()},
        )

    @property
    def schema(self) -> pa.Schema:
        """Logical schema: file columns plus partition columns, as DuckDB shows them."""
        return pa.schema([c.field() for c in self.columns])

    def to_table(self, records: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Build a Parquet-ready Arrow table (partition columns dropped) from plain records."""
        rows = list(records)
        schema = self.file_schema
        arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)

    def rows_to_table(self, rows: list[tuple]) -> pa.Table:
        """:meth:`to_table` for rows given as tuples in file-schema order (no dict per row)."""
        schema = self.file_schema
        if not rows:
            return schema.empty_table()
        arrays = [pa.array(column, type=f.type) for column, f in zip(zip(*rows), schema)]
        return pa.Table.from_arrays(arrays, schema=schema)


def _c(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> Column:
    return Column(name, type_, nullable, doc)


ARTICLES = Table(
    name="articles",
    # One folder per publication month; date and language are sorted columns inside the files (row-group
    # statistics prune them): a few big files instead of one per day and language (docs/bench.md).
    partitions=("published_month",),
    sort_by=("language", "published_date", "article_id"),
    doc="One row per story kept after deduplication.",
    columns=(
        _c("article_id", pa.string(), "Stable id: hash of the canonical URL, else the feed GUID, else the normalized content.", False),
        _c("url", pa.string(), "Link as published (feeds); null for files."),
        _c("canonical_url", pa.string(), "URL with scheme/host lower-cased, default port, fragment and tracking parameters removed."),
        _c("guid", pa.string(), "Feed entry GUID/id when the source has one."),
        _c("source", pa.string(), "Feed name, or the input name for files.", False),
        _c("origin", pa.string(), "Where the item was read from: file path or feed URL.", False),
        _c("title", pa.string(), "Title, when the source has one."),
        _c("summary", pa.string(), "Lead paragraph or feed summary, plain text."),
        _c("body", pa.string(), "Full text after the title, plain text, NFC, whitespace normalized.", False),
        _c("author", pa.string(), "Author as given by the feed."),
        _c("categories", pa.list_(pa.string()), "Categories/tags given by the feed."),
        _c("published_at", TIMESTAMP, "Publication time in UTC; null when the source gives none."),
        _c("published_date", pa.date32(), "Publication date (UTC), or the ingestion date when there is none; files are sorted by language, then this.", False),
        _c("published_month", pa.string(), "Partition: month of published_date, YYYY-MM.", False),
        _c("date_source", pa.string(), "Where published_date came from: text, entry:<field> or feed:<field> (published, updated, created), page (the article page, htmldate), or ingested.", False),
        _c("date_precision", pa.string(), "Precision of published_at: second, day, month, year, or none.", False),
        _c("date_in_future", pa.bool_(), "True when the source's date lies after ingestion (kept, flagged)."),
        _c("date_warning", pa.string(), "What is doubtful about the date: unparsed string, time zone assumed, feed's date used, in the future, no date; null when nothing is."),
        _c("ingested_at", TIMESTAMP, "Start time of the run that ingested the article.", False),
        _c("language", pa.string(), "ISO 639-1 code from language detection, or 'und'; files are sorted by it.", False),
        _c("language_confidence", pa.float64(), "Probability of the detected language (0-1)."),
        _c("declared_language", pa.string(), "Language the item or feed declares (dc:language, xml:lang, <language>), ISO 639-1."),
        _c("body_source", pa.string(), "Feed element the body came from: content:encoded, atom:content, yandex:full-text, description, atom:summary, dc:description, itunes:summary."),
        _c("language_source", pa.string(), "Where the language tag came from: detected, declared (feed/HTML) or both; "
                                           "null when it is 'und'."),
        _c("topics", pa.list_(pa.string()), "Topic labels whose score reached the label threshold.", False),
        _c("topic_evidence", pa.list_(TOPIC_EVIDENCE), "Per label: score, matched terms and their character offsets.", False),
        _c("taxonomy_version", pa.string(), "Version of configs/topics.yaml that labeled the row.", False),
        _c("content_hash", pa.string(), "Hash of the normalized title and body (exact-duplicate key).", False),
        _c("text_length", pa.int32(), "Characters of title plus body.", False),
        _c("cluster_id", pa.string(), "Near-duplicate cluster: the article_id of the cluster's canonical member.", False),
        _c("cluster_size", pa.int32(), "Number of copies of the story seen in this run (1 = unique).", False),
        _c("run_id", pa.string(), "Run that wrote the row.", False),
        _c("schema_version", pa.string(), "Version of this schema.", False),
        _c("text_source", pa.string(), "Where body came from: page (the article page, extracted) or feed (the feed's "
                                        "own text); null for files."),
        _c("fetch_status", pa.string(), "Outcome of the page fetch: ok, disabled, cached, robots_disallowed, http_404, "
                                         "timeout, too_large, not_html, empty_extraction, ... (docs/fulltext.md); "
                                         "null for files."),
        _c("page_canonical_url", pa.string(), "Canonical URL the page declares (<link rel=canonical>, else og:url)."),
        _c("page_fields", pa.list_(pa.string()), "Fields taken from the page, as field:source "
                                                  "(e.g. published_at:htmldate, declared_language:html_lang)."),
    ),
)

DUPLICATES = Table(
    name="duplicates",
    partitions=("ingested_date",),
    doc="One row per input item not written to articles because it copies another.",
    columns=(
        _c("article_id", pa.string(), "Id the duplicate would have had.", False),
        _c("duplicate_of", pa.string(), "article_id of the kept (canonical) article.", False),
        _c("similarity", pa.float64(), "1.0 for exact duplicates, estimated Jaccard for near duplicates.", False),
        _c("method", pa.string(), "id, content_hash or minhash.", False),
        _c("source", pa.string(), "Source of the duplicate.", False),
        _c("origin", pa.string(), "File path or feed URL of the duplicate.", False),
        _c("url", pa.string(), "Link of the duplicate, when it has one."),
        _c("title", pa.string(), "Title of the duplicate."),
        _c("content_hash", pa.string(), "Content hash of the duplicate.", False),
        _c("published_at", TIMESTAMP, "Publication time of the duplicate."),
        _c("ingested_at", TIMESTAMP, "Start time of the run.", False),
        _c("ingested_date", pa.date32(), "Partition: date of ingested_at.", False),
        _c("run_id", pa.string(), "Run that saw the duplicate.", False),
        _c("schema_version", pa.string(), "Version of this schema.", False),
    ),
)

DEAD_LETTERS = Table(
    name="errors",
    partitions=("ingested_date",),
    doc="Dead letters: inputs that could not become articles, with the raw payload and the reason.",
    columns=(
        _c("source", pa.string(), "Input or feed name.", False),
        _c("origin", pa.string(), "File path or feed URL.", False),
        _c("stage", pa.string(), "Step that rejected the input: read, parse, fetch, feed_parse, ...", False),
        _c("error", pa.string(), "Why, in words.", False),
        _c("raw", pa.binary(), "Raw payload, truncated to the configured cap."),
        _c("raw_size", pa.int64(), "Size of the full payload in bytes, before truncation."),
        _c("ingested_at", TIMESTAMP, "Start time of the run.", False),
        _c("ingested_date", pa.date32(), "Partition: date of ingested_at.", False),
        _c("run_id", pa.string(), "Run that rejected the input.", False),
        _c("schema_version", pa.string(), "Version of this schema.", False),
    ),
)

FEED_STATUS = Table(
    name="feed_status",
    partitions=("ingested_date",),
    doc="One row per feed per run: how fetching and parsing went.",
    columns=(
        _c("feed", pa.string(), "Feed name from the feeds file.", False),
        _c("url", pa.string(), "Feed URL.", False),
        _c("final_url", pa.string(), "URL after redirects."),
        _c("run_id", pa.string(), "Run.", False),
        _c("http_status", pa.int32(), "HTTP status of the final response; null when none arrived."),
        _c("outcome", pa.string(), "ok, not_modified, unchanged, failed, skipped_backoff or dead_letter.", False),
        _c("error", pa.string(), "Failure reason or feedparser's bozo reason."),
        _c("entries_seen", pa.int32(), "Entries in the parsed feed.", False),
        _c("new_articles", pa.int32(), "Entries that became articles (before cross-run dedup).", False),
        _c("bytes", pa.int64(), "Body bytes received.", False),
        _c("latency_ms", pa.float64(), "Time to fetch, in milliseconds."),
        _c("etag", pa.string(), "ETag validator kept for the next run."),
        _c("last_modified", pa.string(), "Last-Modified validator kept for the next run."),
        _c("consecutive_failures", pa.int32(), "Failures in a row, for backoff.", False),
        _c("next_attempt_at", TIMESTAMP, "Earliest time the feed is fetched again after failures."),
        _c("fetched_at", TIMESTAMP, "When the fetch started.", False),
        _c("ingested_date", pa.date32(), "Partition: date of the run.", False),
        _c("schema_version", pa.string(), "Version of this schema.", False),
    ),
)

DEDUP_INDEX = Table(
    name="dedup_index",
    partitions=(),
    doc="Cross-run dedup state under _state/dedup_index/: one row per article written, for later runs.",
    columns=(
        _c("article_id", pa.string(), "Id of the written article.", False),
        _c("content_hash", pa.string(), "Its content hash (exact-duplicate key).", False),
        _c("minhash", pa.binary(), "MinHash signature (16-bit minima, little-endian) for near duplicates.", False),
        _c("published_at", TIMESTAMP, "Its publication time, for the canonical order."),
        _c("text_length", pa.int32(), "Its text length, for the canonical order.", False),
        _c("source", pa.string(), "Its source.", False),
        _c("run_id", pa.string(), "Run that wrote it.", False),
        _c("indexed_at", TIMESTAMP, "Start of that run; entries older than the retention window are dropped.", False),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (ARTICLES, DUPLICATES, DEAD_LETTERS, FEED_STATUS)}
ARTICLE_PARTITIONS = ARTICLES.partitions


def markdown_table(table: Table) -> str:
    """Column reference for the README, generated from the schema."""
    lines = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for c in table.columns:
        kind = "partition " if c.name in table.partitions else ""
        lines.append(f"| `{c.name}` | {kind}{c.type} | {'yes' if c.nullable else 'no'} | {c.doc} |")
    return "\n".join(lines)


# -- typed records -------------------------------------------------------------------------------

def python_type(type_: pa.DataType) -> Any:
    """The Python type of a column's values as the transforms hand them around."""
    import datetime as dt

    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        base: Any = str
    elif pa.types.is_integer(type_):
        base = int
    elif pa.types.is_floating(type_):
        base = float
    elif pa.types.is_boolean(type_):
        base = bool
    elif pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        base = bytes
    elif pa.types.is_timestamp(type_):
        base = dt.datetime
    elif pa.types.is_date(type_):
        base = dt.date
    elif pa.types.is_list(type_):
        base = list
    elif pa.types.is_struct(type_):
        base = dict
    else:
        raise TypeError(f"no Python type for {type_}")
    return base


def record_type(table: Table) -> type:
    """A ``TypedDict`` whose keys and value types are the table's columns (nullable -> Optional)."""
    from typing import Optional, TypedDict

    fields = {c.name: (Optional[python_type(c.type)] if c.nullable else python_type(c.type)) for c in table.columns}
    name = "".join(part.capitalize() for part in table.name.split("_")) + "Record"
    return TypedDict(name, fields)


# The article record as it travels between the steps (a plain dict with these keys). Follow-up:
# annotate the transforms' cores with it (docs/architecture.md, "Records between the steps").
ArticleRecord = record_type(ARTICLES)
DuplicateRecord = record_type(DUPLICATES)
DeadLetterRecord = record_type(DEAD_LETTERS)
