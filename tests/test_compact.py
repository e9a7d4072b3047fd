"""compact_files: small Parquet files of one partition merged into a few big ones (pure: inputs untouched)."""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow.parquet as pq
import pytest

from schemas import ARTICLES, SCHEMA_VERSION
from tests.test_write import make_articles
from transforms.write import compact_files, file_name, sort_key, write_parquet_file


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(paths):
    return sorted(duckdb.sql(f"SELECT article_id, language, published_date, cluster_size FROM "
                             f"read_parquet({[str(p) for p in paths]!r})").fetchall())


@pytest.fixture
def partition(tmp_path):
    folder = tmp_path / "articles" / "published_month=2026-01"
    folder.mkdir(parents=True)
    articles = [a for a in make_articles() if a["published_month"] == "2026-01"]
    assert len(articles) == 3
    runs = []
    for i, article in enumerate(articles):  # three scheduled runs, one small file each
        path = folder / file_name(f"run{i}", 0, 0)
        write_parquet_file(ARTICLES, [{**article, "run_id": f"run{i}"}], str(path))
        runs.append(path)
    return folder, runs, articles


def test_merges_a_partition_into_one_sorted_file_and_leaves_inputs_alone(partition):
    folder, inputs, articles = partition
    before = {p: _digest(p) for p in inputs}
    target = folder / file_name("compact-1", 0, 0)
    [descriptor] = compact_files(ARTICLES, [str(p) for p in inputs], [str(target)])
    assert descriptor == {"table": "articles", "partition": "published_month=2026-01", "path": str(target), "rows": 3}
    assert {p: _digest(p) for p in inputs} == before  # inputs are only read
    assert _rows([target]) == _rows(inputs)
    table = pq.read_table(target)
    assert table.schema.metadata[b"newsbeam.schema_version"] == SCHEMA_VERSION.encode()
    assert table.schema.remove_metadata() == ARTICLES.file_schema.remove_metadata()
    got = table.to_pylist()
    assert [r["article_id"] for r in got] == [r["article_id"] for r in sorted(got, key=sort_key(ARTICLES))]
    assert [r["language"] for r in got] == sorted(r["language"] for r in got)


def test_splits_into_the_given_targets_in_order(partition):
    folder, inputs, _ = partition
    targets = [str(folder / file_name("compact-2", 0, i)) for i in range(2)]
    descriptors = compact_files(ARTICLES, [str(p) for p in inputs], targets)
    assert [d["rows"] for d in descriptors] == [2, 1]
    first, second = (pq.read_table(t).to_pylist() for t in targets)
    key = sort_key(ARTICLES)
    assert key(first[-1]) <= key(second[0])
    assert _rows(targets) == _rows(inputs)


def test_an_older_file_without_a_column_reads_as_null(partition, tmp_path):
    folder, inputs, _ = partition
    old = pq.read_table(inputs[0]).drop_columns(["cluster_size"])
    pq.write_table(old, inputs[0])
    target = folder / file_name("compact-3", 0, 0)
    compact_files(ARTICLES, [str(p) for p in inputs], [str(target)])
    sizes = sorted((r["article_id"], r["cluster_size"]) for r in pq.read_table(target).to_pylist())
    assert sum(size is None for _, size in sizes) == 1 and sum(size == 1 for _, size in sizes) == 2


def test_refuses_unsafe_plans(partition, tmp_path):
    folder, inputs, articles = partition
    with pytest.raises(ValueError, match="new files"):
        compact_files(ARTICLES, [str(p) for p in inputs], [str(inputs[0])])
    other = tmp_path / "articles" / "published_month=2025-04"
    other.mkdir()
    elsewhere = other / file_name("x", 0, 0)
    write_parquet_file(ARTICLES, articles[:1], str(elsewhere))
    with pytest.raises(ValueError, match="several partitions"):
        compact_files(ARTICLES, [str(inputs[0]), str(elsewhere)], [str(folder / "part-c-00000-000.parquet")])
    with pytest.raises(ValueError):
        compact_files(ARTICLES, [], [str(folder / "part-c-00000-000.parquet")])
    assert not (folder / "part-c-00000-000.parquet").exists()
