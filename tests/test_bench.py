"""The benchmark harness: seeded corpus with known make-up, plain loop agrees with the Beam pipeline.

No timing is asserted here (speed lives in `make bench`); these tests check
that the harness measures the right thing.
"""

from __future__ import annotations

import json
import os

import pytest

from bench.bench import check, tree_pss, tree_rss
from bench.bench_corpus import CorpusSpec, generate
from bench.bench_loop import run_plain_loop
from tests.conftest import FIXED_NOW, make_settings

SPEC = CorpusSpec(articles=120, seed=3, exact_share=0.1, near_share=0.1, dead_share=0.03)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate(SPEC, tmp_path_factory.mktemp("bench"))


def test_corpus_is_reproducible_and_reused(corpus, tmp_path):
    again = generate(SPEC, tmp_path)
    assert not again["reused"]
    files = sorted(os.listdir(os.path.join(corpus["folder"], "articles")))
    assert files == sorted(os.listdir(os.path.join(again["folder"], "articles")))
    for name in files:
        with open(os.path.join(corpus["folder"], "articles", name), "rb") as a, \
                open(os.path.join(again["folder"], "articles", name), "rb") as b:
            assert a.read() == b.read(), name
    assert generate(SPEC, tmp_path)["reused"]
    made = corpus["made_up_of"]
    assert sum(made[k] for k in ("unique", "exact_duplicates", "near_duplicates", "dead_letters")) == SPEC.articles
    assert made["exact_duplicates"] > 0 and made["dead_letters"] > 0


def test_plain_loop_matches_the_beam_pipeline(corpus, tmp_path, run_pipeline):
    manifest = run_pipeline(tmp_path / "beam", [corpus["pattern"]], run_id="bench")
    settings = make_settings(tmp_path / "loop", [corpus["pattern"]], run_id="bench")
    loop = run_plain_loop(settings, settings.run_info(FIXED_NOW))
    beam_counters = {k: manifest["counters"][k] for k in ("inputs", "articles", "duplicates", "dead_letters",
                                                          "balanced")}
    assert loop["counters"] == beam_counters
    assert check({"counters": loop["counters"]}, corpus) == []
    assert set(loop["step_cpu_seconds"]) == {"read", "parse", "normalize", "dedup", "language", "topics", "write"}

    import duckdb

    def ids(root):
        return duckdb.sql(f"select article_id from read_parquet('{root}/articles/**/*.parquet', "
                          "hive_partitioning=true) order by 1").fetchall()

    assert ids(tmp_path / "loop") == ids(tmp_path / "beam")


def test_check_reports_lost_dead_letters(corpus):
    expected = corpus["expected"]
    counters = {"inputs": expected["inputs"], "articles": expected["articles_exact_only"] + 1,
                "duplicates": expected["exact_duplicates"], "dead_letters": expected["dead_letters"] - 1,
                "balanced": True}
    problems = check({"counters": counters}, corpus)
    assert any("dead letters" in p for p in problems)


def test_tree_rss_counts_this_process():
    assert tree_rss(os.getpid()) > 10 * 2**20
    assert tree_rss(2**22 + 12345) == 0  # no such process


def test_tree_pss_counts_this_process_at_most_its_rss():
    pss = tree_pss(os.getpid())
    assert 10 * 2**20 < pss <= tree_rss(os.getpid())
    assert tree_pss(2**22 + 12345) == 0


def test_results_file_is_well_formed_when_present():
    from bench.bench import RESULTS

    if not RESULTS.is_file():
        pytest.skip("no bench/results.json yet (run make bench)")
    results = json.loads(RESULTS.read_text())
    assert {r["variant"] for r in results["runs"]} <= {"beam-1", "beam-2", "loop", "datatrove"}
    for run in results["runs"]:
        assert run["counters"]["balanced"]
        assert run["articles_per_second"] > 0 and run["peak_rss_tree_mb"] > 0


def test_falls_back_to_the_seeds_without_shared_corpora(tmp_path, monkeypatch):
    import bench.bench_corpus as bc

    monkeypatch.setattr(bc, "GNAD_CSV", tmp_path / "missing.csv")
    monkeypatch.setattr(bc, "LINGUA_DIR", tmp_path / "missing")
    meta = generate(CorpusSpec(articles=60, seed=5), tmp_path)
    assert any("seed articles only" in w for w in meta["sources"]["warnings"])
    assert set(meta["languages_of_articles"]) == {"de"}
    assert meta["sources"]["german_texts"] == 5
    assert len(os.listdir(os.path.join(meta["folder"], "articles"))) == 60


def test_datatrove_variant_writes_one_row_per_file_that_is_not_a_copy(corpus, tmp_path):
    from bench.bench import check_peer
    from bench.bench_peers import available, run_datatrove

    if not available():
        pytest.skip("datatrove not installed (optional extra `peers`: make bench-peers)")
    result = run_datatrove(corpus["pattern"], str(tmp_path / "dt"))
    made = corpus["made_up_of"]
    # datatrove has no dead letters: the empty/binary files pass as documents; MinHash (3-grams,
    # 32 x 4, seed 1) removes every exact and every near copy of this seeded corpus and nothing else.
    expected_rows = made["unique"] + made["dead_letters"]
    assert result["counters"] == {"inputs": SPEC.articles, "articles": expected_rows,
                                  "duplicates": made["exact_duplicates"] + made["near_duplicates"],
                                  "dead_letters": 0, "balanced": True}
    assert check_peer(result, corpus) == []

    import pyarrow.parquet as pq

    written = sorted((tmp_path / "dt" / "output").rglob("*.parquet"))
    assert len(written) == result["files"] >= 1
    table = pq.ParquetDataset([str(p) for p in written]).read()
    assert table.num_rows == expected_rows
    ids = table.column("id").to_pylist()
    names = set(os.listdir(os.path.join(corpus["folder"], "articles")))
    assert len(set(ids)) == expected_rows and set(ids) <= names
    languages = [m["language"] for m in table.column("metadata").to_pylist()]
    assert languages.count("de") > expected_rows / 2  # the corpus is mostly German, tagged by fastText


def test_bench_exits_2_when_datatrove_is_requested_but_missing(monkeypatch, capsys):
    import bench.bench as bench
    import bench.bench_peers as peers

    monkeypatch.setattr(peers, "available", lambda: False)
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: pytest.fail("must not run"))
    assert bench.main(["--articles", "10", "--profiles", "fast", "--variants", "loop,datatrove", "--no-write"]) == 2
    assert "datatrove is not installed" in capsys.readouterr().err
    monkeypatch.setattr(peers, "available", lambda: True)
    assert bench.main(["--articles", "10", "--profiles", "local", "--variants", "datatrove", "--no-write"]) == 2
    assert "add fast to --profiles" in capsys.readouterr().err


def test_chunked_plain_loop_matches_the_chunked_beam_pipeline(corpus, tmp_path):
    """Both split the 120 files into chunks of 40 and dedup each chunk against the earlier chunks'
    index: the same articles, the same duplicates pointing at the same targets."""
    import duckdb

    from pipeline.launch import run_once

    overrides = {"run_id": "bench", "read": {"max_files_per_run": 40}}
    beam = run_once(make_settings(tmp_path / "beam", [corpus["pattern"]], **overrides), now=FIXED_NOW)
    assert len(beam["chunks"]) == 3
    settings = make_settings(tmp_path / "loop", [corpus["pattern"]], **overrides)
    loop = run_plain_loop(settings, settings.run_info(FIXED_NOW))
    assert loop["chunks"] == 3
    assert loop["counters"] == {k: beam["counters"][k] for k in loop["counters"]}

    def rows(root, table, columns):
        return duckdb.sql(f"select {columns} from read_parquet('{root}/{table}/**/*.parquet', "
                          "hive_partitioning=true) order by all").fetchall()

    assert rows(tmp_path / "loop", "articles", "article_id, run_id, cluster_size") == \
        rows(tmp_path / "beam", "articles", "article_id, run_id, cluster_size")
    duplicates = rows(tmp_path / "beam", "duplicates", "article_id, duplicate_of, method, run_id")
    chunk_of = dict(rows(tmp_path / "beam", "articles", "article_id, run_id"))
    across = {method for _, target, method, run_id in duplicates if chunk_of.get(target, run_id) < run_id}
    assert {"minhash"} <= across  # later chunks found near copies of earlier chunks' articles
    assert rows(tmp_path / "loop", "duplicates", "article_id, duplicate_of, method, run_id") == duplicates
