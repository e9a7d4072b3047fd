"""Idempotent scheduled runs: the cross-run dedup index, read back with DuckDB."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from conftest import SEEDS
from transforms import storage
from transforms.dedup_index import index_size, published_segments


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


def test_replacing_a_run_swaps_its_rows_instead_of_deduplicating(tmp_path, run_pipeline, seeds_glob):
    out = tmp_path / "out"
    first = run_pipeline(out, [seeds_glob], run_id="slot-a")
    again = run_pipeline(out, [seeds_glob], run_id="slot-b", replaces_runs=("slot-a",))
    assert first["counters"]["articles"] == again["counters"]["articles"] == 5
    assert count(out, "articles") == 5
    assert count(out, "articles", "run_id = 'slot-b'") == 5
    assert count(out, "duplicates") == 0
    assert not (out / "_runs" / "slot-a.json").exists() and not (out / "_commits" / "slot-a.json").exists()
    assert index_size(str(out))["rows"] == 5


def _inject(monkeypatch, kind: str, point: str) -> None:
    storage._FAULT_COUNTS.clear()
    monkeypatch.setenv(f"NEWSBEAM_FAULT_{kind}", f"{point}:1")


def test_failure_before_the_commit_point_leaves_nothing_and_the_next_run_reads_again(
        tmp_path, run_pipeline, seeds_glob, monkeypatch):
    out = tmp_path / "out"
    _inject(monkeypatch, "ENOSPC", "commit_record")
    with pytest.raises(Exception, match="No space left"):
        run_pipeline(out, [seeds_glob], run_id="crashed")
    assert count(out, "articles") == 0
    assert (out / "_staging" / "crashed").exists()
    assert published_segments(str(out)) == []
    monkeypatch.delenv("NEWSBEAM_FAULT_ENOSPC")
    retry = run_pipeline(out, [seeds_glob], run_id="retry")
    assert retry["recovered"] == {"rolled_back": ["crashed"]}
    assert retry["counters"]["articles"] == 5 and count(out, "articles") == 5
    assert count(out, "duplicates") == 0 and index_size(str(out))["rows"] == 5
    assert not (out / "_staging").exists() or not list((out / "_staging").iterdir())


def test_failure_after_the_commit_point_is_finished_by_the_next_run(tmp_path, run_pipeline, seeds_glob,
                                                                     monkeypatch):
    """The crash window that lost whole runs: index published, manifest not written."""
    out = tmp_path / "out"
    _inject(monkeypatch, "ENOSPC", "manifest")
    with pytest.raises(Exception, match="No space left"):
        run_pipeline(out, [seeds_glob], run_id="crashed")
    assert not (out / "_runs" / "crashed.json").exists() and (out / "_commits" / "crashed.json").exists()
    monkeypatch.delenv("NEWSBEAM_FAULT_ENOSPC")
    retry = run_pipeline(out, [seeds_glob], run_id="retry")
    assert retry["recovered"] == {"rolled_forward": ["crashed"]}
    assert json.loads((out / "_runs" / "crashed.json").read_text())["status"] == "committed"
    assert retry["counters"]["articles"] == 0 and retry["counters"]["duplicates"] == 5
    assert count(out, "articles") == 5 and count(out, "articles", "run_id = 'crashed'") == 5
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
