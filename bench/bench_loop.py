"""The plain single-process loop: the pipeline's pure cores called in order, no Beam.

It reads the same files, calls the same core functions as the Beam
transforms (``transforms.read.file_to_item``, ``normalize.to_article``,
``dedupe.pick_canonical`` / ``candidate_pairs`` / ``assign_clusters``,
``minhash.MinHasher``, ``language.tag_language``, ``topics.label_article``,
``write.write_parquet_file``) and writes the same tables, timing each step.
It is the practical speed limit of the stack on one core, and the source of
the per-step costs in the benchmark. Only the glue that lives inside DoFns
(grouping, applying cluster assignments) is repeated here; the step bodies
are imported, so a changed core is measured as it is.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Callable

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.chunking import chunk_run_id, split
from pipeline.settings import RunSettings
from schemas import ARTICLES, DEAD_LETTERS, DEDUP_INDEX, DUPLICATES
from transforms.common import RunInfo, dead_letter, stable_int
from transforms.dedup_index import PriorIndex, index_row, pending_segment_path
from transforms.language import LanguageTagger, tag_language
from transforms.normalize import EmptyArticleError, content_key, to_article
from transforms.read import UnreadableInput, file_to_item
from transforms.topics import CompiledTaxonomy, label_article, load_taxonomy
from transforms.write import file_name, join, partition_path, sort_key, write_parquet_file
from transforms import dedupe

STEPS = ("read", "parse", "normalize", "dedup", "language", "topics", "write")


class StepTimer:
    """Accumulates wall and CPU seconds per step (CPU time is not inflated by a busy machine)."""

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.cpu_seconds: dict[str, float] = collections.defaultdict(float)

    def call(self, step: str, fn: Callable, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[step] += time.perf_counter() - start
            self.cpu_seconds[step] += time.process_time() - cpu


def _dedup_exact(articles: list[dict], key: str, method: str) -> tuple[list[dict], list[dict]]:
    groups: dict[str, list[dict]] = {}
    for article in articles:
        groups.setdefault(article[key], []).append(article)
    kept_all, dups = [], []
    for copies in groups.values():
        if len(copies) == 1:
            kept_all.append(copies[0])
            continue
        kept, others = dedupe.pick_canonical(copies)
        kept["cluster_size"] = int(kept.get("cluster_size") or 1) + sum(int(o.get("cluster_size") or 1) for o in others)
        kept_all.append(kept)
        dups.extend(dedupe.duplicate_record(o, kept["article_id"], 1.0, method) for o in others)
    return kept_all, dups


def _dedup_near(articles: list[dict], exact_dups: list[dict], params: dict) -> tuple[list[dict], list[dict]]:
    from transforms.minhash import MinHasher

    hasher = MinHasher(params["num_perm"], params["shingle_size"], params["bands"], params["seed"])
    for article in articles:
        if article.get("minhash") is None:
            article["minhash"] = hasher.signature(content_key(article.get("title"), article.get("body")))
    if not params.get("enabled_near", True):
        for article in articles:
            article["cluster_id"] = article["article_id"]
        return articles, exact_dups
    bands: dict[str, list[dict]] = {}
    for article in articles:
        small = dedupe.member(article)
        for key in hasher.band_keys(small["minhash"]):
            bands.setdefault(key, []).append(small)
    pairs: dict[str, tuple] = {}
    for members in bands.values():
        if len(members) > 1:
            for first, second, score in dedupe.candidate_pairs(members, params["threshold"],
                                                               params["max_cluster_candidates"]):
                pairs.setdefault(f"{first['article_id']}|{second['article_id']}", (first, second, score))
    assignments = dedupe.assign_clusters(list(pairs.values()))
    head_of = {aid: a["head"] for aid, a in assignments.items() if a["head"] != aid}
    own = {a["article_id"]: int(a.get("cluster_size") or 1) for a in articles}
    attached: dict[str, int] = collections.defaultdict(int)
    for aid, head in head_of.items():
        attached[head] += own[aid]
    kept, dups = [], []
    for dup in exact_dups:
        head = head_of.get(dup["duplicate_of"])
        dups.append({**dup, "duplicate_of": head} if head else dup)
    for article in articles:
        aid = article["article_id"]
        if aid in head_of:
            dups.append(dedupe.duplicate_record(article, head_of[aid], assignments[aid]["similarity"], "minhash"))
            continue
        article["cluster_id"] = aid
        article["cluster_size"] = own[aid] + attached.get(aid, 0)
        kept.append(article)
    return kept, dups


def _write_table(table, records: list[dict], root: str, run_id: str, shards: int, rows_per_file: int,
                 shard_key: str | None = None) -> int:
    shard_key = shard_key or table.columns[0].name
    groups: dict[tuple[str, int], list[dict]] = {}
    for record in records:
        key = (partition_path(table, record), stable_int(str(record.get(shard_key))) % shards)
        groups.setdefault(key, []).append(record)
    files = 0
    for (partition, shard), rows in groups.items():
        rows.sort(key=sort_key(table))
        for chunk, start in enumerate(range(0, len(rows), rows_per_file)):
            path = join(root, table.name, partition, file_name(run_id, shard, chunk))
            write_parquet_file(table, rows[start:start + rows_per_file], path)
            files += 1
    return files


def run_plain_loop(settings: RunSettings, run: RunInfo) -> dict[str, Any]:
    """Run every step over ``settings.inputs`` in one process; returns counters and step seconds.

    Like ``newsbeam run`` on the local runner, more files than ``read.max_files_per_run`` are run
    as consecutive chunks of that many (``pipeline.chunking.split``, run ids ``<run>-c0001`` ...),
    and each chunk dedups against the articles the earlier chunks kept, as the pipeline's chunks do
    through the cross-run index (their index rows as prior records: a prior record always wins).
    """
    import dataclasses

    timer = StepTimer()
    read_cfg = settings.read
    paths = sorted(m.path for pattern in settings.inputs for m in FileSystems.match([pattern])[0].metadata_list)
    tagger = LanguageTagger(**settings.language)
    taxonomy = CompiledTaxonomy(load_taxonomy(settings.topics))
    signer = dedupe.minhasher(settings.dedup).signature  # normalize signs, as in the pipeline
    chunks = split(paths, int(read_cfg.get("max_files_per_run") or 0))
    prior_rows: list[dict] = []  # index rows of the chunks run so far
    near = settings.dedup.get("enabled_near", True)
    totals = {"articles": 0, "duplicates": 0, "dead_letters": 0}
    files = 0
    for number, chunk in enumerate(chunks, 1):
        chunk_run = run if len(chunks) == 1 else dataclasses.replace(run, run_id=chunk_run_id(run.run_id, number))
        # The earlier chunks' index, loaded once per chunk as the pipeline's lookup does in DoFn.setup.
        prior = timer.call("dedup", PriorIndex, pa.Table.from_pylist(prior_rows, schema=DEDUP_INDEX.file_schema),
                           settings.dedup["num_perm"] if near else None, settings.dedup["bands"] if near else None)
        articles, duplicates, dead, written, index_rows = _run_chunk(settings, chunk_run, chunk, prior, timer, tagger,
                                                                     taxonomy, signer)
        prior_rows += index_rows
        totals["articles"] += len(articles)
        totals["duplicates"] += len(duplicates)
        totals["dead_letters"] += len(dead)
        files += written
    inputs = len(paths)
    return {
        "counters": {"inputs": inputs, **totals, "balanced": inputs == sum(totals.values())},
        "files": files,
        "chunks": len(chunks),
        "step_seconds": dict(timer.seconds),
        "step_cpu_seconds": dict(timer.cpu_seconds),
    }


def _run_chunk(settings: RunSettings, run: RunInfo, paths: list[str], prior, timer: StepTimer,
               tagger: LanguageTagger, taxonomy: CompiledTaxonomy, signer) -> tuple[list, list, list, int, list]:
    """One run over ``paths`` (a chunk): its kept articles, duplicates, dead letters, files written and
    the rows of its dedup index segment."""
    read_cfg = settings.read
    cap = read_cfg["dead_letter_payload_bytes"]
    source = settings.source_name
    dead: list[dict] = []
    articles: list[dict] = []

    def read(path: str) -> bytes:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return handle.read(read_cfg["max_bytes"] + 1)

    for path in paths:
        raw = timer.call("read", read, path)
        if len(raw) > read_cfg["max_bytes"]:
            dead.append(dead_letter(source=source, origin=path, stage="read", error="file too large", raw=raw,
                                    run=run, payload_cap=cap))
            continue
        try:
            item = timer.call("parse", file_to_item, raw, path, source, read_cfg["max_title_chars"])
        except UnreadableInput as err:
            dead.append(dead_letter(source=source, origin=path, stage="parse", error=str(err), raw=raw, run=run,
                                    payload_cap=cap, raw_size=len(raw)))
            continue
        try:
            articles.append(timer.call("normalize", to_article, item, run, read_cfg["min_body_chars"],
                                       settings.feeds.get("allow_future_minutes", 0), signer))
        except EmptyArticleError as err:
            dead.append(dead_letter(source=source, origin=path, stage="normalize", error=str(err),
                                    raw=f"{item.get('title') or ''}\n{item.get('body') or ''}", run=run,
                                    payload_cap=cap))

    def dedup(articles):
        # The earlier chunks' index rows that share an id, a content hash or an LSH band with an article
        # of this chunk take part as prior records (they win every tie) and are not output.
        matched = prior.match_many([(a["article_id"], a["content_hash"], a.get("minhash")) for a in articles])
        everything = articles + [dedupe.prior_article(row) for row in prior.rows(matched)]
        kept, dups_id = _dedup_exact(everything, "article_id", "id")
        kept, dups_hash = _dedup_exact(kept, "content_hash", "content_hash")
        kept, dups = _dedup_near(kept, dups_id + dups_hash, dict(settings.dedup))
        return [a for a in kept if not a.get(dedupe.PRIOR)], dups

    articles, duplicates = timer.call("dedup", dedup, articles)
    articles = [timer.call("language", tag_language, a, tagger) for a in articles]
    articles = [timer.call("topics", label_article, a, taxonomy) for a in articles]
    write = settings.write
    root = settings.output

    def write_all():
        files = _write_table(ARTICLES, articles, root, run.run_id, write["shards"], write["rows_per_file"])
        files += _write_table(DUPLICATES, duplicates, root, run.run_id, 1, write["rows_per_file"])
        files += _write_table(DEAD_LETTERS, dead, root, run.run_id, 1, write["rows_per_file"], "origin")
        rows: list[dict] = []
        if articles and "minhash" in articles[0]:  # the run's cross-run dedup index segment
            rows = sorted((index_row(a) for a in articles), key=lambda r: r["article_id"])
            write_parquet_file(DEDUP_INDEX, rows, pending_segment_path(root, run.run_id))
            files += 1
        return files, rows

    files, index_rows = timer.call("write", write_all)
    return articles, duplicates, dead, files, index_rows
