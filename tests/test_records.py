"""The typed article record is generated from schemas.ARTICLES and matches real pipeline rows."""

from __future__ import annotations

import datetime as dt
import typing

from conftest import FIXED_NOW

from schemas import ARTICLES, ArticleRecord
from transforms.common import RunInfo
from transforms.normalize import to_article


def test_record_keys_are_the_columns():
    assert list(ArticleRecord.__annotations__) == ARTICLES.column_names
    hints = typing.get_type_hints(ArticleRecord)
    assert hints["article_id"] is str
    assert hints["published_at"] == typing.Optional[dt.datetime]
    assert hints["published_date"] is dt.date
    assert set(ArticleRecord.__required_keys__) == set(ARTICLES.column_names)


def test_a_normalized_article_fits_the_record():
    run = RunInfo(run_id="t", ingested_at=FIXED_NOW)
    article = to_article({"source": "files", "origin": "a.txt", "title": "Titel", "body": "Ein Text über Nato."},
                         run, 1, 0)
    hints = typing.get_type_hints(ArticleRecord)
    for key, value in article.items():
        if key not in hints:
            continue  # steps add their columns later (language, topics, cluster) or carry internal keys
        expected = hints[key]
        allowed = typing.get_args(expected) or (expected,)
        assert value is None and type(None) in allowed or isinstance(value, tuple(t for t in allowed if t is not type(None))), \
            f"{key}={value!r} is not {expected}"
