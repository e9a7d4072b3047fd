"""Rewrites of the articles table as single commits: ``migrate`` (layout 1 -> 2) and ``compact``.

Both follow the commit protocol of transforms/commit.py with the writer lease held throughout:

1. take the lease, :func:`~transforms.commit.recover` (finish or undo what a killed run left);
2. write every new file under ``_staging/<run_id>/`` (a mirror of the final tree), plus a marker
   in each staged folder that is to replace a live one; verify the rows (same count, same ids);
3. the commit point: create ``_commits/<run_id>.json`` with create-if-absent. Its ``rewrite``
   section lists the folders to exchange, the files replaced and the layout version after;
4. publish (``commit.publish`` -> :func:`transforms.layout.publish_rewrite`): exchange the staged
   folders with the live ones (one atomic rename each on local disk), write ``_layout.json``,
   the manifest ``_runs/<run_id>.json``, and delete the staging folder, which now holds the
   replaced files.

Killed before 3, recovery deletes the staging folder: the old files were never touched. Killed
after 3, recovery publishes again (every step is idempotent). So a reader sees the old files or
the new ones, and the article ids before and after are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections import defaultdict
from typing import Any, Collection

import pyarrow as pa

from schemas import ARTICLES
from transforms import storage
from transforms.commit import (build_counters, commit_record_path, commit_records, publish, recover, relative_path,
                               staging_root, versions)
from transforms.layout import (LAYOUT_VERSION, MARKER, LayoutError, detect_layout, old_layout_message,
                               read_layout, write_layout)
from transforms.lease import WriterLease
from transforms.storage import join
from transforms.write import _aligned, _read_file, file_name, write_sorted

# Target size of rewritten files (issue 16): 100,000 rows, or fewer rows when they would exceed this.
TARGET_ROWS = 100_000
TARGET_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 512 * 1024 * 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rewrite_run_id(kind: str, now: dt.datetime | None = None) -> str:
    return f"{kind}-{(now or _now()).astimezone(dt.timezone.utc).strftime('%Y%m%dT%H%M%S-%f')}"


def _files(pattern: str) -> list[tuple[str, int]]:
    from apache_beam.io.filesystems import FileSystems

    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception:
        return []
    return sorted((m.path, m.size_in_bytes) for m in matched if not m.path.endswith(storage.TEMP_SUFFIX))


def _partition_values(root: str, path: str) -> dict[str, str]:
    """``{'published_date': '2026-01-06', 'language': 'de'}`` from a file's folders under articles/."""
    prefix = join(root, ARTICLES.name).rstrip("/") + "/"
    parts = path[len(prefix):].split("/")[:-1] if path.startswith(prefix) else []
    return dict(part.split("=", 1) for part in parts if "=" in part)


def ensure_current_layout(output_root: str) -> int:
    """Call holding the writer lease before a run writes: finishes a committed migration a crash
    left unpublished, records the layout of a new root, and raises :class:`LayoutError` when the
    root still holds layout 1 (the run must not add layout-2 files to it)."""
    if detect_layout(output_root) != LAYOUT_VERSION and commit_records(output_root):
        recover(output_root)
    version = detect_layout(output_root)
    if version != LAYOUT_VERSION:
        raise LayoutError(old_layout_message(output_root))
    if read_layout(output_root) is None:
        write_layout(output_root)
    return version


def _manifest(root: str, run_id: str, kind: str, started: dt.datetime, counters: dict[str, int],
              rewrite: dict[str, Any]) -> dict[str, Any]:
    base = build_counters({})  # a rewrite adds no article, duplicate or dead letter
    base.update(counters)
    return {"run_id": run_id, "kind": kind, "status": "committed", "started_at": started.isoformat(),
            "finished_at": _now().isoformat(), "runner": "local (no pipeline)", "output": root,
            "versions": versions(), "counters": base, "replaced_runs": [], "rewrite": rewrite}


def _commit(root: str, run_id: str, entries: list[dict[str, Any]], rewrite: dict[str, Any],
            manifest: dict[str, Any]) -> dict[str, Any]:
    # Paths relative to the output root, as every commit record holds them (a moved archive recovers).
    rel = lambda path: relative_path(root, path)  # noqa: E731
    entries = [{**e, "staged": rel(e["staged"]), "path": rel(e["path"])} for e in entries]
    rewrite = {**rewrite, "swaps": [{"live": rel(w["live"]), "staged": rel(w["staged"])} for w in rewrite.get("swaps") or []],
               "removed": [rel(p) for p in rewrite.get("removed") or []]}
    manifest = {**manifest, "rewrite": rewrite}
    record = {"run_id": run_id, "created_at": manifest["finished_at"], "files": entries, "replaces": [],
              "compact": None, "manifest": manifest, "rewrite": rewrite}
    storage.sync_local(root)
    storage.fault_point("commit_record")
    if not storage.create_if_absent(commit_record_path(root, run_id),
                                    json.dumps(record, indent=1, default=str).encode("utf-8")):
        raise LayoutError(f"run id {run_id} is already committed under {root}")
    return publish(root, record)


def _mark(folder: str) -> None:
    """The marker that says a staged folder still has to be exchanged with the live one."""
    storage.write_text_atomically(join(folder, MARKER), "staged\n", point="rewrite_marker")


def _ids(tables: list[pa.Table]) -> tuple[int, set[str]]:
    ids: set[str] = set()
    rows = 0
    for table in tables:
        rows += table.num_rows
        ids.update(table.column("article_id").to_pylist())
    return rows, ids


def migrate(output_root: str, *, run_id: str | None = None, rows_per_file: int = TARGET_ROWS,
            wait_seconds: float = 0.0, now: dt.datetime | None = None) -> dict[str, Any]:
    """Rewrite layout-1 articles into layout 2 in one commit; a no-op on a layout-2 root.

    Returns ``{'status': 'migrated' | 'current', ...}`` with the files and rows before and after."""
    started = now or _now()
    run_id = run_id or rewrite_run_id("migrate", started)
    with WriterLease(output_root, run_id, wait_seconds=wait_seconds):
        recovered = recover(output_root)
        version = detect_layout(output_root)
        if version == LAYOUT_VERSION:
            if read_layout(output_root) is None:
                write_layout(output_root)
            return {"status": "current", "layout": version, "recovered": recovered}
        old = _files(join(output_root, ARTICLES.name, "**", "*.parquet"))
        by_month: dict[str, list[tuple[str, int, dict[str, str]]]] = defaultdict(list)
        for path, size in old:
            values = _partition_values(output_root, path)
            if "published_date" not in values:
                raise LayoutError(f"{path}: not in a published_date=... folder; cannot tell its month")
            by_month[values["published_date"][:7]].append((path, size, values))
        staged_table = join(staging_root(output_root, run_id), ARTICLES.name)
        entries: list[dict[str, Any]] = []
        rows_read = rows_written = 0
        for month in sorted(by_month):
            tables = []
            for path, _, values in by_month[month]:
                data = _read_file(path)
                n = data.num_rows
                if "published_date" not in data.column_names:
                    day = dt.date.fromisoformat(values["published_date"])
                    data = data.append_column("published_date", pa.array([day] * n, pa.date32()))
                if "language" not in data.column_names and "language" in values:
                    data = data.append_column("language", pa.array([values["language"]] * n, pa.string()))
                tables.append(data)
            merged = _aligned(ARTICLES, tables)
            before = _ids(tables)
            size = sum(s for _, s, _ in by_month[month])
            count = max(1, math.ceil(merged.num_rows / rows_per_file), math.ceil(size / MAX_FILE_BYTES))
            partition = f"published_month={month}"
            targets = [join(staged_table, partition, file_name(run_id, 0, i)) for i in range(count)]
            written = write_sorted(ARTICLES, merged, targets, partition)
            after = _ids([_read_file(t) for t in targets])
            if after != before:
                raise LayoutError(f"migration of {month} would change its rows ({before[0]} -> {after[0]}); "
                                  f"nothing was committed")
            rows_read += before[0]
            rows_written += after[0]
            entries += [{**d, "staged": d["path"], "path": join(output_root, ARTICLES.name, partition,
                                                                 d["path"].rsplit("/", 1)[-1])} for d in written]
        if not storage.is_remote(output_root):
            os.makedirs(staged_table, exist_ok=True)
        _mark(staged_table)
        rewrite = {"kind": "migrate", "layout": LAYOUT_VERSION, "layout_before": version,
                   "swaps": [{"live": join(output_root, ARTICLES.name), "staged": staged_table}],
                   "removed": [p for p, _ in old]}
        counters = {"files_read": len(old), "files_written": len(entries), "rows_read": rows_read,
                    "rows_written": rows_written}
        manifest = _manifest(output_root, run_id, "migrate", started, counters, rewrite)
        published = _commit(output_root, run_id, entries, rewrite, manifest)
    return {"status": "migrated", "run_id": run_id, **counters, "manifest": published}


def compact(output_root: str, *, run_id: str | None = None, min_files: int = 8, target_rows: int = TARGET_ROWS,
            target_bytes: int = TARGET_BYTES, wait_seconds: float = 0.0,
            now: dt.datetime | None = None, partitions: Collection[str] | None = None) -> dict[str, Any]:
    """Merge the small files (< ``target_rows`` rows and < ``target_bytes``) of every month
    partition that has at least ``min_files`` of them into files of up to ``target_rows`` rows, in
    one commit. Files already big enough stay as they are. ``partitions`` (``published_month=YYYY-MM``
    folder names) limits the work to those partitions: a run compacts only the months it wrote."""
    import pyarrow.parquet as pq

    started = now or _now()
    run_id = run_id or rewrite_run_id("compact", started)
    with WriterLease(output_root, run_id, wait_seconds=wait_seconds):
        recover(output_root)
        ensure_current_layout(output_root)
        table_root = join(output_root, ARTICLES.name)
        by_partition: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for path, size in _files(join(table_root, "*", "*.parquet")):
            partition = path.rsplit("/", 2)[-2]
            if partitions is None or partition in partitions:
                by_partition[partition].append((path, size))
        staged_table = join(staging_root(output_root, run_id), ARTICLES.name)
        entries: list[dict[str, Any]] = []
        swaps, removed = [], []
        files_before = files_after = rows = 0
        for partition in sorted(by_partition):
            files = by_partition[partition]
            small = [(p, s) for p, s in files
                     if s < target_bytes and pq.ParquetFile(_open(p)).metadata.num_rows < target_rows]
            files_before += len(files)
            if len(small) < max(2, min_files):
                files_after += len(files)
                continue
            tables = [_read_file(p) for p, _ in small]
            merged = _aligned(ARTICLES, tables)
            count = max(1, math.ceil(merged.num_rows / target_rows),
                        math.ceil(sum(s for _, s in small) / MAX_FILE_BYTES))
            live = join(table_root, partition)
            staged = join(staged_table, partition)
            written = write_sorted(ARTICLES, merged, [join(staged, file_name(run_id, 0, i)) for i in range(count)],
                                   partition)
            if _ids([_read_file(d["path"]) for d in written]) != _ids(tables):
                raise LayoutError(f"compaction of {partition} would change its rows; nothing was committed")
            small_paths = {p for p, _ in small}
            if not storage.is_remote(output_root):
                for path, _ in files:  # the partition's other files go into the new folder as hard links
                    if path not in small_paths:
                        os.link(path, join(staged, path.rsplit("/", 1)[-1]))
                _mark(staged)
                swaps.append({"live": live, "staged": staged})
            removed += sorted(small_paths)
            rows += merged.num_rows
            files_after += len(files) - len(small) + len(written)
            entries += [{**d, "staged": d["path"], "path": join(live, d["path"].rsplit("/", 1)[-1])} for d in written]
        counters = {"files_read": len(removed), "files_written": len(entries), "rows_read": rows,
                    "rows_written": rows, "table_files_before": files_before, "table_files_after": files_after}
        if not entries:
            return {"status": "nothing to compact", **counters}
        rewrite = {"kind": "compact", "layout": None, "swaps": swaps, "removed": removed}
        manifest = _manifest(output_root, run_id, "compact", started, counters, rewrite)
        published = _commit(output_root, run_id, entries, rewrite, manifest)
    return {"status": "compacted", "run_id": run_id, **counters, "manifest": published}


def _open(path: str):
    if not storage.is_remote(path):
        return path
    return pa.BufferReader(storage.read_bytes(path))

