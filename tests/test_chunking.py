"""Large file inputs run as committed chunks (pipeline/chunking.py): real pipelines, real DuckDB.

Input: the five seeds, an empty file (a dead letter), an exact copy and a near copy (the last
paragraph dropped) of seeds that land in other chunks, and an exact copy in a later chunk. With
``read.max_files_per_run: 2`` that is 5 chunks; the result must equal one unchunked run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import duckdb
import pytest

from conftest import FIXED_NOW, SEEDS, make_settings
from analyst.views import connect
from pipeline.chunking import chunk_run_id, literal_pattern, matched_files, split, sum_counters
from pipeline.config import ConfigError
from pipeline.launch import run_once

SEED_FILES = sorted(p.name for p in SEEDS.glob("*.txt"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunk-inputs")
    for name in SEED_FILES:
        shutil.copy(SEEDS / name, folder / name)
    (folder / "w_empty.txt").write_bytes(b"")
    shutil.copy(SEEDS / SEED_FILES[4], folder / "x_copy_004.txt")
    text = (SEEDS / SEED_FILES[2]).read_text(encoding="utf-8").rstrip()
    near = text[:text.rstrip().rfind("\n")].rstrip()  # the last paragraph dropped: shorter, so never kept
    assert 0.8 * len(text) < len(near) < len(text)
    (folder / "y_near_002.txt").write_text(near + "\n", encoding="utf-8")
    shutil.copy(SEEDS / SEED_FILES[0], folder / "z_copy_000.txt")
    return str(folder / "*.txt")


def run(output, pattern, max_files, now=FIXED_NOW):
    return run_once(make_settings(output, [pattern], read={"max_files_per_run": max_files}), now=now)


def rows(output, table: str, columns: str) -> list[tuple]:
    with duckdb.connect() as con:
        return sorted(con.sql(f"SELECT {columns} FROM read_parquet('{output}/{table}/**/*.parquet', "
                              "hive_partitioning = true)").fetchall())


def core(counters: dict) -> dict:
    """Counters that do not depend on the ingestion date (undated articles move to it on a re-run)."""
    return {k: v for k, v in counters.items() if k != "published_date"}


def manifests(output) -> dict[str, dict]:
    folder = os.path.join(output, "_runs")
    return {name[:-5]: json.load(open(os.path.join(folder, name))) for name in sorted(os.listdir(folder))
            if name.endswith(".json")}


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    base = tmp_path_factory.mktemp("chunk-out")
    whole = run(base / "whole", corpus, 0)
    chunked = run(base / "chunked", corpus, 2)
    return base, whole, chunked


def test_pure_helpers():
    assert split(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert split(list("abc"), 0) == [["a", "b", "c"]] == split(list("abc"), 3)
    assert chunk_run_id("files-abc", 7) == "files-abc-c0007"
    assert literal_pattern("/in/a.txt") == "/in/a.txt"
    assert literal_pattern("/in/a[1]*.txt") != "/in/a[1]*.txt"
    total = sum_counters([
        {"inputs": 3, "articles": 2, "duplicates": 1, "dead_letters": 0, "language": {"de": 2}, "balanced": True},
        {"inputs": 2, "articles": 1, "duplicates": 0, "dead_letters": 1, "language": {"de": 1, "en": 0},
         "balanced": True}])
    assert total == {"inputs": 5, "articles": 3, "duplicates": 1, "dead_letters": 1,
                     "language": {"de": 3, "en": 0}, "balanced": True}
    assert sum_counters([{"inputs": 2, "articles": 1, "duplicates": 0, "dead_letters": 0}])["balanced"] is False


def test_glob_characters_in_file_names_are_matched_literally(tmp_path):
    (tmp_path / "a[1].txt").write_text("x")
    (tmp_path / "a1.txt").write_text("x")
    (tmp_path / "sub.txt").mkdir()  # matched too: the read step makes it a dead letter ("a directory")
    assert matched_files([str(tmp_path / "*.txt")]) == sorted([str(tmp_path / "a1.txt"), str(tmp_path / "a[1].txt"),
                                                                str(tmp_path / "sub.txt")])
    assert matched_files([literal_pattern(str(tmp_path / "a[1].txt"))]) == [str(tmp_path / "a[1].txt")]


def test_profile_key_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="read.max_files_per_run"):
        make_settings(tmp_path, ["x"], read={"max_files_per_run": -1})


def test_chunks_give_the_articles_of_one_run(runs):
    base, whole, chunked = runs
    assert "chunks" not in whole
    assert len(chunked["chunks"]) == 5
    articles = rows(base / "chunked", "articles", "article_id")
    assert articles == rows(base / "whole", "articles", "article_id")
    assert len(articles) == len(set(articles)) == 5
    # Every copy, also across chunks, points at the kept article, with the same method as in one run.
    dups = "regexp_extract(origin, '[^/]*$'), duplicate_of, method"
    assert rows(base / "chunked", "duplicates", dups) == rows(base / "whole", "duplicates", dups)
    found = {name: (of, method) for name, of, method in rows(base / "chunked", "duplicates", dups)}
    kept = dict(rows(base / "chunked", "articles", "regexp_extract(origin, '[^/]*$'), article_id"))
    assert found == {"x_copy_004.txt": (kept[SEED_FILES[4]], "id"),
                     "y_near_002.txt": (kept[SEED_FILES[2]], "minhash"),
                     "z_copy_000.txt": (kept[SEED_FILES[0]], "id")}
    assert len(rows(base / "chunked", "errors", "origin")) == 1


def test_parent_manifest_sums_its_committed_chunks(runs):
    base, whole, chunked = runs
    found = manifests(base / "chunked")
    parent = found[chunked["run_id"]]
    assert parent == json.loads(json.dumps(chunked, default=str))
    assert parent["status"] == "committed" and parent["chunks"] == [chunk_run_id(chunked["run_id"], i)
                                                                    for i in range(1, 6)]
    assert sorted(found) == sorted([chunked["run_id"], *parent["chunks"]])
    chunks = [found[c] for c in parent["chunks"]]
    assert all(c["status"] == "committed" and c["parent_run_id"] == parent["run_id"] for c in chunks)
    assert [len(c["inputs"]) for c in chunks] == [2, 2, 2, 2, 1]
    c = parent["counters"]
    assert (c["inputs"], c["articles"], c["duplicates"], c["dead_letters"]) == (9, 5, 3, 1)
    assert c["inputs"] == c["articles"] + c["duplicates"] + c["dead_letters"] and c["balanced"]
    for key in ("inputs", "articles", "duplicates", "dead_letters"):
        assert c[key] == whole["counters"][key] == sum(ch["counters"][key] for ch in chunks)
    assert c["language"] == whole["counters"]["language"]
    assert sorted(f["path"] for f in parent["files"]) == sorted(f["path"] for ch in chunks for f in ch["files"])
    # Article rows carry their chunk's run id.
    assert {r for (r,) in rows(base / "chunked", "articles", "DISTINCT run_id")} <= set(parent["chunks"])


def test_duckdb_views_count_a_chunked_run_once(runs):
    base, _, chunked = runs
    con = connect(str(base / "chunked"))
    (row,) = con.execute("SELECT run_id, status, inputs_read, articles, duplicates, dead_letters, balanced, "
                         "chunks, files FROM runs").fetchall()
    assert row[:7] == (chunked["run_id"], "committed", 9, 5, 3, 1, True)
    assert row[7] == chunked["chunks"] and row[8] == len(chunked["files"])
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 5
    assert con.execute("SELECT count(*) FROM duplicates").fetchone()[0] == 3
    assert con.execute("SELECT sum(size) FROM clusters").fetchone()[0] == 8
    joined = con.execute("SELECT count(*) FROM articles a JOIN runs r ON list_contains(r.chunks, a.run_id)")
    assert joined.fetchone()[0] == 5


def test_rerun_of_the_same_command_adds_nothing_and_removes_nothing(corpus, runs):
    base, _, first = runs
    output = base / "chunked"
    before = rows(output, "articles", "article_id, run_id")
    later = FIXED_NOW + dt.timedelta(days=1)
    again = run(output, corpus, 4, now=later)  # a new run id, split differently
    assert again["run_id"] != first["run_id"] and len(again["chunks"]) == 3
    c = again["counters"]
    assert (c["inputs"], c["articles"], c["duplicates"], c["dead_letters"], c["balanced"]) == (9, 0, 8, 1, True)
    assert rows(output, "articles", "article_id, run_id") == before
    assert sorted(manifests(output)) == sorted([first["run_id"], *first["chunks"], again["run_id"], *again["chunks"]])


def test_no_chunking_on_remote_runners_or_for_feeds(tmp_path):
    from pipeline.chunking import max_files_per_run

    settings = make_settings(tmp_path, ["x"], read={"max_files_per_run": 2})
    assert max_files_per_run(settings) == 2
    assert max_files_per_run(settings, wait=False) == 0
    assert max_files_per_run(make_settings(tmp_path, ["x"], read={"max_files_per_run": 2},
                                           runner="DataflowRunner")) == 0
    assert max_files_per_run(make_settings(tmp_path, ["x"], read={"max_files_per_run": 2},
                                           feeds_file="configs/feeds.yaml")) == 0


def test_cli_option(corpus, tmp_path, capsys):
    from pipeline.cli import main

    output = tmp_path / "out"
    assert main(["run", "--input", corpus, "--output", str(output), "--max-files-per-run", "4", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert len(manifest["chunks"]) == 3 and manifest["counters"]["balanced"]
