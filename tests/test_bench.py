"""The benchmark harness: seeded corpus with known make-up, plain loop agrees with the Beam pipeline.

No timing is asserted here (speed lives in `make bench`); these tests check
that the harness measures the right thing.
"""

from __future__ import annotations

import json
import os

import pytest

from pipeline.bench import check, tree_rss
from pipeline.bench_corpus import CorpusSpec, generate
from pipeline.bench_loop import run_plain_loop
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


def test_results_file_is_well_formed_when_present():
    from pipeline.bench import RESULTS

    if not RESULTS.is_file():
        pytest.skip("no bench/results.json yet (run make bench)")
    results = json.loads(RESULTS.read_text())
    assert {r["variant"] for r in results["runs"]} <= {"beam-1", "beam-2", "loop", "datatrove"}
    for run in results["runs"]:
        assert run["counters"]["balanced"]
        assert run["articles_per_second"] > 0 and run["peak_rss_tree_mb"] > 0


def test_falls_back_to_the_seeds_without_shared_corpora(tmp_path, monkeypatch):
    import pipeline.bench_corpus as bc

    monkeypatch.setattr(bc, "GNAD_CSV", tmp_path / "missing.csv")
    monkeypatch.setattr(bc, "LINGUA_DIR", tmp_path / "missing")
    meta = generate(CorpusSpec(articles=60, seed=5), tmp_path)
    assert any("seed articles only" in w for w in meta["sources"]["warnings"])
    assert set(meta["languages_of_articles"]) == {"de"}
    assert meta["sources"]["german_texts"] == 5
    assert len(os.listdir(os.path.join(meta["folder"], "articles"))) == 60


def test_bench_refuses_without_the_shared_corpora(tmp_path, monkeypatch, capsys):
    import pipeline.bench as bench

    monkeypatch.setattr(bench, "GNAD_CSV", tmp_path / "missing.csv")
    doc_before = bench.DOC.read_text() if bench.DOC.is_file() else None
    results_before = bench.RESULTS.read_text() if bench.RESULTS.is_file() else None
    assert bench.main(["--articles", "10"]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert (bench.DOC.read_text() if bench.DOC.is_file() else None) == doc_before
    assert (bench.RESULTS.read_text() if bench.RESULTS.is_file() else None) == results_before


def test_bench_writes_its_table_into_docs_bench_md_only(tmp_path):
    from pipeline.bench import DOC, TABLE_END, TABLE_START, replace_block

    assert DOC.name == "bench.md" and DOC.parent.name == "docs"
    doc = tmp_path / "bench.md"
    doc.write_text(f"# intro\n{TABLE_START}\nold\n{TABLE_END}\ntail\n")
    replace_block(TABLE_START, TABLE_END, "| new |", doc)
    assert doc.read_text() == f"# intro\n{TABLE_START}\n| new |\n{TABLE_END}\ntail\n"
    with pytest.raises(ValueError):
        replace_block("<!-- nope -->", TABLE_END, "x", doc)


def test_bench_workers_refuses_without_input(tmp_path):
    from pipeline.bench_workers import main

    assert main(["--input", str(tmp_path / "none-*.txt")]) == 2


def test_datatrove_peer_pipeline_runs_on_the_corpus(corpus, tmp_path):
    from pipeline.bench_peers import available, run_datatrove

    if not available():
        pytest.skip("datatrove not installed (optional extra `peers`)")
    result = run_datatrove(corpus["pattern"], str(tmp_path / "dt"))
    counters = result["counters"]
    assert counters["inputs"] == SPEC.articles and result["files"] >= 1
    # Its MinHash dedup removes at least the exact copies, and keeps every unique article.
    assert counters["duplicates"] >= corpus["expected"]["exact_duplicates"]
    assert counters["articles"] >= corpus["made_up_of"]["unique"] - corpus["made_up_of"]["dead_letters"]
