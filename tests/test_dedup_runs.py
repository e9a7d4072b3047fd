"""Idempotent scheduled runs: the cross-run dedup index, read back with DuckDB."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from conftest import SEEDS
from transforms.dedup_index import PublishIndex, index_size, published_segments


def count(output, table: str, where: str = "true") -> int:
    if not list((output / table).glob("**/*.parquet")):
        return 0
    return duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{output}/{table}/**/*.parquet', hive_partitioning=true) WHERE {where}"
    ).fetchone()[0]


@pytest.fixture
def overlapping_input(tmp_path):
    """Three seeds, a near copy of seed 002 and one article no earlier run has seen."""
    folder = tmp_path / "overlap"
    folder.mkdir()
    for seed in sorted(SEEDS.glob("*.txt"))[:3]:
        shutil.copy(seed, folder / seed.name)
    seed_002 = (SEEDS / "002_6eb87065acbebc2f.txt").read_text(encoding="utf-8")
    (folder / "near_002.txt").write_text("Paris: Gipfel der Unterstützer\n" + seed_002[:5000], encoding="utf-8")
    (folder / "new.txt").write_text(
        "Hafenstreik in Rotterdam\nDie Hafenarbeiter in Rotterdam legen seit Montag die Arbeit nieder. "
        "Die Gewerkschaft fordert höhere Löhne und bessere Schichtpläne; Reedereien leiten Schiffe nach "
        "Antwerpen um.", encoding="utf-8")
    return str(folder / "*.txt")


def test_three_runs_then_overlapping_input_keep_each_story_once(tmp_path, run_pipeline, seeds_glob,
                                                                  overlapping_input):
    out = tmp_path / "out"
    manifests = [run_pipeline(out, [seeds_glob], run_id=f"slot-{i}") for i in range(3)]
    assert [m["counters"]["articles"] for m in manifests] == [5, 0, 0]
    assert [m["counters"]["duplicates"] for m in manifests] == [0, 5, 5]
    assert count(out, "articles") == 5

    overlap = run_pipeline(out, [overlapping_input], run_id="slot-overlap")
    assert overlap["counters"]["articles"] == 1
    assert overlap["counters"]["duplicates"] == 4
    assert count(out, "articles") == 6
    assert count(out, "articles", "title = 'Hafenstreik in Rotterdam'") == 1
    # Every later copy points at the article an earlier run wrote.
    written = {r[0] for r in duckdb.sql(
        f"SELECT article_id FROM read_parquet('{out}/articles/**/*.parquet')").fetchall()}
    pointed = {r[0] for r in duckdb.sql(
        f"SELECT duplicate_of FROM read_parquet('{out}/duplicates/**/*.parquet')").fetchall()}
    assert pointed <= written
    near = duckdb.sql(f"SELECT method, similarity FROM read_parquet('{out}/duplicates/**/*.parquet') "
                      f"WHERE origin LIKE '%near_002.txt'").fetchall()
    assert len(near) == 1 and near[0][0] == "minhash" and near[0][1] >= 0.75
    assert count(out, "duplicates") == 5 + 5 + 4


def test_replaying_the_same_run_id_replaces_instead_of_deduplicating(tmp_path, run_pipeline, seeds_glob):
    out = tmp_path / "out"
    first = run_pipeline(out, [seeds_glob], run_id="slot-a")
    again = run_pipeline(out, [seeds_glob], run_id="slot-a")
    assert first["counters"]["articles"] == again["counters"]["articles"] == 5
    assert count(out, "articles") == 5
    assert count(out, "duplicates") == 0


def test_crash_after_writing_articles_before_the_index_loses_and_repeats_nothing(
        tmp_path, run_pipeline, seeds_glob, monkeypatch):
    out = tmp_path / "out"

    def crash(self, files, counts):
        raise RuntimeError("simulated crash before the dedup index is published")

    monkeypatch.setattr(PublishIndex, "__call__", crash)
    with pytest.raises(Exception, match="simulated crash"):
        run_pipeline(out, [seeds_glob], run_id="crashed")
    # The crashed run's articles are on disk, but it never committed.
    assert count(out, "articles") == 5
    assert not (out / "_runs" / "crashed.json").exists()
    assert published_segments(str(out)) == []

    monkeypatch.undo()
    retry = run_pipeline(out, [seeds_glob], run_id="retry")
    assert retry["rolled_back_files"] >= 3
    assert retry["counters"]["articles"] == 5
    assert count(out, "articles") == 5
    assert count(out, "articles", "run_id = 'crashed'") == 0
    assert count(out, "duplicates") == 0
    assert index_size(str(out))["rows"] == 5


def test_index_is_compacted_and_trimmed_to_the_window(tmp_path, run_pipeline, seeds_glob):
    out = tmp_path / "out"
    for i in range(4):
        run_pipeline(out, [seeds_glob], run_id=f"slot-{i}", dedup={"compact_after_segments": 2})
    size = index_size(str(out))
    assert size["segments"] <= 2
    assert size["rows"] == 5
    manifest = json.loads((out / "_runs" / "slot-3.json").read_text())
    assert manifest["dedup_index"]["segments"] == size["segments"]
