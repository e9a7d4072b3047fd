"""The newsbeam table schemas: the single source of truth for every output column."""

from schemas.article import (  # noqa: F401
    ARTICLE_PARTITIONS,
    ARTICLES,
    DEAD_LETTERS,
    DEDUP_INDEX,
    DUPLICATES,
    FEED_STATUS,
    SCHEMA_VERSION,
    TABLES,
    Column,
    Table,
)
