"""The last step: make everything a run produced visible together, or not at all.

Commit protocol (docs/data-safety.md states it with its proof):
A run holds the output root's writer lease (transforms/lease.py) from before its first write to
after its commit. It writes every file it produces - article, duplicate, dead-letter and feed_status
Parquet, its dedup-index segment, its feeds' next state - under ``<root>/_staging/<run_id>/``, a
mirror of the final tree that no reader and no glob of the final tree sees. When all are written
(and, on local disk, synced), the run creates its commit record ``<root>/_commits/<run_id>.json``
with create-if-absent (a hard link on local disk, ``ifGenerationMatch=0`` on GCS): that single
atomic create is the commit point; the record lists every staged file and its final name, the runs
it replaces and the manifest. Then the run publishes: it moves each staged file to its final name,
purges the runs it replaces, compacts the dedup index, writes ``_runs/<run_id>.json`` and deletes
its staging folder - each step idempotent. Every run, under the lease, and every reader that can
get the lease first calls :func:`recover`: a commit record without a manifest is published again
(roll forward); a staging folder without a commit record, and any table file or index segment of a
run without one, is deleted (roll back). So a run killed before its commit point leaves nothing and
its input is read again by the next run; a run killed after it is finished by the next one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
from typing import Any, Callable, Iterable, Mapping

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas import SCHEMA_VERSION, TABLES
from transforms import storage
from transforms.dedup_index import compact, index_dir, published_segments, purge_runs, rollback_files, window_cutoff
from transforms.lease import WriterLease, held_by
from transforms.storage import join, read_text, write_text_atomically

LOG = logging.getLogger(__name__)

MANIFEST_DIR = "_runs"
COMMIT_DIR = "_commits"
STAGING_DIR = "_staging"

# Counter keys that add up: inputs = articles + duplicates + dead_letters.
BALANCE_KEYS = ("articles", "duplicates", "dead_letters")


# -- paths -------------------------------------------------------------------------------------

def manifest_path(output_root: str, run_id: str) -> str:
    return join(output_root, MANIFEST_DIR, f"{run_id}.json")


def commit_record_path(output_root: str, run_id: str) -> str:
    return join(output_root, COMMIT_DIR, f"{run_id}.json")


def staging_root(output_root: str, run_id: str) -> str:
    """Where a run writes everything before its commit: a mirror of the final tree."""
    return join(output_root, STAGING_DIR, run_id)


# A stream stages its window files here and commits them per window firing; its staging folder is
# left alone by every recovery but the stream's own at its (re)start: a stream on Dataflow writes
# while it does not hold the lease, and its firings in flight must not be rolled back by a batch run.
STREAMS_DIR = "_streams"


def stream_staging_root(output_root: str, stream_id: str) -> str:
    return join(output_root, STAGING_DIR, STREAMS_DIR, stream_id)


def final_path(output_root: str, run_id: str, staged: str) -> str:
    """The final name of a file staged under :func:`staging_root`."""
    prefix = staging_root(output_root, run_id).rstrip("/") + "/"
    if not staged.startswith(prefix):
        raise ValueError(f"{staged} is not staged under {prefix}")
    return join(output_root, staged[len(prefix):])


def relative_path(output_root: str, path: str) -> str:
    """``path`` relative to the output root, as commit records and manifests store it (an archive
    copied or mounted elsewhere keeps valid file lists); paths outside the root stay as they are."""
    prefix = output_root.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def resolve_path(output_root: str, path: str) -> str:
    """A path of a commit record or manifest under ``output_root`` (records of versions before
    relative paths hold absolute paths and URLs: those are returned as they are)."""
    if storage.is_remote(path) or os.path.isabs(path):
        return path
    return join(output_root, path)


def read_manifest(output_root: str, run_id: str) -> dict[str, Any] | None:
    text = read_text(manifest_path(output_root, run_id))
    return json.loads(text) if text else None


def read_commit_record(output_root: str, run_id: str) -> dict[str, Any] | None:
    text = read_text(commit_record_path(output_root, run_id))
    return json.loads(text) if text else None


def _names(pattern: str, suffix: str = ".json") -> list[str]:
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # a missing folder on some filesystems
        return []
    names = []
    for meta in matched:
        name = meta.path.rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(suffix) and not name.endswith(storage.TEMP_SUFFIX):
            names.append(name[: -len(suffix)])
    return sorted(names)


def commit_records(output_root: str) -> list[str]:
    """Run ids with a commit record."""
    return _names(join(output_root, COMMIT_DIR, "*.json"))


def manifests(output_root: str) -> dict[str, dict[str, Any]]:
    found = {}
    for run_id in _names(join(output_root, MANIFEST_DIR, "*.json")):
        try:
            found[run_id] = json.loads(read_text(manifest_path(output_root, run_id)) or "{}")
        except ValueError:
            continue
    return found


def committed_runs(output_root: str) -> set[str]:
    """Runs whose output is committed: a commit record, or (runs older than the protocol) a
    manifest that says so."""
    runs = set(commit_records(output_root))
    runs.update(run_id for run_id, m in manifests(output_root).items() if m.get("status") == "committed")
    return runs


def run_id_taken(output_root: str, run_id: str) -> bool:
    """True when a run with this id committed or left a manifest (a crashed attempt that never
    committed leaves only staged files, which recovery removes: its id may be used again)."""
    return bool(storage.exists(commit_record_path(output_root, run_id))
                or storage.exists(manifest_path(output_root, run_id)))


def versions() -> dict[str, str]:
    import apache_beam
    import pyarrow

    from schemas import __version__

    return {
        "newsbeam": __version__,
        "apache_beam": apache_beam.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
        "schema": SCHEMA_VERSION,
    }


def build_counters(counts: Mapping[str, int]) -> dict[str, Any]:
    """Nest flat ``kind:value`` counts into the manifest's counters section."""
    counters: dict[str, Any] = {"inputs": 0, "articles": 0, "duplicates": 0, "dead_letters": 0}
    for key, value in sorted(counts.items()):
        if ":" in key:
            group, name = key.split(":", 1)
            counters.setdefault(group, {})[name] = value
        else:
            counters[key] = value
    counters["balanced"] = counters["inputs"] == sum(counters[k] for k in BALANCE_KEYS)
    return counters


# -- publish and recover -----------------------------------------------------------------------

def _staged_state(output_root: str, run_id: str) -> list[str]:
    """Files the run staged under ``_state/`` (feed state, page cache, index segment)."""
    folder = join(staging_root(output_root, run_id), "_state")
    found = []
    for sub in ("*", "*/*", "*/*/*"):
        try:
            matched = FileSystems.match([join(folder, sub)])[0].metadata_list
        except Exception:
            continue
        found += [m.path for m in matched if not m.path.endswith(storage.TEMP_SUFFIX)
                  and (storage.is_remote(m.path) or os.path.isfile(m.path))]
    return sorted(set(found))


def publish(output_root: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Roll a committed run forward: every step may be repeated after a crash with the same result."""
    run_id = record["run_id"]
    if record.get("rewrite"):  # migrate/compact: staged folders replace live ones (transforms/layout.py)
        from transforms.layout import publish_rewrite

        publish_rewrite(output_root, record)
    moved = 0
    for entry in record["files"]:
        storage.fault_point("publish")
        moved += storage.move(resolve_path(output_root, entry["staged"]), resolve_path(output_root, entry["path"]))
    replaced = list(record.get("replaces") or [])
    if replaced:
        purge_runs(output_root, replaced, commit_dir=join(output_root, COMMIT_DIR), manifest_dir=join(output_root, MANIFEST_DIR))
    manifest = dict(record["manifest"])
    compaction = record.get("compact")
    if compaction:
        segments = published_segments(output_root)
        compacted = None
        if len(segments) > int(compaction["after_segments"]):
            storage.fault_point("compact")
            now = dt.datetime.fromisoformat(compaction["now"])
            compacted = compact(output_root, segments, run_id, window_cutoff(now, compaction.get("window_days")))
            segments = published_segments(output_root)
        manifest["dedup_index"] = {"segments": len(segments), "compacted_into": compacted}
    page_cache = record.get("page_cache")
    if page_cache:
        from transforms.page import compact_page_cache

        storage.fault_point("compact")
        compact_page_cache(output_root, run_id, int(page_cache["cache_days"]),
                           dt.datetime.fromisoformat(page_cache["now"]))
    # Paths relative to the output root, so an archive copied or moved elsewhere stays right.
    manifest["files"] = [{**{k: v for k, v in f.items() if k != "staged"},
                          "path": relative_path(output_root, f["path"])}
                         for f in record["files"] if f.get("table") in TABLES]
    manifest["status"] = "committed"
    manifest["finished_at"] = manifest.get("finished_at") or dt.datetime.now(dt.timezone.utc).isoformat()
    storage.fault_point("manifest")
    write_text_atomically(manifest_path(output_root, run_id), json.dumps(manifest, indent=2, default=str),
                          point="manifest_write")
    storage.fault_point("cleanup")
    storage.delete_tree(staging_root(output_root, run_id))
    return manifest


def _staging_runs(output_root: str) -> list[str]:
    folder = join(output_root, STAGING_DIR)
    if not storage.is_remote(output_root):
        return sorted(set(os.listdir(folder)) - {STREAMS_DIR}) if os.path.isdir(folder) else []
    runs = set()
    for meta in FileSystems.match([folder + "/**"])[0].metadata_list:
        rest = meta.path[len(folder) + 1:]
        if rest:
            runs.add(rest.split("/", 1)[0])
    return sorted(runs - {STREAMS_DIR})


def recover(output_root: str, active: Iterable[str | None] = (), streams: Iterable[str] = ()) -> dict[str, Any]:
    """Finish or undo every run that did not complete; call it holding the writer lease.

    ``active``: run ids of the caller's own run (a chunked run's parent manifest is ``running``
    while its chunks run; it is left alone). ``streams``: ids of streams (re)starting now, whose
    staged but uncommitted window files are rolled back too (other streams' are left alone).

    Returns ``{'rolled_forward': [run ids], 'rolled_back': [run ids], 'removed_files': n}``.
    """
    report: dict[str, Any] = {"rolled_forward": [], "rolled_back": [], "removed_files": 0}
    if not storage.is_remote(output_root) and not os.path.isdir(output_root):
        return report
    found = manifests(output_root)
    records = commit_records(output_root)
    for run_id in records:
        if found.get(run_id, {}).get("status") == "committed":
            continue
        record = read_commit_record(output_root, run_id)
        if record is None:
            continue
        LOG.warning("run %s committed but was not published completely: finishing it", run_id)
        found[run_id] = publish(output_root, record)
        report["rolled_forward"].append(run_id)
    committed = set(records) | {r for r, m in found.items() if m.get("status") == "committed"}
    for run_id in _staging_runs(output_root):
        if run_id not in committed:
            report["rolled_back"].append(run_id)
        storage.delete_tree(staging_root(output_root, run_id))
    for stream_id in streams:  # after the roll-forward: what is left was never committed
        storage.delete_tree(stream_staging_root(output_root, stream_id))
    removed = rollback_files(output_root, committed)
    report["removed_files"] = len(removed)
    # A parent manifest still "running" belongs to a launcher that died (we hold the lease): its
    # committed chunks stay; the parent says it did not finish.
    for run_id, manifest in found.items():
        if manifest.get("status") == "running" and run_id not in records and run_id not in set(active):
            manifest = {**manifest, "status": "incomplete",
                        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            write_text_atomically(manifest_path(output_root, run_id), json.dumps(manifest, indent=2, default=str))
            report["rolled_back"].append(run_id)
    if report["rolled_back"] or report["rolled_forward"] or removed:
        LOG.warning("recovered %s: %s", output_root, report)
    return report


def recover_if_idle(output_root: str) -> dict[str, Any] | None:
    """For readers: finish interrupted commits when no writer is active; never waits, never fails."""
    from transforms.lease import try_lease

    lease = try_lease(output_root, "reader")
    if lease is None:
        return None
    try:
        return recover(output_root)
    except Exception as err:  # a reader must still read what is committed
        LOG.warning("could not finish interrupted commits under %s: %s", output_root, err)
        return None
    finally:
        lease.release()


# -- the transform -----------------------------------------------------------------------------

class _CommitFn(beam.DoFn):
    def __init__(self, output_root: str, run_id: str, manifest_base: Mapping[str, Any],
                 summaries: list[Callable[..., dict | None]], replaces: Iterable[str], lease_owner: str | None,
                 compaction: Mapping[str, Any] | None, record_extras: Mapping[str, Any] | None = None):
        self._record_extras = dict(record_extras or {})
        self._root = output_root
        self._run_id = run_id
        self._base = dict(manifest_base)
        self._summaries = list(summaries)
        self._replaces = sorted(set(replaces))
        self._lease_owner = lease_owner
        self._compaction = dict(compaction) if compaction else None

    def process(self, files: list[dict[str, Any]], counts: Mapping[str, int]):
        root, run_id = self._root, self._run_id
        files = sorted(files, key=lambda f: f["path"])
        entries = [{**f, "staged": f["path"], "path": final_path(root, run_id, f["path"])} for f in files]
        described = {e["staged"] for e in entries}
        for staged in _staged_state(root, run_id):  # feed state, page cache: staged, not described
            if staged not in described:
                kind = ("feed_state" if "/_state/feeds/" in staged else
                        "page_cache" if "/_state/pages/" in staged else "state")
                entries.append({"table": kind, "partition": "", "staged": staged,
                                "path": final_path(root, run_id, staged), "rows": 1})
        extras: dict[str, Any] = {}
        for summary in self._summaries:
            extras.update(summary(files=entries, counts=dict(counts)) or {})
        # Stored relative to the output root: the archive stays valid when copied or mounted elsewhere.
        entries = [{**e, "staged": relative_path(root, e["staged"]), "path": relative_path(root, e["path"])}
                   for e in entries]
        manifest = dict(self._base)
        manifest.update({
            "run_id": run_id,
            "status": "committed",
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "versions": versions(),
            "counters": build_counters(counts),
            "replaced_runs": self._replaces,
            **extras,
        })
        record = {"run_id": run_id, "created_at": manifest["finished_at"], "files": entries,
                  "replaces": self._replaces, "compact": self._compaction, "manifest": manifest,
                  **self._record_extras}
        yield commit_and_publish(root, record, self._lease_owner)


def commit_and_publish(root: str, record: Mapping[str, Any], lease_owner: str | None) -> dict[str, Any]:
    """Create ``record`` as its run's commit record (the commit point), then publish it; returns the
    manifest. A record that exists already (a retried bundle, a replayed stream firing) is not
    replaced: that first commit is finished instead. Takes the writer lease for the commit when
    ``lease_owner`` does not hold it (a job submitted with --no-wait, a stream on Dataflow)."""
    run_id = record["run_id"]
    own_lease = None
    if not (lease_owner and held_by(root, lease_owner)):
        own_lease = WriterLease(root, run_id, wait_seconds=600).acquire()
    try:
        storage.sync_local(root)
        storage.fault_point("commit_record")
        created = storage.create_if_absent(commit_record_path(root, run_id),
                                           json.dumps(record, indent=1, default=str).encode("utf-8"))
        if not created:  # a retried bundle: the first attempt committed; finish that commit
            record = read_commit_record(root, run_id) or record
        return publish(root, record)
    finally:
        if own_lease is not None:
            own_lease.release()


class CommitRun(beam.PTransform):
    """Commit a run from the descriptors of every file it staged, then publish it.

    ``files_and_counts``: descriptors ``{'table', 'partition', 'path', 'rows'}`` of files written
    under :func:`staging_root`, and ``(key, count)`` pairs (``inputs``, ``articles``,
    ``language:xx`` ...). ``summaries`` are picklable callables run before the commit point that
    return extra manifest fields. ``replaces``: run ids whose output this run replaces (purged
    when it publishes). ``compaction``: ``{'now', 'window_days', 'after_segments'}`` for the dedup
    index. Outputs the manifest dict.
    """

    def __init__(self, output_root: str, run_id: str, manifest_base: Mapping[str, Any],
                 summaries: list[Callable[..., dict | None]] | None = None, replaces: Iterable[str] = (),
                 lease_owner: str | None = None, compaction: Mapping[str, Any] | None = None,
                 record_extras: Mapping[str, Any] | None = None):
        super().__init__()
        self._fn = _CommitFn(output_root, run_id, manifest_base, summaries or [], replaces, lease_owner, compaction,
                             record_extras)

    def expand(self, files_and_counts):
        files, counts = files_and_counts
        all_files = files | "AllFiles" >> beam.combiners.ToList()
        totals = counts | "SumCounts" >> beam.CombinePerKey(sum)
        return all_files | "Commit" >> beam.ParDo(self._fn, counts=beam.pvalue.AsDict(totals))


__all__ = ["BALANCE_KEYS", "COMMIT_DIR", "CommitRun", "MANIFEST_DIR", "STAGING_DIR", "build_counters",
           "commit_record_path", "committed_runs", "final_path", "manifest_path", "publish", "read_manifest",
           "recover", "recover_if_idle", "relative_path", "run_id_taken", "staging_root", "write_text_atomically"]
