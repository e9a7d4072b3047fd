"""Bounded memory on the local runner: a large file input runs as a sequence of committed sub-runs.

The in-process FnApiRunner keeps every stage's whole input and output in memory
(about 83 KB per article at peak, docs/bench.md), so one run over 100,000 files
needs several GB. :func:`run_files` lists the matched files once (sorted, so the
split is deterministic), cuts them into chunks of ``read.max_files_per_run`` and
runs each chunk as its own committed run ``<run_id>-c0001``, ``-c0002`` ... one
after another. The cross-run dedup index makes a later chunk's copies (exact and
near) point at the articles of earlier chunks, exactly as it does for later runs.

Last, the parent manifest ``_runs/<run_id>.json`` sums the chunks' counters,
lists their run ids (``chunks``) and files, and is ``committed`` only when every
chunk committed; chunk manifests carry ``parent_run_id`` (the ``runs`` view shows
the parent only, so counts are not doubled).

Every invocation has a fresh run id (pipeline/settings.py), so nothing is replayed: a run killed
between chunks keeps the chunks that committed (each is a complete run), its parent manifest is
marked ``incomplete`` by the next run's recovery, and re-running the command adds only the files
whose articles are not in the archive yet. ``--replace-run`` runs are never chunked (the replaced
run is purged by one commit).

Feeds-only runs (:func:`run_feeds`) are chunked by items: the launcher fetches and parses the
feeds, spools the items to local files and runs them as committed chunks of
``feeds.max_items_per_run``; only the last chunk commits the feeds' next state and feed_status
rows, so a kill between chunks makes the next run fetch the feeds again (the committed items come
out as duplicates).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Mapping

from pipeline.batch import check_output, run_batch
from pipeline.runner import IN_PROCESS
from pipeline.settings import RunSettings
from transforms import storage
from transforms.commit import BALANCE_KEYS, manifest_path, write_text_atomically
from transforms.read import match_patterns

LOG = logging.getLogger(__name__)

# Runners that hold a whole run in this process's memory: only these get chunked.
LOCAL_RUNNERS = (IN_PROCESS, "BundleBasedDirectRunner")
_GLOB_CHARS = set("*?[")


def chunk_run_id(parent: str, number: int) -> str:
    """``files-abc-c0001``: the run id of chunk ``number`` (1-based) of run ``parent``."""
    return f"{parent}-c{number:04d}"


def split(paths: list[str], size: int) -> list[list[str]]:
    """Consecutive chunks of at most ``size`` paths (one chunk when ``size`` is 0)."""
    if size <= 0 or len(paths) <= size:
        return [list(paths)]
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def literal_pattern(path: str) -> str:
    """A file path as a match pattern that matches only that file (glob characters escaped)."""
    return glob.escape(path) if _GLOB_CHARS & set(path) else path


def matched_files(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Every path the patterns match, sorted, as the read step matches them (directories, FIFOs
    and broken symlinks included: each becomes a dead letter, transforms/read.py ``match_local``).

    A file matched by two patterns is listed twice, as the unchunked pipeline reads it twice."""
    return match_patterns(patterns)


def max_files_per_run(settings: RunSettings, wait: bool = True) -> int:
    """Chunk size for this run: ``read.max_files_per_run`` on a local runner, else 0 (no chunking)."""
    if settings.runner not in LOCAL_RUNNERS or not wait or settings.feeds_file:
        return 0
    return int(settings.read.get("max_files_per_run") or 0)


def sum_counters(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counters of several runs added up (nested groups key by key); ``balanced`` recomputed."""
    def add(into: dict, part: Mapping[str, Any]) -> None:
        for key, value in part.items():
            if key == "balanced":
                continue
            if isinstance(value, Mapping):
                add(into.setdefault(key, {}), value)
            else:
                into[key] = into.get(key, 0) + value

    total: dict[str, Any] = {"inputs": 0, "articles": 0, "duplicates": 0, "dead_letters": 0}
    for part in parts:
        add(total, part)
    total = {k: (dict(sorted(v.items())) if isinstance(v, dict) else v) for k, v in total.items()}
    total["balanced"] = total["inputs"] == sum(total[k] for k in BALANCE_KEYS)
    return total


def parent_manifest(settings: RunSettings, run_id: str, chunk_ids: list[str], chunks: list[Mapping[str, Any]],
                    size: int, started_at: dt.datetime, size_key: str = "max_files_per_run") -> dict[str, Any]:
    """The parent run's manifest: ``running`` until every chunk in ``chunk_ids`` has committed."""
    done = len(chunks) == len(chunk_ids) and all(c.get("status") == "committed" for c in chunks)
    last = chunks[-1] if chunks else {}
    feeds = bool(settings.feeds_file)
    manifest = {
        "run_id": run_id,
        "status": "committed" if done else "running",
        "started_at": started_at.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat() if done else None,
        "runner_requested": settings.runner,
        "runner": last.get("runner"),
        "profile": settings.profile,
        "inputs": list(settings.inputs),
        "feeds_file": settings.feeds_file if feeds else None,
        "output": settings.output,
        "language_detector": settings.language.get("detector"),
        "language_second_opinion": settings.language.get("second_opinion"),
        size_key: size,
        "chunks": list(chunk_ids),
        "versions": last.get("versions"),
        "counters": sum_counters([c["counters"] for c in chunks]),
        "files": [f for c in chunks for f in c.get("files", [])],
    }
    if "dedup_index" in last:
        manifest["dedup_index"] = last["dedup_index"]
    if feeds and done:  # the feeds' outcomes are the last chunk's; articles and page-cache entries add up
        manifest["feeds"] = {**last.get("feeds", {}), "articles_written": sum(
            c.get("feeds", {}).get("articles_written", 0) for c in chunks)}
        manifest["page_cache"] = {"entries_published": sum(
            c.get("page_cache", {}).get("entries_published", 0) for c in chunks)}
    return manifest


def _write(settings: RunSettings, manifest: Mapping[str, Any]) -> None:
    write_text_atomically(manifest_path(settings.output, manifest["run_id"]),
                          json.dumps(manifest, indent=2, default=str))


def run_files(settings: RunSettings, extra_args: list[str] | None = None, now: dt.datetime | None = None,
              wait: bool = True, run: Callable[..., dict[str, Any]] = run_batch) -> dict[str, Any]:
    """Run the file pipeline over ``settings.inputs``, in chunks when there are more files than
    ``read.max_files_per_run`` (local runners only); returns the (parent) run manifest.

    ``settings.run_id`` is this invocation's fresh run id; the caller holds the writer lease."""
    run_id = settings.run_id or settings.default_run_id(now)
    settings = dataclasses.replace(settings, run_id=run_id)
    size = 0 if settings.replaces_runs else max_files_per_run(settings, wait)
    paths = matched_files(settings.inputs) if size else []
    if not size or len(paths) <= size:
        return run(settings, extra_args, now=now, wait=wait)

    now = now or dt.datetime.now(dt.timezone.utc)
    chunks = split(paths, size)
    chunk_ids = [chunk_run_id(run_id, i + 1) for i in range(len(chunks))]
    started_at = now.replace(microsecond=0)
    LOG.info("run %s: %d files in %d chunks of at most %d (read.max_files_per_run)",
             run_id, len(paths), len(chunks), size)
    _write(settings, parent_manifest(settings, run_id, chunk_ids, [], size, started_at))
    done: list[dict[str, Any]] = []
    for number, (chunk_id, files) in enumerate(zip(chunk_ids, chunks), start=1):
        LOG.info("run %s: chunk %d/%d (%s, %d files)", run_id, number, len(chunks), chunk_id, len(files))
        chunk_settings = dataclasses.replace(
            settings, inputs=tuple(literal_pattern(p) for p in files), run_id=chunk_id, parent_run_id=run_id,
            lease_owner=settings.lease_owner or run_id)
        done.append(run(chunk_settings, extra_args, now=now, wait=True))
        manifest = parent_manifest(settings, run_id, chunk_ids, done, size, started_at)
        _write(settings, manifest)
    return manifest


# -- feeds -------------------------------------------------------------------------------------

SPOOL_DIR = "_spool"


def max_items_per_run(settings: RunSettings, wait: bool = True) -> int:
    """Chunk size of a feeds-only run: ``feeds.max_items_per_run`` on a local runner, else 0 (one
    Beam graph fetches, parses and processes every feed: Dataflow, files and feeds together,
    ``--replace-run``, ``--no-wait``)."""
    if (settings.runner not in LOCAL_RUNNERS or not wait or settings.inputs or not settings.feeds_file
            or settings.replaces_runs):
        return 0
    return int(settings.feeds.get("max_items_per_run") or 0)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``; elsewhere
    only the collection), so the chunks do not run on top of the parse's high-water mark."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@contextlib.contextmanager
def spool_folder(output_root: str, run_id: str):
    """A local folder for a run's spooled feed items: ``<root>/_spool/<run_id>`` on a local output
    (leftovers of killed runs are removed first: the caller holds the writer lease), a temporary
    folder for a gs:// one; removed when the run ends."""
    if storage.is_remote(output_root):
        folder = tempfile.mkdtemp(prefix=f"newsbeam-spool-{run_id}-")
    else:
        parent = os.path.join(output_root, SPOOL_DIR)
        if os.path.isdir(parent):
            for name in os.listdir(parent):
                LOG.warning("removing the spooled feed items of an earlier run that did not finish: %s", name)
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        folder = os.path.join(parent, run_id)
        os.makedirs(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if not storage.is_remote(output_root):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(folder))


def run_feeds(settings: RunSettings, config, extra_args: list[str] | None = None, now: dt.datetime | None = None,
              wait: bool = True, run: Callable[..., dict[str, Any]] = run_batch) -> dict[str, Any]:
    """Run the feeds of ``config``; returns the (parent) run manifest.

    On a local runner (``feeds.max_items_per_run`` > 0) the feeds are fetched and parsed here, one
    feed at a time, spooled to local files (pipeline/feeds_pipeline.py ``fetch_to_spool``) and run
    through the article flow as committed chunks of at most that many items,
    ``<run_id>-c0001``, ... (one chunk keeps the run id). Only the last chunk commits the feeds' next
    state and feed_status rows (and the feeds' own dead letters): a run killed between chunks leaves
    the feed state where it was, so the next run fetches the feeds again and the items of the
    chunks that committed come out as duplicates. Elsewhere one Beam graph does it all.

    ``settings.run_id`` is this invocation's fresh run id; the caller holds the writer lease."""
    from pipeline.feeds_pipeline import FeedSpool, build_chunk_pipeline, build_pipeline, fetch_to_spool
    from transforms.commit import recover

    run_id = settings.run_id or settings.default_run_id(now)
    settings = dataclasses.replace(settings, run_id=run_id)
    size = max_items_per_run(settings, wait)
    if not size:
        return run(settings, extra_args, now=now, wait=wait,
                   build=lambda p, s, info, base: build_pipeline(p, s, info, base, config))

    now = now or dt.datetime.now(dt.timezone.utc)
    check_output(settings.output)
    # Finish or undo interrupted runs before reading the feeds' committed state.
    recover(settings.output, active=(settings.lease_owner, run_id))
    info = settings.run_info(now)
    with spool_folder(settings.output, run_id) as folder:
        spool = FeedSpool(folder, size)
        chunks = fetch_to_spool(settings, config, info, spool)
        spooled = spool.statuses
        release_memory()  # what parsing a large feed took (feedparser, the XML tree) before the chunks run
        if len(chunks) == 1:
            return run(settings, extra_args, now=now, wait=True,
                       build=lambda p, s, i, base: build_chunk_pipeline(p, s, i, base, config, chunks[0], spooled))
        chunk_ids = [chunk_run_id(run_id, i + 1) for i in range(len(chunks))]
        started_at = now.replace(microsecond=0)
        LOG.info("run %s: %d feed items in %d chunks of at most %d (feeds.max_items_per_run)",
                 run_id, sum(c.items for c in chunks), len(chunks), size)
        _write(settings, parent_manifest(settings, run_id, chunk_ids, [], size, started_at, "max_items_per_run"))
        done: list[dict[str, Any]] = []
        for number, (chunk_id, chunk) in enumerate(zip(chunk_ids, chunks), start=1):
            LOG.info("run %s: chunk %d/%d (%s, %d items, %d dead letters)", run_id, number, len(chunks),
                     chunk_id, chunk.items, chunk.dead_letters)
            chunk_settings = dataclasses.replace(settings, run_id=chunk_id, parent_run_id=run_id,
                                                 lease_owner=settings.lease_owner or run_id)
            statuses = spooled if chunk.last else None
            done.append(run(chunk_settings, extra_args, now=now, wait=True,
                            build=lambda p, s, i, base, c=chunk, st=statuses: build_chunk_pipeline(
                                p, s, i, base, config, c, st)))
            manifest = parent_manifest(settings, run_id, chunk_ids, done, size, started_at, "max_items_per_run")
            _write(settings, manifest)
            storage.fault_point("chunk")
    return manifest
