"""Step 3: remove exact and near duplicates, within a run and against earlier runs.

Core (plain functions):
  * ``canonical_order``: which copy of a story is kept (earliest ``published_at``,
    then the longest text, then the smallest ``article_id``); anything an earlier
    run already wrote ("prior") always wins. ``slim`` is the same order as a small
    tuple (times as integer microseconds), the record exact dedup shuffles.
  * ``pick_canonical``: split the copies of one key into kept and others.
  * ``band_pairs`` / ``candidate_pairs``: candidate (and verified) near-duplicate
    pairs among the members of one LSH band; ``shard_pairs`` the same for many band keys at
    once, ``near_clusters`` the verified and clustered pairs of a set of slim records.
  * ``cluster_refs`` / ``assign_clusters``: greedy star clustering of verified
    pairs: in canonical order, each article joins the earliest head it is similar
    to, else heads its own cluster. Every duplicate is therefore similar to the
    article it points at (no chains through intermediate copies).
  * ``decide``: every decision of a run from its slim records (exact on ``article_id``, then on
    ``content_hash``, then near); ``apply_decision``: the kept article and duplicate rows of the
    full copies of one article_id.

Transform :class:`Deduplicate`: the run's slim records are gathered in one element and decided
there (``decide``); the full articles cross one join with their decisions, as lists per shard
of the article_id. Returns ``{'articles', 'duplicates'}`` (lists with ``output_batches``); every
input article is in exactly one of them. Articles carry ``cluster_id``/``cluster_size`` and their
``minhash`` signature (for the index).
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from schemas import SCHEMA_VERSION
from transforms.batching import RecordBatch, decode_records, encode_records
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


def exact_winners(copies_by_key: Iterable[list[tuple]]) -> tuple[list[tuple], dict[str, str], dict[str, list[str]]]:
    """Exact dedup of groups of slim records sharing a key (article_id or content_hash).

    Per group the first record in canonical order goes on with the summed ``size`` of the current
    copies, when it is current; when it is prior, the current copies duplicate it. Returns
    ``(winners, decisions, copies)``: the winners' slim records, the decisions of copies of prior
    records (``{current article_id: prior article_id}``) and, per current winner, the article_ids
    of its current copies.
    """
    winners, to_prior, copies = [], {}, {}
    for group in copies_by_key:
        kept, others = _pick(group)
        if kept[_CURRENT]:
            winners.append(kept[:_SIZE] + (kept[_SIZE] + sum(o[_SIZE] for o in others), kept[_SIG]))
            if others:
                copies[kept[_ID]] = [o[_ID] for o in others]
        else:
            for other in others:
                to_prior[other[_ID]] = kept[_ID]
    return winners, to_prior, copies


def _grouped(records: Iterable[tuple], field: int) -> list[list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for record in records:
        group = groups.get(record[field])
        if group is None:
            groups[record[field]] = [record]
        else:
            group.append(record)
    return list(groups.values())


def decide(records: Iterable[tuple], params: Mapping[str, Any] | None = None,
           hasher: MinHasher | None = None) -> dict[str, tuple]:
    """Every dedup decision of a run: ``{article_id: ('kept', size) | ('dup', target, similarity, method)}``
    for each distinct article_id of the current slim records among ``records`` (current and prior
    slim records, :func:`slim`).

    1. exact by ``article_id``: copies of one id keep the first in canonical order (a prior
       record wins: the current copies become its ``id`` duplicates);
    2. exact by ``content_hash`` among the id winners and the prior records (``content_hash``);
    3. near (``params`` given and ``enabled_near``): MinHash-LSH candidate pairs among the hash
       winners and the prior records (:func:`near_clusters`), clustered by :func:`cluster_refs`;
       a winner in a cluster it does not head becomes a ``minhash`` duplicate of its head, and its
       exact copies point at that head too.
    """
    records = list(records)
    prior = [r for r in records if not r[_CURRENT]]
    decisions: dict[str, tuple] = {}
    by_id, to_prior, _ = exact_winners(_grouped(records, _ID))
    for article_id in to_prior:
        decisions[article_id] = _dup(article_id, 1.0, "id")
    winners, to_prior, hash_copies = exact_winners(_grouped(by_id + prior, _HASH))
    for article_id, target in to_prior.items():
        decisions[article_id] = _dup(target, 1.0, "content_hash")
    near: dict[str, tuple] = {}
    if params is not None and params.get("enabled_near", True):
        near = near_clusters(winners + prior, hasher or minhasher(params), params["threshold"],
                             params["max_cluster_candidates"])
    for winner in winners:
        article_id = winner[_ID]
        cluster = near.get(article_id)
        if cluster is not None and cluster[0] != article_id:
            head, score, _ = cluster
            decisions[article_id] = _dup(head, score, "minhash")
        else:
            head = article_id
            decisions[article_id] = _kept(cluster[2] if cluster is not None else winner[_SIZE])
        for other in hash_copies.get(article_id, ()):
            decisions[other] = _dup(head, 1.0, "content_hash")
    return decisions


def apply_decision(article_id: str, copies: list[dict], decision: tuple | None) -> tuple[dict | None, list[dict]]:
    """The full copies of one article_id and their decision -> ``(kept article or None, duplicate rows)``."""
    if decision is None or not copies:
        raise RuntimeError(f"dedup: article {article_id} has {len(copies)} copies and no decision"
                           if decision is None else f"dedup: decision {decision} for no article {article_id}")
    copies = sorted(copies, key=_order_key)
    first, others = copies[0], copies[1:]
    kept = None
    if decision[0] == "kept":
        kept = dict(first)
        kept["cluster_id"] = article_id
        kept["cluster_size"] = decision[1]
        target = article_id
        duplicates = []
    else:
        _, target, score, method = decision
        duplicates = [duplicate_record(first, target, score, method)]
    duplicates.extend(duplicate_record(other, target, 1.0, "id") for other in others)
    return kept, duplicates


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
# Full articles cross the join with their decisions in a fixed number of shards (of the article_id),
# in lists of up to ``BATCH`` entries: a few elements per shard instead of one per article. Each
# list crosses as bytes (transforms/batching.py ``encode_records``), encoded once here and decoded
# once in the join.
JOIN_SHARDS = 16
BATCH = 512


def join_shard(article_id: str, shards: int) -> int:
    """The join shard of an article_id (stable across processes)."""
    return zlib.crc32(article_id.encode("utf-8")) % shards


class _SignFn(_MinHashFn):
    """Full articles -> ``(shard, encode_records([(article_id, article), ...]))`` (main output) and
    lists of their slim records (``SLIM``), buffered over the bundle per window.

    Normalize signs articles when it is given the dedup parameters (it has the content key at
    hand); others are signed here.
    """

    def __init__(self, params: Mapping[str, Any], shards: int | None = None, batch: int | None = None):
        super().__init__(params)
        self._shards = shards or JOIN_SHARDS
        self._batch = batch or BATCH
        self._buffers: dict = {}

    def start_bundle(self):
        self._buffers = {}  # window -> [slim records, one list per shard]

    def process(self, article, window=beam.DoFn.WindowParam):
        if self._hasher is not None and article.get("minhash") is None:
            article = {**article, "minhash": self._hasher.signature(content_key(article.get("title"),
                                                                                article.get("body")))}
        buffers = self._buffers.get(window)
        if buffers is None:
            buffers = self._buffers[window] = [[], [[] for _ in range(self._shards)]]
        slims, shards = buffers
        article_id = article["article_id"]
        slims.append(slim(article))
        shard = join_shard(article_id, self._shards)
        shards[shard].append((article_id, article))
        if len(shards[shard]) >= self._batch:
            yield shard, encode_records(shards[shard])
            shards[shard] = []
        if len(slims) >= self._batch * self._shards:
            yield beam.pvalue.TaggedOutput(SLIM, slims)
            buffers[0] = []

    def finish_bundle(self):
        for window, (slims, shards) in self._buffers.items():
            timestamp = window.max_timestamp()
            if slims:
                yield beam.pvalue.TaggedOutput(SLIM, WindowedValue(slims, timestamp, [window]))
            for shard, batch in enumerate(shards):
                if batch:
                    yield WindowedValue((shard, encode_records(batch)), timestamp, [window])
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


def near_clusters(members: Iterable[tuple], hasher: MinHasher, threshold: float,
                  max_members: int) -> dict[str, tuple[str, float, int]]:
    """MinHash-LSH near dedup of slim records (current winners and prior records): the distinct
    candidate pairs of every LSH band key (:func:`shard_pairs`), verified against ``threshold``,
    clustered by :func:`cluster_refs`; ``{article_id: (head, similarity, size)}``."""
    signatures: dict[tuple, bytes] = {}
    entries = []
    for record in members:
        ref = near_ref(record)
        signatures.setdefault(ref, record[_SIG])
        entries.extend((key, ref) for key in hasher.band_keys(record[_SIG]))
    verified = []
    for first, second in set(shard_pairs(entries, max_members)):
        score = similarity(signatures[first], signatures[second])
        if score >= threshold:
            verified.append((first, second, score))
    return cluster_refs(verified)


class _DecideFn(_MinHashFn):
    """``(None, [slim record lists])`` -> the run's decisions (:func:`decide`) as
    ``(shard, [(article_id, decision), ...])``, one element per join shard that has any."""

    def __init__(self, params: Mapping[str, Any] | None, shards: int | None = None):
        super().__init__(params or {})
        self._decide_params = dict(params) if params is not None else None
        self._shards = shards or JOIN_SHARDS

    def process(self, keyed):
        _, batches = keyed
        decisions = decide((r for batch in batches for r in batch), self._decide_params, self._hasher)
        shards: list[list] = [[] for _ in range(self._shards)]
        for article_id, decision in sorted(decisions.items()):
            shards[join_shard(article_id, self._shards)].append((article_id, decision))
        for shard, batch in enumerate(shards):
            if batch:
                yield shard, batch


class _ApplyDecisionsFn(beam.DoFn):
    """The full copies and decisions of one join shard -> one list of kept articles (main output)
    and one list of duplicate rows (``DUPLICATE``)."""

    def process(self, joined):
        _, groups = joined
        copies: dict[str, list] = {}
        for encoded in groups["articles"]:
            for article_id, article in decode_records(encoded):
                copies.setdefault(article_id, []).append(article)
        decided = {article_id: decision for batch in groups[DECISION] for article_id, decision in batch}
        kept_all, duplicates = [], []
        for article_id in sorted(copies.keys() | decided.keys()):
            kept, dups = apply_decision(article_id, copies.get(article_id, []), decided.get(article_id))
            if kept is not None:
                kept_all.append(kept)
            duplicates.extend(dups)
        if kept_all:
            yield RecordBatch(kept_all)
        if duplicates:
            yield beam.pvalue.TaggedOutput(DUPLICATE, RecordBatch(duplicates))


def _flatten(batch):
    return batch


class Deduplicate(beam.PTransform):
    """Exact then near dedup; ``params`` is the profile's ``dedup`` section.

    Exact: one article per ``article_id``, then per ``content_hash``; near:
    MinHash-LSH clusters (unless ``enabled_near`` is false). ``prior``: optional
    PCollection of index rows of earlier runs (marked ``_prior``); a current
    article that copies one becomes its duplicate. ``lookup``: optional transform
    from the current slim records (lists of them) to the prior slim records that share a key with
    them (``transforms.dedup_index.LookupDedupIndex``), the same result as passing
    the whole index as ``prior`` without shuffling it.

    The decisions are taken by :func:`decide` on the slim records of the whole run, gathered in one
    element (about 0.4 KB per article with 128 permutations); the full articles cross one join
    with them, in lists per shard of the article_id.

    Returns ``{'articles', 'duplicates'}``: each input article in exactly one; with
    ``output_batches`` both are PCollections of lists (one list per join shard).
    Kept articles carry ``cluster_id``/``cluster_size`` and their ``minhash``
    signature (for the index) when ``params`` is given.
    """

    def __init__(self, params: Mapping[str, Any] | None, prior=None, lookup: beam.PTransform | None = None,
                 output_batches: bool = False):
        super().__init__()
        self._params = dict(params) if params is not None else None
        self._prior = prior
        self._lookup = lookup
        self._output_batches = output_batches

    def expand(self, articles):
        params = self._params
        shards = JOIN_SHARDS
        signed = articles | "Sign" >> beam.ParDo(_SignFn(params or {}, shards)).with_outputs(SLIM, main="keyed")
        slims = [signed[SLIM] | "KeySlim" >> beam.Map(lambda batch: (None, batch))]
        if self._prior is not None:
            slims.append(self._prior | "PriorSlim" >> beam.Map(lambda row: (None, [slim({**row, PRIOR: True})])))
        if self._lookup is not None:
            # Only the index rows that share a key with a current article: the others decide nothing.
            slims.append(signed[SLIM] | "LookupPrior" >> self._lookup
                         | "KeyPrior" >> beam.Map(lambda record: (None, [record])))
        decisions = (
            slims
            | "AllSlim" >> beam.Flatten()
            | "GatherSlim" >> beam.GroupByKey()
            | "Decide" >> beam.ParDo(_DecideFn(params, shards))
        )
        applied = (
            {"articles": signed.keyed, DECISION: decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(_ApplyDecisionsFn()).with_output_types(RecordBatch, **{DUPLICATE: RecordBatch})
            .with_outputs(DUPLICATE, main="articles")
        )
        kept, duplicates = applied.articles, applied[DUPLICATE]
        if not self._output_batches:
            kept = kept | "Articles" >> beam.FlatMap(_flatten)
            duplicates = duplicates | "Duplicates" >> beam.FlatMap(_flatten)
        return {"articles": kept, DUPLICATE: duplicates}


class DedupExact(Deduplicate):
    """Exact dedup only: one article per ``article_id`` and per ``content_hash`` (no signatures).

    Returns ``{'articles', 'duplicates'}``; every input is in exactly one of them.
    """

    def __init__(self, prior=None, output_batches: bool = False):
        super().__init__(None, prior, output_batches=output_batches)


__all__ = ["DUPLICATE", "Deduplicate", "DedupExact", "apply_decision", "assign_clusters", "band_pairs",
           "candidate_pairs", "canonical_order", "cluster_refs", "decide", "duplicate_record", "member",
           "near_clusters", "near_ref", "pick_canonical", "prior_article", "shard_pairs", "slim"]
