"""The newsbeam table schemas: the single source of truth for every output column."""

__version__ = "0.1.0"  # the newsbeam release (pyproject.toml [project] version); run manifests record it

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
