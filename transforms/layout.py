"""The articles table's folder layout, its version, and the publish step of a layout rewrite.

Layout versions (recorded in ``<root>/_layout.json``):

1. ``articles/published_date=YYYY-MM-DD/language=xx/part-*.parquet`` (schema 1.x): one folder per
   day and language, so ~5,000 small files for 100,000 articles over two years.
2. ``articles/published_month=YYYY-MM/part-*.parquet`` (schema 2.x): one folder per month;
   ``published_date`` and ``language`` are columns inside the files, which are sorted by language,
   date and id, so Parquet row-group statistics let DuckDB skip what a filter excludes.

A root holding both cannot be read by DuckDB ("Hive partition mismatch"), so a root changes layout
only through one *rewrite* commit (transforms/rewrite.py: ``migrate``; ``compact`` uses the same
step within one layout). Its commit record carries ``rewrite``::

    {"kind": "migrate" | "compact",
     "swaps": [{"live": <root>/articles[/partition], "staged": <staging>/articles[/partition]}],
     "removed": [paths of the files the rewrite replaces],
     "layout": 2 | null}

:func:`publish_rewrite` (called by ``commit.publish`` before it moves the staged files, so also by
recovery) exchanges each staged folder with its live folder in one ``renameat2(RENAME_EXCHANGE)``
on local disk: a reader lists either the old folder or the new one, never both, never neither. The
staged folder holds a marker file until it is exchanged; after the exchange the marker is in the
live folder and is removed, so repeating the step after a crash is a no-op. The replaced files end
up in the staging folder, which the commit's cleanup deletes. Object stores (gs://) have no
folder rename: there the new files are moved in one by one and the replaced ones deleted, each
step idempotent, and a reader that lists the table during those seconds can see both (documented
in docs/querying.md).
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Iterable, Mapping

import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from schemas import ARTICLES
from transforms import storage
from transforms.storage import join, read_text, write_text_atomically

LAYOUT_FILE = "_layout.json"
LAYOUT_VERSION = 2
PARTITIONS = {1: ("published_date", "language"), 2: ("published_month",)}
MARKER = ".newsbeam-rewrite"  # not *.parquet: no reader glob of the table matches it


class LayoutError(RuntimeError):
    """The output root's articles are in a layout this version does not write."""


def layout_path(output_root: str) -> str:
    return join(output_root, LAYOUT_FILE)


def read_layout(output_root: str) -> dict[str, Any] | None:
    text = read_text(layout_path(output_root))
    return json.loads(text) if text else None


def layout_record(version: int = LAYOUT_VERSION) -> dict[str, Any]:
    return {"version": version, "articles": {"partitions": list(PARTITIONS[version]),
                                             "sort_by": list(ARTICLES.sort_by) if version == 2 else []}}


def write_layout(output_root: str, version: int = LAYOUT_VERSION) -> None:
    write_text_atomically(layout_path(output_root), json.dumps(layout_record(version), indent=1),
                          point="layout_write")


def _children(folder: str) -> list[str]:
    """Names of the entries directly under a local folder, or of the first path level under a
    remote prefix."""
    if not storage.is_remote(folder):
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    try:
        matched = FileSystems.match([folder.rstrip("/") + "/**"])[0].metadata_list
    except Exception:
        return []
    return sorted({m.path[len(folder.rstrip("/")) + 1:].split("/", 1)[0] for m in matched})


def detect_layout(output_root: str) -> int:
    """The layout version of ``output_root``: ``_layout.json`` when present, else 1 when an
    ``articles/published_date=...`` folder exists (an archive of schema 1.x), else 2."""
    recorded = read_layout(output_root)
    if recorded:
        return int(recorded["version"])
    folders = _children(join(output_root, ARTICLES.name))
    return 1 if any(name.startswith("published_date=") for name in folders) else LAYOUT_VERSION


def old_layout_message(output_root: str) -> str:
    return (f"{output_root} holds articles in layout 1 (articles/published_date=.../language=... folders, "
            f"schema 1.x); this version writes layout {LAYOUT_VERSION} (articles/published_month=YYYY-MM), and "
            f"DuckDB cannot read a table holding both. Run `python -m pipeline migrate --output {output_root}` "
            f"once (one crash-safe commit; docs/querying.md), then run again.")


# -- publish -------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: str, b: str) -> bool:
    """Swap two local folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False when the
    system or filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    return False


def _swap_local(live: str, staged: str) -> None:
    marker_staged = os.path.join(staged, MARKER)
    if os.path.exists(marker_staged):  # not exchanged yet
        storage.fault_point("rewrite_swap")
        if not (os.path.isdir(live) and exchange(live, staged)):
            # Without renameat2: put the live folder aside (inside the staging folder, which the
            # cleanup deletes), then the staged one in its place. Crash-safe (the marker says what
            # is left to do), but a reader can find no folder for a moment.
            if os.path.isdir(live):
                os.rename(live, staged.rstrip("/") + "-replaced")
            os.makedirs(os.path.dirname(live), exist_ok=True)
            os.rename(staged, live)
        for folder in {os.path.dirname(live), os.path.dirname(staged)}:  # the renames survive a power cut
            storage.fsync_dir(folder)
        storage.fault_point("rewrite_swapped")
    marker_live = os.path.join(live, MARKER)
    if os.path.exists(marker_live):
        os.unlink(marker_live)


def publish_rewrite(output_root: str, record: Mapping[str, Any]) -> None:
    """Put a committed rewrite in place (see the module doc); idempotent."""
    rewrite = record["rewrite"]
    # Records hold paths relative to the output root (absolute in records of earlier versions).
    at = lambda path: path if storage.is_remote(path) or os.path.isabs(path) else join(output_root, path)  # noqa: E731
    if storage.is_remote(output_root):
        for entry in record["files"]:
            storage.fault_point("publish")
            storage.move(at(entry["staged"]), at(entry["path"]))
        new = {at(entry["path"]) for entry in record["files"]}
        doomed = [at(p) for p in rewrite.get("removed") or [] if at(p) not in new and storage.exists(at(p))]
        if doomed:
            storage.fault_point("rewrite_remove")
            storage.delete(doomed)
    else:
        for swap in rewrite.get("swaps") or []:
            _swap_local(at(swap["live"]), at(swap["staged"]))
    if rewrite.get("layout"):
        if (read_layout(output_root) or {}).get("version") != rewrite["layout"]:
            write_layout(output_root, int(rewrite["layout"]))


# -- rows of replaced runs inside rewritten files --------------------------------------------------

def purge_rows(output_root: str, run_ids: Iterable[str], manifest_dir: str) -> list[str]:
    """Remove the rows of ``run_ids`` from the articles files that rewrite runs (migrate, compact)
    wrote, rewriting each such file atomically (an emptied file is deleted), then bring the row
    counts in those runs' manifests in line with the files. Idempotent (a crash between a file and
    its manifest is repaired by the next call). Returns the rewritten or deleted paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from transforms.write import _read_file, batch_run_id, write_arrow_file

    doomed = pa.array(sorted(set(run_ids)), pa.string())
    found: dict[str, dict[str, Any]] = {}
    for path in _match(join(manifest_dir, "*.json")):
        try:
            manifest = json.loads(read_text(path) or "{}")
        except ValueError:
            continue
        if manifest.get("rewrite"):
            found[manifest["run_id"]] = manifest
    if not len(doomed) or not found:
        return []
    changed: list[str] = []
    for path in _match(join(output_root, ARTICLES.name, "**", "part-*.parquet")):
        if batch_run_id(path) not in found:
            continue
        table = _read_file(path)
        kept = table.filter(pc.invert(pc.is_in(table["run_id"], value_set=doomed)))
        if kept.num_rows == table.num_rows:
            continue
        storage.fault_point("purge_rows")
        if kept.num_rows:
            write_arrow_file(ARTICLES, kept, path)
        else:
            storage.delete([path])
        changed.append(path)
    for run_id, manifest in found.items():
        files = []
        written_root = str(manifest.get("output") or output_root).rstrip("/")
        for entry in manifest.get("files", []):
            local = entry["path"]
            if local.startswith(written_root + "/"):  # an archive copied elsewhere keeps its layout
                local = join(output_root, local[len(written_root) + 1:])
            elif not (storage.is_remote(local) or os.path.isabs(local)):  # relative to the root
                local = join(output_root, local)
            if entry.get("table") == ARTICLES.name:
                if not storage.exists(local):
                    continue
                with FileSystems.open(local) as handle:
                    entry = {**entry, "rows": pq.ParquetFile(pa.BufferReader(handle.read())).metadata.num_rows}
            files.append(entry)
        if files != manifest.get("files", []):
            write_text_atomically(join(manifest_dir, f"{run_id}.json"),
                                  json.dumps({**manifest, "files": files}, indent=2, default=str))
    return changed


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:
        return []
