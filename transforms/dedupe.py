"""Step 3: remove exact and near duplicates, within a run and against earlier runs.

Core (plain functions):
  * ``canonical_order``: which copy of a story is kept (earliest ``published_at``,
    then the longest text, then the smallest ``article_id``); anything an earlier
    run already wrote ("prior") always wins. ``slim`` is the same order as a small
    tuple (times as integer microseconds), the record exact dedup shuffles.
  * ``pick_canonical``: split the copies of one key into kept and others.
  * ``band_pairs`` / ``candidate_pairs``: candidate (and verified) near-duplicate
    pairs among the members of one LSH band; ``shard_pairs`` the same for every band key of a
    shard (the transform groups band keys by shard, many per element, not one element per band).
  * ``cluster_refs`` / ``assign_clusters``: greedy star clustering of verified
    pairs: in canonical order, each article joins the earliest head it is similar
    to, else heads its own cluster. Every duplicate is therefore similar to the
    article it points at (no chains through intermediate copies).

Transform :class:`Deduplicate` = exact dedup on ``article_id`` then
``content_hash``, then MinHash-LSH near dedup, all decided on slim tuples; the
full articles are shuffled once, to apply the decisions. Returns ``{'articles',
'duplicates'}``; every input article is in exactly one of them. Articles carry
``cluster_id``/``cluster_size`` and their ``minhash`` signature (for the index).
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from schemas import SCHEMA_VERSION
from transforms.minhash import MinHasher, minhasher, similarity  # noqa: F401  (minhasher re-exported)
from transforms.text import content_key

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


# -- slim records ---------------------------------------------------------------
#
# Decisions are taken on small tuples; full articles are shuffled once, in the final join.
# Sorting slim tuples gives the canonical order: their first six fields mirror canonical_order.

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
# Slim article: (current, undated, published µs, -text_length, article_id, origin, content_hash, size, minhash)
_CURRENT, _ID, _HASH, _SIZE, _SIG = 0, 4, 6, 7, 8
# Near-dedup reference (the band records): (current, undated, published µs, -text_length, article_id, size)
_REF_ID, _REF_SIZE = 4, 5


def _micros(when: dt.datetime | None) -> int:
    if when is None:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - _EPOCH) // _MICROSECOND


def slim(article: Mapping[str, Any]) -> tuple:
    """What exact dedup needs of an article (or prior index row), as a tuple sorting in canonical order.

    Published times are integer microseconds, so Beam's coder does not pickle them.
    """
    published = article.get("published_at")
    return (
        not article.get(PRIOR, False),
        published is None,
        _micros(published),
        -int(article.get("text_length") or 0),
        article["article_id"],
        article.get("origin") or "",
        article["content_hash"],
        int(article.get("cluster_size") or 1),
        article.get("minhash"),
    )


def _order_key(article: Mapping[str, Any]) -> tuple:
    """Order of full copies in the final join: the same as of their slim records."""
    return slim(article)[:_SIG]


def _fixed_offset(when: dt.datetime) -> bool:
    tz = when.tzinfo
    return when.fold == 0 and (tz is None or (type(tz) is dt.timezone
                                              and tz.tzname(None) == dt.timezone(tz.utcoffset(None)).tzname(None)))


def pack(article: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """An article for a shuffle, with its datetimes and dates as integers: Beam's coder pickles
    those otherwise (~3x the cost of the rest of the article). Only naive and fixed-offset
    datetimes are converted; :func:`unpack` restores equal values with the same time zones."""
    plain, times, dates = {}, {}, {}
    for key, value in article.items():
        kind = type(value)
        if kind is dt.datetime and _fixed_offset(value):
            offset = value.utcoffset()
            times[key] = (_micros(value.replace(tzinfo=None)), None if offset is None else offset // _MICROSECOND)
        elif kind is dt.date:
            dates[key] = value.toordinal()
        else:
            plain[key] = value
    return plain, times, dates


def unpack(packed: tuple[dict, dict, dict]) -> dict[str, Any]:
    plain, times, dates = packed
    article = dict(plain)
    for key, (micros, offset) in times.items():
        when = _NAIVE_EPOCH + micros * _MICROSECOND
        article[key] = when if offset is None else when.replace(tzinfo=dt.timezone(offset * _MICROSECOND))
    for key, ordinal in dates.items():
        article[key] = dt.date.fromordinal(ordinal)
    return article


def near_ref(record: Mapping[str, Any] | tuple) -> tuple:
    """Band record of a slim tuple or a member dict: canonical-order fields (no origin: near-dedup
    members have distinct ids), article_id and the exact-copy count ``size``."""
    if not isinstance(record, tuple):
        record = slim({**record, "content_hash": ""})
    return record[:_ID + 1] + (record[_SIZE],)


def _is_current(record) -> bool:
    return record[_CURRENT] if isinstance(record, tuple) else not record.get(PRIOR)


def _pick(copies: Iterable[tuple]) -> tuple[tuple, list[tuple]]:
    ordered = sorted(copies, key=lambda s: s[:_SIG])
    return ordered[0], [s for s in ordered[1:] if s[_CURRENT]]


# Decisions, keyed by the article_id of a group of current copies (one decision per group).
def _kept(size: int) -> tuple:
    return ("kept", size)


def _dup(target: str, similarity_: float, method: str) -> tuple:
    return ("dup", target, similarity_, method)


DECISION = "decision"
HASH_DUP = "hash_dup"


class _ExactByIdFn(beam.DoFn):
    """Copies sharing an article_id: the first in canonical order goes on, with their count."""

    def process(self, keyed):
        article_id, copies = keyed
        kept, others = _pick(copies)
        if kept[_CURRENT]:
            yield kept[:_SIZE] + (kept[_SIZE] + sum(o[_SIZE] for o in others), kept[_SIG])
        elif others:
            yield beam.pvalue.TaggedOutput(DECISION, (article_id, _dup(article_id, 1.0, "id")))


class _ExactByHashFn(beam.DoFn):
    """Id winners sharing a content_hash: the first goes on; the others copy it."""

    def process(self, keyed):
        _, copies = keyed
        kept, others = _pick(copies)
        if kept[_CURRENT]:
            yield kept[:_SIZE] + (kept[_SIZE] + sum(o[_SIZE] for o in others), kept[_SIG])
            for other in others:
                yield beam.pvalue.TaggedOutput(HASH_DUP, (kept[_ID], other[_ID]))
        else:
            for other in others:
                yield beam.pvalue.TaggedOutput(DECISION, (other[_ID], _dup(kept[_ID], 1.0, "content_hash")))


def _resolve(keyed):
    """Decisions for an exact winner and the current copies of its content hash."""
    article_id, groups = keyed
    own = list(groups["own"])
    if not own:
        return
    near = next(iter(groups["near"]), None)
    if near is not None and near[0] != article_id:
        head, score, _ = near
        yield article_id, _dup(head, score, "minhash")
    else:
        head = article_id
        yield article_id, _kept(near[2] if near is not None else own[0])
    for other in groups["hash_dups"]:
        yield other, _dup(head, 1.0, "content_hash")


class _ApplyDecisionFn(beam.DoFn):
    """Full copies of one article_id + their decision -> the kept article and duplicate rows."""

    def process(self, joined):
        article_id, groups = joined
        copies = sorted(map(unpack, groups["articles"]), key=_order_key)
        decision = next(iter(groups[DECISION]), None)
        if decision is None or not copies:
            raise RuntimeError(f"dedup: article {article_id} has {len(copies)} copies and no decision"
                               if decision is None else f"dedup: decision {decision} for no article {article_id}")
        first, others = copies[0], copies[1:]
        if decision[0] == "kept":
            kept = dict(first)
            kept["cluster_id"] = article_id
            kept["cluster_size"] = decision[1]
            yield kept
            target = article_id
        else:
            _, target, score, method = decision
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(first, target, score, method))
        for other in others:
            yield beam.pvalue.TaggedOutput(DUPLICATE, duplicate_record(other, target, 1.0, "id"))


# -- near ---------------------------------------------------------------------

def member(article: Mapping[str, Any]) -> dict[str, Any]:
    """The small part of an article that near-dup clustering needs (dict form, for the plain loop)."""
    return {
        "article_id": article["article_id"],
        "minhash": article["minhash"],
        "published_at": article.get("published_at"),
        "text_length": article.get("text_length") or 0,
        "origin": article.get("origin") or "",
        "cluster_size": int(article.get("cluster_size") or 1),
        PRIOR: bool(article.get(PRIOR)),
    }


def band_pairs(members: Iterable, max_members: int) -> list[tuple]:
    """Unverified candidate pairs ``(first, second)`` among one LSH band's members.

    ``first`` precedes ``second`` in canonical order; pairs of two prior articles
    are skipped (an earlier run decided those). In a band with more than
    ``max_members`` members only the first ``max_members`` are compared with each
    other and with the rest, so a band many boilerplate texts share does not cost
    n² comparisons. Members are near refs (tuples) or member dicts.
    """
    ordered = sorted(members, key=lambda m: m if isinstance(m, tuple) else canonical_order(m))
    pairs = []
    for i, first in enumerate(ordered[:max_members]):
        first_current = _is_current(first)
        for second in ordered[i + 1:]:
            if first_current or _is_current(second):
                pairs.append((first, second))
    return pairs


def candidate_pairs(members: Iterable[Mapping[str, Any]], threshold: float, max_members: int) -> list[tuple]:
    """Verified pairs ``(first, second, similarity)`` among one band's member dicts (see
    :func:`band_pairs`): estimated Jaccard of their signatures >= ``threshold``."""
    pairs = []
    for first, second in band_pairs(members, max_members):
        score = similarity(first["minhash"], second["minhash"])
        if score >= threshold:
            pairs.append((first, second, score))
    return pairs


def cluster_refs(pairs: Iterable[tuple]) -> dict[str, tuple[str, float, int]]:
    """Greedy star clustering of verified pairs of near refs.

    Returns, per current-run article in any pair, ``(head, similarity, size)``:
    ``head`` = the article it duplicates, or itself when it heads a cluster;
    ``size`` (heads only) = its own size plus the sizes of the members attached to it.
    """
    nodes: dict[str, tuple] = {}
    neighbours: dict[str, dict[str, float]] = {}
    for first, second, score in pairs:
        for a, b in ((first, second), (second, first)):
            a_id, b_id = a[_REF_ID], b[_REF_ID]
            nodes[a_id] = a
            links = neighbours.setdefault(a_id, {})
            links[b_id] = max(score, links.get(b_id, 0.0))
    heads: set[str] = set()
    result: dict[str, list] = {}
    for node in sorted(nodes.values()):
        node_id = node[_REF_ID]
        similar_heads = [h for h in neighbours[node_id] if h in heads]
        if similar_heads:
            head = min(similar_heads, key=lambda h: nodes[h])
            if node[_CURRENT]:
                result[node_id] = [head, neighbours[node_id][head], 0]
                if head in result:
                    result[head][2] += node[_REF_SIZE]
        else:
            heads.add(node_id)
            if node[_CURRENT]:
                result[node_id] = [node_id, 1.0, node[_REF_SIZE]]
    return {k: tuple(v) for k, v in result.items()}


def assign_clusters(pairs: Iterable[tuple]) -> dict[str, dict[str, Any]]:
    """Greedy star clustering of verified pairs of member dicts (see :func:`cluster_refs`).

    Returns, per current-run article in any pair, ``{'head', 'similarity'}``
    (``head`` = the article it duplicates, or itself when it heads a cluster).
    In canonical order, each article joins the earliest head it is similar to,
    else heads its own cluster.
    """
    refs = [(near_ref(a), near_ref(b), score) for a, b, score in pairs]
    return {k: {"head": head, "similarity": score} for k, (head, score, _) in cluster_refs(refs).items()}


class _MinHashFn(beam.DoFn):
    """Base of the DoFns that need a MinHasher: built once per worker, in setup."""

    def __init__(self, params: Mapping[str, Any]):
        self._params = dict(params)
        self._hasher: MinHasher | None = None

    def setup(self):
        if self._params:
            self._hasher = minhasher(self._params)


SLIM = "slim"


class _SignFn(_MinHashFn):
    """Full article -> (article_id, article with ``minhash``) and its slim record.

    Normalize signs articles when it is given the dedup parameters (it has the
    content key at hand); others are signed here.
    """

    def process(self, article):
        if self._hasher is not None and article.get("minhash") is None:
            article = {**article, "minhash": self._hasher.signature(content_key(article.get("title"),
                                                                                article.get("body")))}
        yield article["article_id"], pack(article)
        yield beam.pvalue.TaggedOutput(SLIM, slim(article))


# Band keys cross the shuffle in a fixed number of shards (key = shard of the band value), many
# ``(band key, ref)`` entries per element, instead of one element per band and article: the runner's
# per-element cost was most of the near-dedup cost (32 bands = 32 elements per article).
NEAR_SHARDS = 16
SHARD_BATCH = 2048  # entries per element; bounds the buffer a bundle holds


class _BandShardFn(_MinHashFn):
    """Slim record -> ``(shard, [(band key, near ref), ...])`` elements: the record's band keys,
    buffered per shard over the bundle and emitted in lists of up to ``batch`` entries."""

    def __init__(self, params: Mapping[str, Any], shards: int | None = None, batch: int | None = None):
        super().__init__(params)
        self._shards = shards or NEAR_SHARDS
        self._batch = batch or SHARD_BATCH
        self._buffers: dict = {}

    def start_bundle(self):
        self._buffers = {}  # window -> one list per shard

    def process(self, record: tuple, window=beam.DoFn.WindowParam):
        ref = near_ref(record)
        shards, batch = self._shards, self._batch
        buffers = self._buffers.get(window)
        if buffers is None:
            buffers = self._buffers[window] = [[] for _ in range(shards)]
        for key in self._hasher.band_keys(record[_SIG]):
            shard = zlib.crc32(key) % shards
            buffer = buffers[shard]
            buffer.append((key, ref))
            if len(buffer) >= batch:
                buffers[shard] = []
                yield shard, buffer

    def finish_bundle(self):
        for window, buffers in self._buffers.items():
            for shard, buffer in enumerate(buffers):
                if buffer:
                    yield WindowedValue((shard, buffer), window.max_timestamp(), [window])
        self._buffers = {}


def shard_pairs(entries: Iterable[tuple[bytes, tuple]], max_members: int) -> Iterable[tuple]:
    """Candidate pairs among ``(band key, near ref)`` entries: :func:`band_pairs` of every band key
    that more than one entry has (the same pairs as grouping by band key)."""
    members: dict[bytes, list] = {}
    for key, ref in entries:
        refs = members.get(key)
        if refs is None:
            members[key] = [ref]
        else:
            refs.append(ref)
    for refs in members.values():
        if len(refs) > 1:
            yield from band_pairs(refs, max_members)


def _pairs_in_shard(keyed, max_members: int):
    _, batches = keyed
    yield from shard_pairs((entry for batch in batches for entry in batch), max_members)


def _pair_sides(pair):
    first, second = pair
    yield first, (pair, 0)
    yield second, (pair, 1)


def _attach_signatures(keyed):
    _, groups = keyed
    signature = next(iter(groups["signature"]))
    for pair, side in groups["pairs"]:
        yield pair, (side, signature)


def _verify(keyed, threshold: float):
    (first, second), sides = keyed
    signatures = dict(sides)
    score = similarity(signatures[0], signatures[1])
    if score >= threshold:
        yield first, second, score


def _clusters(pairs: list[tuple]):
    yield from sorted(cluster_refs(pairs).items())


class _NearClusters(beam.PTransform):
    """Slim exact winners + prior slim records -> ``(article_id, (head, similarity, size))``
    for every current article in a verified pair.

    Band records carry only a near ref (canonical-order fields, id, size) and travel in lists
    per shard of band keys (:class:`_BandShardFn`); candidate pairs are found inside each shard.
    Each signature is shuffled once more, to verify the (few) candidate pairs.
    """

    def __init__(self, params: Mapping[str, Any]):
        super().__init__()
        self._params = dict(params)

    def expand(self, members):
        params = self._params
        candidates = (
            members
            | "BandKeys" >> beam.ParDo(_BandShardFn(params))
            | "GroupByShard" >> beam.GroupByKey()
            | "PairsInShard" >> beam.FlatMap(_pairs_in_shard, params["max_cluster_candidates"])
            | "DistinctPairs" >> beam.Distinct()
            | "PairSides" >> beam.FlatMap(_pair_sides)
        )
        signatures = members | "SignatureByRef" >> beam.Map(lambda s: (near_ref(s), s[_SIG]))
        return (
            {"signature": signatures, "pairs": candidates}
            | "JoinSignatures" >> beam.CoGroupByKey()
            | "AttachSignatures" >> beam.FlatMap(_attach_signatures)
            | "GroupSides" >> beam.GroupByKey()
            | "Verify" >> beam.FlatMap(_verify, params["threshold"])
            | "AllPairs" >> beam.combiners.ToList()
            | "Cluster" >> beam.FlatMap(_clusters)
        )


class Deduplicate(beam.PTransform):
    """Exact then near dedup; ``params`` is the profile's ``dedup`` section.

    Exact: one article per ``article_id``, then per ``content_hash``; near:
    MinHash-LSH clusters (unless ``enabled_near`` is false). ``prior``: optional
    PCollection of index rows of earlier runs (marked ``_prior``); a current
    article that copies one becomes its duplicate. ``lookup``: optional transform
    from the current slim records to the prior slim records that share a key with
    them (``transforms.dedup_index.LookupDedupIndex``), the same result as passing
    the whole index as ``prior`` without shuffling it. Decisions are taken on slim
    records; full articles are shuffled once, to apply them.

    Returns ``{'articles', 'duplicates'}``: each input article in exactly one.
    Kept articles carry ``cluster_id``/``cluster_size`` and their ``minhash``
    signature (for the index) when ``params`` is given.
    """

    def __init__(self, params: Mapping[str, Any] | None, prior=None, lookup: beam.PTransform | None = None):
        super().__init__()
        self._params = dict(params) if params is not None else None
        self._prior = prior
        self._lookup = lookup

    def expand(self, articles):
        params = self._params
        signed = articles | "Sign" >> beam.ParDo(_SignFn(params or {})).with_outputs(SLIM, main="keyed")
        prior = None
        if self._prior is not None:
            prior = self._prior | "PriorSlim" >> beam.Map(lambda row: slim({**row, PRIOR: True}))
        if self._lookup is not None:
            # Only the index rows that share a key with a current article: the others decide nothing.
            matched = signed[SLIM] | "LookupPrior" >> self._lookup
            prior = matched if prior is None else (prior, matched) | "AllPrior" >> beam.Flatten()

        def with_prior(pcoll, label):
            return (pcoll, prior) | label >> beam.Flatten() if prior is not None else pcoll

        by_id = (
            with_prior(signed[SLIM], "IdWithPrior")
            | "KeyById" >> beam.Map(lambda s: (s[_ID], s))
            | "GroupById" >> beam.GroupByKey()
            | "ById" >> beam.ParDo(_ExactByIdFn()).with_outputs(DECISION, main="kept")
        )
        by_hash = (
            with_prior(by_id.kept, "HashWithPrior")
            | "KeyByHash" >> beam.Map(lambda s: (s[_HASH], s))
            | "GroupByHash" >> beam.GroupByKey()
            | "ByHash" >> beam.ParDo(_ExactByHashFn()).with_outputs(DECISION, HASH_DUP, main="kept")
        )
        winners = by_hash.kept
        resolve_inputs = {
            "own": winners | "OwnSize" >> beam.Map(lambda s: (s[_ID], s[_SIZE])),
            "hash_dups": by_hash[HASH_DUP],
        }
        if params is not None and params.get("enabled_near", True):
            resolve_inputs["near"] = with_prior(winners, "NearWithPrior") | "Near" >> _NearClusters(params)
        else:
            resolve_inputs["near"] = articles.pipeline | "NoNear" >> beam.Create([])
        resolved = resolve_inputs | "JoinExactAndNear" >> beam.CoGroupByKey() | "Resolve" >> beam.FlatMap(_resolve)
        decisions = (by_id[DECISION], by_hash[DECISION], resolved) | "AllDecisions" >> beam.Flatten()
        applied = (
            {"articles": signed.keyed, DECISION: decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(_ApplyDecisionFn()).with_outputs(DUPLICATE, main="articles")
        )
        return {"articles": applied.articles, DUPLICATE: applied[DUPLICATE]}


class DedupExact(Deduplicate):
    """Exact dedup only: one article per ``article_id`` and per ``content_hash`` (no signatures).

    Returns ``{'articles', 'duplicates'}``; every input is in exactly one of them.
    """

    def __init__(self, prior=None):
        super().__init__(None, prior)


__all__ = ["DUPLICATE", "Deduplicate", "DedupExact", "assign_clusters", "band_pairs", "candidate_pairs",
           "canonical_order", "cluster_refs", "duplicate_record", "member", "near_ref", "pack", "pick_canonical",
           "prior_article", "shard_pairs", "slim", "unpack"]
