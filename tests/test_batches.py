"""The batched forms of the per-article steps (lists of articles as elements): the same output as
the per-article transforms, on the in-process runner."""

from __future__ import annotations

import hashlib

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS, make_settings, make_test_pipeline
from pipeline.batch import article_counts
from schemas import ARTICLES
from transforms import enrich as enrich_module
from transforms.common import RunInfo
from transforms.enrich import EnrichArticles, cached
from transforms.language import LanguageTagger, tag_language
from transforms.normalize import to_article
from transforms.topics import CompiledTaxonomy, label_article, load_taxonomy
from transforms.write import WriteTable

RUN = RunInfo("batches", FIXED_NOW)


def seed_articles() -> list[dict]:
    return [to_article({"source": "files", "origin": str(p), "title": p.stem, "body": p.read_text(encoding="utf-8")},
                       RUN) for p in sorted(SEEDS.glob("*.txt"))]


def settings():
    return make_settings("/nonexistent")


def _tags(article) -> str:
    return repr((article["origin"], article["language"], article["language_confidence"], article["language_source"],
                 article["topics"], article["topic_evidence"], article["taxonomy_version"]))


def test_enrich_over_lists_equals_language_then_topics_per_article():
    """The batched transform's output equals what the per-article cores give, list by list."""
    s = settings()
    taxonomy = load_taxonomy(s.topics)
    articles = seed_articles()
    assert len(articles) >= 5
    tagger = LanguageTagger(**s.language)
    compiled = CompiledTaxonomy(taxonomy)
    expected = [_tags(label_article(tag_language(a, tagger), compiled)) for a in articles]
    assert len({e for e in expected}) == len(articles) and any("'de'" in e for e in expected)
    with make_test_pipeline() as p:
        batched = (p | beam.Create([articles[:2], articles[2:], []]) | EnrichArticles(s.language, taxonomy)
                   | beam.FlatMap(lambda batch: [_tags(a) for a in batch]))
        assert_that(batched, equal_to(expected))


def test_cached_builds_once_per_settings_and_keeps_the_latest():
    enrich_module._CACHE.clear()
    built = []
    first = cached("thing", {"a": 1}, lambda: built.append(1) or object())
    assert cached("thing", {"a": 1}, lambda: built.append(2) or object()) is first and built == [1]
    other = cached("thing", {"a": 2}, lambda: built.append(3) or object())
    assert other is not first and built == [1, 3]
    assert cached("thing", {"a": 1}, lambda: built.append(4) or object()) is not first and built == [1, 3, 4]
    enrich_module._CACHE.clear()


def _files(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.parquet")}


def test_batched_write_writes_the_same_files(tmp_path):
    articles = []
    for i, article in enumerate(seed_articles() * 4):
        articles.append({**article, "article_id": f"id-{i:03d}", "origin": f"/in/{i}.txt", "language": "de en".split()[i % 2]})
    one, batched = tmp_path / "one", tmp_path / "batched"
    with make_test_pipeline() as p:
        _ = p | "One" >> beam.Create(articles) | "W1" >> WriteTable(ARTICLES, str(one), "r", shards=2, rows_per_file=3)
        lists = [articles[i:i + 5] for i in range(0, len(articles), 5)]
        _ = (p | "Lists" >> beam.Create(lists)
             | "W2" >> WriteTable(ARTICLES, str(batched), "r", shards=2, rows_per_file=3, batched=True))
    files = _files(one)
    assert len(files) > 4 and files == _files(batched)


def test_batched_counts_equal_per_article_counts():
    articles = [{**a, "language": "de", "topics": ["x"] if i % 2 else []} for i, a in enumerate(seed_articles())]
    expected = {}
    for a in articles:
        for key in ("articles", f"language:{a['language']}", *(f"topic:{t}" for t in a["topics"]),
                    f"published_date:{a['published_date'].isoformat()}"):
            expected[key] = expected.get(key, 0) + 1
    with make_test_pipeline() as p:
        counts = article_counts(p | beam.Create([articles[:3], articles[3:]]), batched=True)
        assert_that(counts | beam.CombinePerKey(sum), equal_to(sorted(expected.items())))


def test_taxonomy_is_read_once_while_the_file_stays_the_same(tmp_path):
    import os

    from pipeline.batch import taxonomy_of

    source = settings().topics
    from schemas.config import resolve_config_path

    path = tmp_path / "topics.yaml"
    text = open(resolve_config_path(source), encoding="utf-8").read()
    path.write_text(text, encoding="utf-8")
    first = taxonomy_of(str(path))
    assert first == load_taxonomy(str(path))
    first["labels"].clear()  # a caller's change does not reach the next caller
    assert taxonomy_of(str(path)) == load_taxonomy(str(path))
    version = first["version"]
    changed = text.replace(f"version: \"{version}\"", "version: changed-for-test", 1)
    assert changed != text
    path.write_text(changed, encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert taxonomy_of(str(path))["version"] == "changed-for-test"
