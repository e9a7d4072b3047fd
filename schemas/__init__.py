"""The newsbeam table schemas: the single source of truth for every output column.

The table definitions (:mod:`schemas.article`, which imports pyarrow) load on first use, so
``schemas.config`` and ``__version__`` stay cheap for the command line's start-up.
"""

__version__ = "0.1.0"  # the newsbeam release (pyproject.toml [project] version); run manifests record it

_ARTICLE_NAMES = frozenset({
    "ARTICLE_PARTITIONS", "ARTICLES", "DEAD_LETTERS", "DEDUP_INDEX", "DUPLICATES", "FEED_STATUS",
    "SCHEMA_VERSION", "TABLES", "Column", "Table", "ArticleRecord",
})
__all__ = sorted(_ARTICLE_NAMES | {"__version__"})


def __getattr__(name: str):
    if name in _ARTICLE_NAMES:
        from schemas import article

        return getattr(article, name)
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
