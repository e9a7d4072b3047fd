"""Near-duplicate core (MinHash, LSH, clustering) and the Deduplicate transform."""

from __future__ import annotations

import datetime as dt
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS
from transforms.common import RunInfo
from transforms.dedupe import DUPLICATE, PRIOR, Deduplicate, assign_clusters, candidate_pairs
from transforms.minhash import MinHasher, jaccard, similarity
from transforms.normalize import content_key, to_article

PARAMS = {"enabled_near": True, "shingle_size": 3, "num_perm": 128, "bands": 32, "threshold": 0.75, "seed": 1,
          "max_cluster_candidates": 50}
RUN = RunInfo("test-run", FIXED_NOW)


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


def article(text: str, origin: str, published: dt.datetime | None = None) -> dict:
    return to_article({"source": "t", "origin": origin, "body": text, "published_at": published}, RUN)


def test_signature_is_deterministic_and_compact():
    hasher = MinHasher(**{k: PARAMS[k] for k in ("num_perm", "shingle_size", "bands", "seed")})
    key = content_key(None, seed_texts()[2])
    assert hasher.signature(key) == MinHasher(128, 3, 32, 1).signature(key)
    assert len(hasher.signature(key)) == 2 * 128
    assert len(hasher.band_keys(hasher.signature(key))) == 32


def test_estimate_tracks_exact_jaccard():
    hasher = MinHasher(128, 3, 32, 1)
    rng = random.Random(3)
    base = content_key(None, seed_texts()[2]).split()
    for keep in (1.0, 0.9, 0.7, 0.4):
        other = [w if rng.random() < keep else w + "x" for w in base]
        exact = jaccard(" ".join(base), " ".join(other), 3)
        estimate = similarity(hasher.signature(" ".join(base)), hasher.signature(" ".join(other)))
        # 128 permutations: standard error <= 0.045; allow 3 of them.
        assert abs(exact - estimate) < 0.135, (keep, exact, estimate)


def test_unrelated_seeds_are_not_similar():
    hasher = MinHasher(128, 3, 32, 1)
    signatures = [hasher.signature(content_key(None, t)) for t in seed_texts()]
    for i in range(len(signatures)):
        for j in range(i + 1, len(signatures)):
            assert similarity(signatures[i], signatures[j]) < 0.2
            assert not set(hasher.band_keys(signatures[i])) & set(hasher.band_keys(signatures[j]))


def _member(article_id, signature, published=None, prior=False, length=100):
    return {"article_id": article_id, "minhash": signature, "published_at": published, "text_length": length,
            "origin": article_id, PRIOR: prior}


def test_star_clustering_points_every_copy_at_a_similar_head():
    # a~b and b~c but a is not similar to c: c must not be chained onto a.
    a, b, c = _member("a", b"", length=300), _member("b", b"", length=200), _member("c", b"", length=100)
    assignment = assign_clusters([(a, b, 0.8), (b, c, 0.8)])
    assert assignment["a"]["head"] == "a"
    assert assignment["b"]["head"] == "a"
    assert assignment["c"]["head"] == "c"


def test_prior_articles_always_win_and_are_not_reassigned():
    early = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    current = _member("new", b"", published=early)
    prior = _member("old", b"", prior=True)
    assignment = assign_clusters([(prior, current, 0.9)])
    assert assignment == {"new": {"head": "old", "similarity": 0.9}}


def test_candidate_pairs_verify_and_skip_prior_only_pairs():
    hasher = MinHasher(128, 3, 32, 1)
    text = content_key(None, seed_texts()[2])
    sig = hasher.signature(text)
    other = hasher.signature(content_key(None, seed_texts()[3]))
    members = [_member("x", sig), _member("y", sig), _member("p", sig, prior=True),
               _member("q", sig, prior=True), _member("z", other)]
    pairs = {(a["article_id"], b["article_id"]) for a, b, _ in candidate_pairs(members, 0.75, 50)}
    assert ("p", "q") not in pairs and ("q", "p") not in pairs
    assert {("p", "x"), ("p", "y"), ("x", "y")} <= pairs
    assert not any("z" in pair for pair in pairs)


def near_copy(text: str) -> str:
    return "Neue Überschrift für dieselbe Meldung\n" + text[: int(len(text) * 0.93)] + "\nMehr dazu auf unserer Webseite."


def test_deduplicate_clusters_exact_and_near_copies_in_a_pipeline():
    texts = seed_texts()
    early = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    inputs = [article(t, f"seed{i}") for i, t in enumerate(texts)]
    inputs.append(article(near_copy(texts[2]), "near-of-2"))
    inputs.append(article(texts[0], "seed0-copy"))
    # An earlier-dated near copy becomes the canonical member of its cluster.
    inputs.append(article(near_copy(texts[4]), "early-near-of-4", published=early))
    with TestPipeline() as p:
        result = p | beam.Create(inputs) | Deduplicate(PARAMS)
        kept = result["articles"] | "Kept" >> beam.Map(lambda a: (a["origin"], a["cluster_size"]))
        assert_that(kept, equal_to([("seed0", 2), ("seed1", 1), ("seed2", 2), ("seed3", 1),
                                    ("early-near-of-4", 2)]), label="articles")
        dups = result[DUPLICATE] | "Dups" >> beam.Map(lambda d: (d["origin"], d["method"]))
        assert_that(dups, equal_to([("near-of-2", "minhash"), ("seed0-copy", "id"), ("seed4", "minhash")]),
                    label="duplicates")


@pytest.mark.parametrize("near_enabled", [True, False])
def test_every_article_lands_in_exactly_one_output(near_enabled):
    texts = seed_texts()
    inputs = [article(t, f"seed{i}") for i, t in enumerate(texts)] + [article(near_copy(texts[1]), "n1")]
    with TestPipeline() as p:
        result = p | beam.Create(inputs) | Deduplicate({**PARAMS, "enabled_near": near_enabled})
        origins = ((result["articles"] | "A" >> beam.Map(lambda a: a["origin"]),
                    result[DUPLICATE] | "D" >> beam.Map(lambda d: d["origin"])) | beam.Flatten())
        assert_that(origins, equal_to([a["origin"] for a in inputs]))
