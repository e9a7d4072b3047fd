"""Looking current articles up in the cross-run index instead of shuffling the whole index."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS, make_test_pipeline
from schemas import DEDUP_INDEX
from transforms.common import RunInfo
from transforms.dedup_index import LookupDedupIndex, PriorIndex, index_row, segment_path
from transforms.dedupe import DUPLICATE, Deduplicate, prior_article
from transforms.minhash import MinHasher
from transforms.normalize import to_article
from transforms.write import write_parquet_file

PARAMS = {"enabled_near": True, "shingle_size": 3, "num_perm": 128, "bands": 32, "threshold": 0.75, "seed": 1,
          "max_cluster_candidates": 50}
SIGN = MinHasher(128, 3, 32, 1).signature
DAY = dt.timedelta(days=1)


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


def article(text: str, url: str, run: RunInfo, published: dt.datetime | None = None) -> dict:
    return to_article({"source": "t", "origin": url, "url": url, "body": text, "published_at": published},
                      run, signer=SIGN)


def earlier(run_id: str, days: int) -> RunInfo:
    return RunInfo(run_id, FIXED_NOW - days * DAY)


def build_index(root) -> tuple[list[dict], list[dict]]:
    """Index rows of three earlier runs (one outside a 30-day window) and current articles that
    copy some of them by id, by content hash and nearly, plus one new article."""
    texts = seed_texts()
    a, b, old = earlier("run-a", 2), earlier("run-b", 1), earlier("run-old", 60)
    prior = {
        "run-a": [article(texts[0], "https://x.test/0", a), article(texts[1], "https://x.test/1", a)],
        "run-b": [article(texts[2], "https://x.test/2", b),
                  article("Vorspann.\n" + texts[2][:4000], "https://y.test/2", b, FIXED_NOW - 3 * DAY)],
        "run-old": [article(texts[3], "https://x.test/3", old)],
    }
    for run_id, articles in prior.items():
        write_parquet_file(DEDUP_INDEX, [index_row(x) for x in articles], segment_path(str(root), run_id))
    now = RunInfo("run-now", FIXED_NOW)
    current = [
        article(texts[0], "https://x.test/0", now),                        # same id as a run-a row
        article(texts[1], "https://copy.test/1", now),                     # same content hash
        article("Eilmeldung\n" + texts[2][:4500], "https://z.test/2", now),  # near copy of two run-b rows
        article(texts[3], "https://x.test/3", now),                        # only in a row outside the window
        article(texts[4], "https://x.test/4", now),                        # new
    ]
    rows = [index_row(x) for articles in prior.values() for x in articles]
    return rows, current


def test_prior_index_matches_only_rows_sharing_a_key(tmp_path):
    rows, current = build_index(tmp_path)
    paths = [segment_path(str(tmp_path), r) for r in ("run-a", "run-b", "run-old")]
    index = PriorIndex.load(paths, ("run-now",), FIXED_NOW - 30 * DAY, 128, 32)
    assert len(index) == 4  # the run-old row is outside the window

    def matched(x, near=True):
        found = index.rows(index.match(x["article_id"], x["content_hash"], x["minhash"] if near else None))
        return sorted(r["article_id"] for r in found)

    by_url = {r["article_id"]: r for r in rows}
    assert matched(current[0]) == [current[0]["article_id"]]
    assert matched(current[1]) == [r["article_id"] for r in rows if r["content_hash"] == current[1]["content_hash"]]
    assert matched(current[1])[0] != current[1]["article_id"]
    near = matched(current[2])
    assert len(near) == 2 and all(by_url[i]["run_id"] == "run-b" for i in near)
    assert matched(current[2], near=False) == []
    assert matched(current[3]) == [] and matched(current[4]) == []

    # The replayed run and the runs it replaces are left out; no window keeps the old row.
    everything = PriorIndex.load(paths, ("run-now", "run-a"), None, 128, 32)
    assert len(everything) == 3
    assert everything.rows(everything.match(current[3]["article_id"], "", None))[0]["article_id"] \
        == current[3]["article_id"]
    assert len(everything.match(current[0]["article_id"], current[0]["content_hash"], current[0]["minhash"])) == 0


def test_match_many_is_the_union_of_each_match(tmp_path):
    rows, current = build_index(tmp_path)
    paths = [segment_path(str(tmp_path), r) for r in ("run-a", "run-b", "run-old")]
    index = PriorIndex.load(paths, ("run-now",), None, 128, 32)
    queries = [(x["article_id"], x["content_hash"], x["minhash"]) for x in current]
    queries += [(current[2]["article_id"], "", None), ("nothing", "nothing", current[4]["minhash"][:100])]
    for some in (queries, queries[:1], queries[2:3], queries[3:], queries[-2:], []):
        union = sorted({int(i) for q in some for i in index.match(*q)})
        assert index.match_many(some).tolist() == union
    assert len(index.match_many(queries)) >= 4  # id, hash and the two near rows


def _outcome(result, name):
    kept = result["articles"] | f"{name}Kept" >> beam.Map(
        lambda a: (a["article_id"], ("kept", a["cluster_id"], a["cluster_size"])))
    dups = result[DUPLICATE] | f"{name}Dups" >> beam.Map(
        lambda d: (d["article_id"], ("dup", d["duplicate_of"], d["method"], d["similarity"])))
    return (kept, dups)


def test_lookup_gives_the_same_result_as_shuffling_the_whole_index(tmp_path):
    rows, current = build_index(tmp_path)
    cutoff = FIXED_NOW - 30 * DAY
    in_window = [prior_article(r) for r in rows if r["indexed_at"] >= cutoff]
    with make_test_pipeline() as p:
        articles = p | "Articles" >> beam.Create(current)
        whole = articles | "Whole" >> Deduplicate(PARAMS, p | "Prior" >> beam.Create(in_window))
        looked_up = articles | "Lookup" >> Deduplicate(
            PARAMS, lookup=LookupDedupIndex(str(tmp_path), "run-now", cutoff, params=PARAMS))
        old = _outcome(whole, "Old") | "OldAll" >> beam.Flatten()
        new = {"old": old, "new": _outcome(looked_up, "New") | "NewAll" >> beam.Flatten()}
        joined = new | beam.CoGroupByKey() | beam.MapTuple(lambda k, g: (k, sorted(g["old"]), sorted(g["new"])))
        assert_that(joined | "Differences" >> beam.Filter(lambda x: x[1] != x[2]), equal_to([]), label="Same")
        summary = old | "Summary" >> beam.Map(lambda kv: (kv[1][0], kv[1][2] if kv[1][0] == "dup" else None))
        # The copies of run-a's and run-b's rows are duplicates; the row outside the window no longer counts.
        assert_that(summary, equal_to([("dup", "id"), ("dup", "content_hash"), ("dup", "minhash"),
                                       ("kept", None), ("kept", None)]), label="Expected")


def test_pending_segment_keeps_every_row_and_its_times(tmp_path):
    """WritePendingIndex ships rows with their datetimes packed as integers (no pickling): the
    segment must still hold exactly ``index_row`` of every article, times and zones included."""
    import pyarrow.parquet as pq

    from transforms.dedup_index import WritePendingIndex

    run = RunInfo("run-now", FIXED_NOW)
    cet = dt.timezone(dt.timedelta(hours=1))
    texts = seed_texts()[:3]
    articles = [article(texts[0], "https://a.example/1", run, dt.datetime(2026, 3, 1, 9, 30, tzinfo=cet)),
                article(texts[1], "https://a.example/2", run, dt.datetime(2026, 3, 2, 23, 59, 59, 999999,
                                                                           tzinfo=dt.timezone.utc)),
                article(texts[2], "https://a.example/3", run)]
    with make_test_pipeline() as p:
        files = p | beam.Create(articles) | WritePendingIndex(str(tmp_path), run.run_id)
        assert_that(files | beam.Map(lambda f: f["rows"]), equal_to([3]))
    table = pq.read_table(segment_path(str(tmp_path), run.run_id))
    expected = DEDUP_INDEX.to_table(sorted((index_row(a) for a in articles), key=lambda r: r["article_id"]))
    assert table.column_names == expected.column_names
    assert table.to_pylist() == expected.to_pylist()
    assert [r["published_at"] for r in table.to_pylist() if r["published_at"]] != []
