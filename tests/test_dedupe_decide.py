"""dedupe.decide and dedupe.apply_decision: the run's dedup decisions from slim records, as plain
functions (the transform only gathers the records and joins the decisions with the articles)."""

from __future__ import annotations

import datetime as dt

import pytest

from transforms.dedupe import PRIOR, apply_decision, decide, slim
from transforms.minhash import MinHasher
from transforms.normalize import content_key

PARAMS = {"enabled_near": True, "shingle_size": 3, "num_perm": 128, "bands": 32, "threshold": 0.7, "seed": 1,
          "max_cluster_candidates": 50}
HASHER = MinHasher(128, 3, 32, 1)
T0 = dt.datetime(2026, 1, 6, 8, tzinfo=dt.timezone.utc)
TEXT = ("Der Bundestag hat am Donnerstag nach langer Debatte ein neues Gesetz zur Förderung der "
        "Windenergie an Land beschlossen, das den Ausbau in den kommenden Jahren deutlich beschleunigen soll.")
NEAR = TEXT.replace("Donnerstag", "Freitag")
OTHER = "Ganz anderer Text über das Wetter in Hamburg, wo es am Wochenende stürmisch und regnerisch bleibt."


def article(article_id: str, text: str, hours: int = 0, prior: bool = False, content_hash: str | None = None,
            size: int = 1) -> dict:
    return {"article_id": article_id, "origin": f"/in/{article_id}", "content_hash": content_hash or f"h-{text}",
            "published_at": T0 + dt.timedelta(hours=hours), "text_length": len(text), "cluster_size": size,
            "minhash": HASHER.signature(content_key(None, text)), PRIOR: prior}


def test_exact_copies_keep_the_first_and_count_them():
    records = [slim(article("b", TEXT, 1)), slim(article("a", TEXT, 0)), slim(article("a", TEXT, 2)),
               slim(article("c", OTHER, 0))]
    decisions = decide(records, None)
    # "a" twice (same id: one group, size 2) and "b" (same content): "a" is earliest.
    assert decisions == {"a": ("kept", 3), "b": ("dup", "a", 1.0, "content_hash"), "c": ("kept", 1)}


def test_prior_records_win_and_decide_nothing_themselves():
    records = [slim(article("p1", TEXT, 5, prior=True)), slim(article("p1", TEXT, 0)),  # same id as a prior
               slim(article("x", TEXT, 0, content_hash="h-shared")),
               slim(article("p2", OTHER, 9, prior=True, content_hash="h-shared")),
               slim(article("p3", OTHER, 0, prior=True))]
    decisions = decide(records, None)
    assert decisions == {"p1": ("dup", "p1", 1.0, "id"), "x": ("dup", "p2", 1.0, "content_hash")}


def test_near_copies_and_their_exact_copies_point_at_the_head():
    records = [slim(article("head", TEXT, 0)), slim(article("near", NEAR, 1)),
               slim(article("near-copy", NEAR, 2, content_hash="h-" + NEAR)), slim(article("o", OTHER))]
    decisions = decide(records, PARAMS, HASHER)
    assert decisions["head"] == ("kept", 3) and decisions["o"] == ("kept", 1)
    method, target, score, kind = decisions["near"]
    assert (method, target, kind) == ("dup", "head", "minhash") and PARAMS["threshold"] <= score < 1.0
    assert decisions["near-copy"] == ("dup", "head", 1.0, "content_hash")
    # Without near dedup, the near copy heads its own exact group.
    assert decide(records, {**PARAMS, "enabled_near": False}) == {
        "head": ("kept", 1), "near": ("kept", 2), "near-copy": ("dup", "near", 1.0, "content_hash"), "o": ("kept", 1)}


def test_a_near_copy_of_a_prior_article_is_its_duplicate():
    records = [slim(article("old", TEXT, 0, prior=True)), slim(article("new", NEAR, 3))]
    decisions = decide(records, PARAMS, HASHER)
    assert list(decisions) == ["new"] and decisions["new"][:2] == ("dup", "old")


def test_apply_decision_keeps_the_first_copy_in_canonical_order():
    later = {**article("a", TEXT, 5), "source": "s", "ingested_at": T0, "run_id": "r", "url": None, "title": None}
    first = {**later, "published_at": T0, "origin": "/in/first"}
    kept, dups = apply_decision("a", [later, first], ("kept", 3))
    assert kept["origin"] == "/in/first" and (kept["cluster_id"], kept["cluster_size"]) == ("a", 3)
    assert [(d["origin"], d["duplicate_of"], d["method"]) for d in dups] == [("/in/a", "a", "id")]
    kept, dups = apply_decision("a", [later, first], ("dup", "z", 0.8, "minhash"))
    assert kept is None
    assert [(d["origin"], d["duplicate_of"], d["similarity"], d["method"]) for d in dups] == [
        ("/in/first", "z", 0.8, "minhash"), ("/in/a", "z", 1.0, "id")]


def test_apply_decision_refuses_a_missing_decision_or_article():
    with pytest.raises(RuntimeError, match="no decision"):
        apply_decision("a", [article("a", TEXT)], None)
    with pytest.raises(RuntimeError, match="for no article"):
        apply_decision("a", [], ("kept", 1))
