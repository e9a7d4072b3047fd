"""Step 3: remove exact and near duplicates, within a run and against earlier runs.

Core (plain functions):
  * ``canonical_order``: which copy of a story is kept (earliest ``published_at``,
    then the longest text, then the smallest ``article_id``); anything an earlier
    run already wrote ("prior") always wins.
  * ``pick_canonical``: split the copies of one key into kept and others.
  * ``candidate_pairs``: verified near-duplicate pairs among the members of one LSH band.
  * ``assign_clusters``: greedy star clustering of verified pairs: in canonical
    order, each article joins the earliest head it is similar to, else heads its
    own cluster. Every duplicate is therefore similar to the article it points at
    (no chains through intermediate copies).

Transform :class:`Deduplicate` = exact dedup on ``article_id`` then
``content_hash``, then MinHash-LSH near dedup. Returns ``{'articles',
'duplicates'}``; every input article is in exactly one of them. Articles carry
``cluster_id``/``cluster_size`` and their ``minhash`` signature (for the index).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

import apache_beam as beam

from schemas import SCHEMA_VERSION
from transforms.minhash import MinHasher, similarity
from transforms.normalize import content_key

DUPLICATE = "duplicates"
PRIOR = "_prior"
_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def canonical_order(article: Mapping[str, Any]) -> tuple:
    """Sort key: the first article in this order is the one kept."""
    published = article.get("published_at")
    return (
        not article.get(PRIOR, False),
        published is None,
        published or _FAR_FUTURE,
        -int(article.get("text_length") or 0),
        article["article_id"],
        article.get("origin") or "",
    )


def pick_canonical(articles: Iterable[Mapping[str, Any]]) -> tuple[dict, list[dict]]:
    """Split copies of one story into (kept, others) by :func:`canonical_order`."""
    ordered = sorted(articles, key=canonical_order)
    return dict(ordered[0]), [dict(a) for a in ordered[1:]]


def duplicate_record(article: Mapping[str, Any], duplicate_of: str, similarity_: float, method: str) -> dict[str, Any]:
    """Row of the duplicates table for ``article``, a copy of ``duplicate_of``."""
    ingested_at = article["ingested_at"]
    return {
        "article_id": article["article_id"],
        "duplicate_of": duplicate_of,
        "similarity": round(float(similarity_), 4),
        "method": method,
        "source": article["source"],
        "origin": article["origin"],
        "url": article.get("url"),
        "title": article.get("title"),
        "content_hash": article["content_hash"],
        "published_at": article.get("published_at"),
        "ingested_at": ingested_at,
        "ingested_date": ingested_at.astimezone(dt.timezone.utc).date(),
        "run_id": article["run_id"],
        "schema_version": SCHEMA_VERSION,
    }


def prior_article(row: Mapping[str, Any]) -> dict[str, Any]:
    """An index row of an earlier run, shaped like an article for the canonical order."""
    return {**row, PRIOR: True}


# -- exact --------------------------------------------------------------------

class _KeepCanonicalFn(beam.DoFn):
    def __init__(self, method: str):
        self._method = method

    def process(self, keyed: tuple[str, Iterable[Mapping[str, Any]]]):
        _, copies = keyed
        kept, others = pick_canonical(copies)
        current = [o for o in others if not o.get(PRIOR)]
        if not kept.get(PRIOR):
            kept["cluster_size"] = int(kept.get("cluster_size") or 1) + sum(int(o.get("cluster_size") or 1) for o in current)
            yield kept
        for other in current:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(other, kept["article_id"], 1.0, self._method))


class _DedupOnKey(beam.PTransform):
    def __init__(self, key: str, method: str, prior=None):
        super().__init__()
        self._key = key
        self._method = method
        self._prior = prior

    def expand(self, articles):
        key = self._key
        if self._prior is not None:
            articles = (articles, self._prior) | "WithPrior" >> beam.Flatten()
        return (
            articles
            | "Key" >> beam.Map(lambda a: (a[key], a))
            | "Group" >> beam.GroupByKey()
            | "Keep" >> beam.ParDo(_KeepCanonicalFn(self._method)).with_outputs(DUPLICATE, main="articles")
        )


class DedupExact(beam.PTransform):
    """One article per ``article_id`` and per ``content_hash``.

    ``prior``: optional PCollection of prior articles (index rows marked with
    ``_prior``); a current article sharing a key with one becomes its duplicate.
    Returns ``{'articles', 'duplicates'}``; every input is in exactly one of them.
    """

    def __init__(self, prior=None):
        super().__init__()
        self._prior = prior

    def expand(self, articles):
        by_id = articles | "ById" >> _DedupOnKey("article_id", "id", self._prior)
        by_hash = by_id.articles | "ByContentHash" >> _DedupOnKey("content_hash", "content_hash", self._prior)
        # An id-duplicate points at the copy kept by id; when the content-hash pass then drops
        # that copy too, the id-duplicate must follow it to the article finally kept.
        repointed = (
            {
                "id_dups": by_id[DUPLICATE] | "IdDupsByTarget" >> beam.Map(lambda d: (d["duplicate_of"], d)),
                "hash_dups": by_hash[DUPLICATE] | "HashDupsById" >> beam.Map(lambda d: (d["article_id"], d)),
            }
            | "JoinDupChains" >> beam.CoGroupByKey()
            | "Repoint" >> beam.FlatMap(_repoint_id_duplicates)
        )
        duplicates = (repointed, by_hash[DUPLICATE]) | "AllDuplicates" >> beam.Flatten()
        return {"articles": by_hash.articles, DUPLICATE: duplicates}


def _repoint_id_duplicates(joined):
    _, groups = joined
    dropped = list(groups["hash_dups"])
    # Several hash-duplicates can share an article_id (same URL); all point at the same kept article.
    final = dropped[0]["duplicate_of"] if dropped else None
    for dup in groups["id_dups"]:
        yield {**dup, "duplicate_of": final} if final else dup


# -- near ---------------------------------------------------------------------

def member(article: Mapping[str, Any]) -> dict[str, Any]:
    """The small part of an article that near-dup clustering needs."""
    return {
        "article_id": article["article_id"],
        "minhash": article["minhash"],
        "published_at": article.get("published_at"),
        "text_length": article.get("text_length") or 0,
        "origin": article.get("origin") or "",
        PRIOR: bool(article.get(PRIOR)),
    }


def candidate_pairs(members: Iterable[Mapping[str, Any]], threshold: float, max_members: int) -> list[tuple]:
    """Pairs ``(first, second, similarity)`` among one band's members with similarity >= threshold.

    ``first`` precedes ``second`` in canonical order. Pairs of two prior
    articles are skipped (an earlier run decided those). In a band with more
    than ``max_members`` members only the first ``max_members`` in canonical
    order are compared with each other and with the rest, which keeps a band
    that many boilerplate texts share from costing n² comparisons.
    """
    ordered = sorted(members, key=canonical_order)
    pairs = []
    heads = ordered[:max_members]
    for i, first in enumerate(heads):
        for second in ordered[i + 1:]:
            if first[PRIOR] and second[PRIOR]:
                continue
            score = similarity(first["minhash"], second["minhash"])
            if score >= threshold:
                pairs.append((first, second, score))
    return pairs


def assign_clusters(pairs: Iterable[tuple]) -> dict[str, dict[str, Any]]:
    """Greedy star clustering of verified pairs.

    Returns, per current-run article in any pair, ``{'head', 'similarity'}``
    (``head`` = the article it duplicates, or itself when it heads a cluster)
    and ``cluster_size`` for heads (members attached, including the head).
    """
    nodes: dict[str, Mapping[str, Any]] = {}
    neighbours: dict[str, dict[str, float]] = {}
    for first, second, score in pairs:
        for a, b in ((first, second), (second, first)):
            nodes[a["article_id"]] = a
            neighbours.setdefault(a["article_id"], {})[b["article_id"]] = max(
                score, neighbours.get(a["article_id"], {}).get(b["article_id"], 0.0))
    heads: set[str] = set()
    result: dict[str, dict[str, Any]] = {}
    for node in sorted(nodes.values(), key=canonical_order):
        node_id = node["article_id"]
        similar_heads = [h for h in neighbours[node_id] if h in heads]
        if similar_heads:
            head = min(similar_heads, key=lambda h: canonical_order(nodes[h]))
            if not node[PRIOR]:
                result[node_id] = {"head": head, "similarity": neighbours[node_id][head]}
        else:
            heads.add(node_id)
            if not node[PRIOR]:
                result[node_id] = {"head": node_id, "similarity": 1.0}
    return result


class _MinHashFn(beam.DoFn):
    """Base of the DoFns that need a MinHasher: built once per worker, in setup."""

    def __init__(self, params: Mapping[str, Any]):
        self._params = dict(params)
        self._hasher: MinHasher | None = None

    def setup(self):
        self._hasher = MinHasher(self._params["num_perm"], self._params["shingle_size"], self._params["bands"],
                                 self._params["seed"])


class _SignFn(_MinHashFn):
    def process(self, article):
        signed = dict(article)
        signed["minhash"] = self._hasher.signature(content_key(article.get("title"), article.get("body")))
        yield signed


class _BandFn(_MinHashFn):
    def process(self, small: Mapping[str, Any]):
        for key in self._hasher.band_keys(small["minhash"]):
            yield key, small


def _pairs_in_band(keyed, threshold: float, max_members: int):
    _, members = keyed
    members = list(members)
    if len(members) < 2:
        return
    for first, second, score in candidate_pairs(members, threshold, max_members):
        yield f"{first['article_id']}|{second['article_id']}", (first, second, score)


def _clusters(pairs: list[tuple]):
    for article_id, assignment in sorted(assign_clusters(pairs).items()):
        yield article_id, assignment


class _ApplyClustersFn(beam.DoFn):
    """Joins articles with their cluster assignment; points exact duplicates at the final head."""

    def process(self, joined):
        article_id, groups = joined
        articles = list(groups["articles"])
        assignments = list(groups["clusters"])
        exact_dups = list(groups["exact"])
        sizes = list(groups["sizes"])
        if not articles:
            # Exact duplicates of an article that is not in this run's articles (a prior one).
            for dup in exact_dups:
                yield beam.pvalue.TaggedOutput(DUPLICATE, dup)
            return
        article = dict(articles[0])
        assignment = assignments[0] if assignments else {"head": article_id, "similarity": 1.0}
        head = assignment["head"]
        if head != article_id:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(article, head, assignment["similarity"], "minhash"))
            for dup in exact_dups:
                yield beam.pvalue.TaggedOutput(DUPLICATE, {**dup, "duplicate_of": head})
            return
        for dup in exact_dups:
            yield beam.pvalue.TaggedOutput(DUPLICATE, dup)
        article["cluster_id"] = article_id
        article["cluster_size"] = int(article.get("cluster_size") or 1) + sum(sizes)
        yield article


class DedupNear(beam.PTransform):
    """MinHash-LSH near-duplicate clustering of ``articles`` (already exact-deduplicated).

    ``exact_duplicates``: the exact step's duplicates, re-pointed at the final
    head when the article they copy turns out to be a near duplicate.
    ``prior``: index rows of earlier runs (marked ``_prior``, with ``minhash``).
    Returns ``{'articles', 'duplicates'}``.
    """

    def __init__(self, params: Mapping[str, Any], exact_duplicates, prior=None):
        super().__init__()
        self._params = dict(params)
        self._exact = exact_duplicates
        self._prior = prior

    def expand(self, articles):
        params = self._params
        signed = articles | "Sign" >> beam.ParDo(_SignFn(params))
        members = signed | "Members" >> beam.Map(member)
        if self._prior is not None:
            members = (members, self._prior | "PriorMembers" >> beam.Map(member)) | "WithPrior" >> beam.Flatten()
        pairs = (
            members
            | "BandKeys" >> beam.ParDo(_BandFn(params))
            | "GroupByBand" >> beam.GroupByKey()
            | "VerifyPairs" >> beam.FlatMap(_pairs_in_band, params["threshold"], params["max_cluster_candidates"])
            | "GroupPairs" >> beam.GroupByKey()
            | "OnePerPair" >> beam.Map(lambda kv: next(iter(kv[1])))
        )
        clusters = (
            pairs
            | "AllPairs" >> beam.combiners.ToList()
            | "Cluster" >> beam.FlatMap(_clusters)
        )
        # Members attached to a head add their own exact-copy counts to the head's cluster size.
        sizes_by_head = (
            clusters
            | "NonHeads" >> beam.Filter(lambda kv: kv[1]["head"] != kv[0])
            | "HeadOf" >> beam.Map(lambda kv: (kv[0], kv[1]["head"]))
        )
        own_sizes = signed | "OwnSize" >> beam.Map(lambda a: (a["article_id"], int(a.get("cluster_size") or 1)))
        member_sizes = (
            {"head": sizes_by_head, "size": own_sizes}
            | "JoinSizes" >> beam.CoGroupByKey()
            | "SizeToHead" >> beam.FlatMap(
                lambda kv: [(h, s) for h in kv[1]["head"] for s in kv[1]["size"]])
        )
        joined = (
            {
                "articles": signed | "ById" >> beam.Map(lambda a: (a["article_id"], a)),
                "clusters": clusters,
                "exact": self._exact | "ByKept" >> beam.Map(lambda d: (d["duplicate_of"], d)),
                "sizes": member_sizes,
            }
            | "Join" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(_ApplyClustersFn()).with_outputs(DUPLICATE, main="articles")
        )
        return {"articles": joined.articles, DUPLICATE: joined[DUPLICATE]}


class Deduplicate(beam.PTransform):
    """Exact then near dedup; ``params`` is the profile's ``dedup`` section.

    Returns ``{'articles', 'duplicates'}``: each input article in exactly one.
    """

    def __init__(self, params: Mapping[str, Any], prior=None):
        super().__init__()
        self._params = dict(params)
        self._prior = prior

    def expand(self, articles):
        exact = articles | "Exact" >> DedupExact(self._prior)
        if not self._params.get("enabled_near", True):
            kept = (exact["articles"]
                    | "SignOnly" >> beam.ParDo(_SignFn(self._params))
                    | "ClusterOfOne" >> beam.Map(lambda a: {**a, "cluster_id": a["article_id"]}))
            return {"articles": kept, DUPLICATE: exact[DUPLICATE]}
        return exact["articles"] | "Near" >> DedupNear(self._params, exact[DUPLICATE], self._prior)


__all__ = ["DUPLICATE", "Deduplicate", "DedupExact", "DedupNear", "assign_clusters", "candidate_pairs",
           "canonical_order", "duplicate_record", "pick_canonical", "prior_article"]
