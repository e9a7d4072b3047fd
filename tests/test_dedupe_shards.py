"""Near-dedup candidate pairs and the sharded join of decisions: the same result as one group per band key,
whatever the shards and batch sizes."""

from __future__ import annotations

import datetime as dt
import random

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS
from transforms.common import RunInfo
from transforms.dedupe import (DUPLICATE, band_pairs, cluster_refs, near_clusters, near_ref, shard_pairs, slim,
                               Deduplicate)
from transforms.minhash import MinHasher, similarity
from transforms.normalize import content_key, to_article

PARAMS = {"enabled_near": True, "shingle_size": 3, "num_perm": 128, "bands": 32, "threshold": 0.75, "seed": 1,
          "max_cluster_candidates": 3}
RUN = RunInfo("test-run", FIXED_NOW)


def _texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


def _variants(rng: random.Random) -> list[str]:
    """Seed texts plus several edited copies of each (shared bands, some above the threshold)."""
    out = []
    for text in _texts():
        words = text.split()
        out.append(text)
        for keep in (0.99, 0.98, 0.97, 0.95, 0.9, 0.8, 0.6):
            out.append(" ".join(w if rng.random() < keep else w + "x" for w in words))
    return out


def _records(texts: list[str]) -> list[tuple]:
    hasher = MinHasher(128, 3, 32, 1)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    records = []
    for i, text in enumerate(texts):
        article = {"article_id": f"a{i:03d}", "origin": f"o{i}", "content_hash": f"h{i}",
                   "published_at": start + dt.timedelta(hours=i % 7), "text_length": len(text),
                   "minhash": hasher.signature(content_key(None, text)), "_prior": i % 5 == 0}
        records.append(slim(article))
    return records, hasher


def _pairs_by_band(records, hasher, max_members):
    bands: dict[bytes, list] = {}
    for record in records:
        for key in hasher.band_keys(record[8]):
            bands.setdefault(key, []).append(near_ref(record))
    return sorted({pair for refs in bands.values() if len(refs) > 1 for pair in band_pairs(refs, max_members)})


def test_near_clusters_equal_the_clusters_of_each_band_key():
    records, hasher = _records(_variants(random.Random(5)))
    expected = _pairs_by_band(records, hasher, 3)
    # The edited copies share bands, some with more members than max_cluster_candidates (3).
    assert len(expected) > 20 and len(expected) < len(_pairs_by_band(records, hasher, 50))
    entries = [(key, near_ref(r)) for r in records for key in hasher.band_keys(r[8])]
    assert sorted(set(shard_pairs(entries, 3))) == expected
    signature = {near_ref(r): r[8] for r in records}
    verified = [(a, b, similarity(signature[a], signature[b])) for a, b in expected]
    verified = [pair for pair in verified if pair[2] >= PARAMS["threshold"]]
    clusters = near_clusters(reversed(records), hasher, PARAMS["threshold"], 3)
    assert verified and clusters == cluster_refs(verified)
    assert any(head != article_id for article_id, (head, _, _) in clusters.items())


def test_shard_pairs_skip_keys_with_one_member():
    ref = (True, False, 0, -10, "a", 1)
    assert list(shard_pairs([(b"k1", ref), (b"k2", (True, False, 0, -10, "b", 1))], 50)) == []


def test_deduplicate_decisions_do_not_depend_on_bundles_or_shards(monkeypatch):
    """The whole transform with tiny join shards and batches decides as with the defaults."""
    texts = _variants(random.Random(9))
    articles = [to_article({"source": "t", "origin": f"o{i}", "body": t}, RUN) for i, t in enumerate(texts)]

    def run():
        with TestPipeline() as p:
            result = p | beam.Create(articles) | Deduplicate(PARAMS)
            kept = result["articles"] | "Kept" >> beam.Map(lambda a: (a["origin"], a["cluster_id"], a["cluster_size"]))
            dups = result[DUPLICATE] | "Dups" >> beam.Map(lambda d: (d["origin"], d["duplicate_of"], d["method"]))
            assert_that(kept, equal_to(expected_kept), label="kept")
            assert_that(dups, equal_to(expected_dups), label="dups")

    # Expected decisions from the plain-loop cores (band by band, no shards).
    from bench.bench_loop import _dedup_near

    kept, dups = _dedup_near([dict(a) for a in articles], [], PARAMS)
    by_id = {a["article_id"]: a["origin"] for a in articles}
    expected_kept = [(a["origin"], a["cluster_id"], a["cluster_size"]) for a in kept]
    expected_dups = [(d["origin"], d["duplicate_of"], d["method"]) for d in dups]
    assert any(m == "minhash" for *_, m in expected_dups) and by_id
    run()
    monkeypatch.setattr("transforms.dedupe.BATCH", 2)
    monkeypatch.setattr("transforms.dedupe.JOIN_SHARDS", 3)
    run()
