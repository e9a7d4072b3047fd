"""After the write: make the run's output final, then record it.

:class:`CommitRun` runs once, after every table's files are in place: it
deletes files an earlier attempt of the same run id left behind, runs the
commit hooks (e.g. the cross-run dedup index, feed state) and writes the run
manifest ``<output>/_runs/<run_id>.json`` last. The manifest is the commit
marker: a run without one did not finish.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from typing import Any, Callable, Iterable, Mapping

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas import SCHEMA_VERSION, TABLES
from transforms.write import batch_run_id, join, replace_file, run_file_pattern, run_temp_pattern

MANIFEST_DIR = "_runs"

# Counter keys that add up: inputs = articles + duplicates + dead_letters.
BALANCE_KEYS = ("articles", "duplicates", "dead_letters")


def manifest_path(output_root: str, run_id: str) -> str:
    return join(output_root, MANIFEST_DIR, f"{run_id}.json")


def write_text_atomically(path: str, text: str) -> None:
    temp = f"{path}.inprogress"
    with FileSystems.create(temp, mime_type="application/json",
                            compression_type=CompressionTypes.UNCOMPRESSED) as sink:
        sink.write(text.encode("utf-8"))
    replace_file(temp, path)


def read_text(path: str) -> str | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read().decode("utf-8")


def read_manifest(output_root: str, run_id: str) -> dict[str, Any] | None:
    text = read_text(manifest_path(output_root, run_id))
    return json.loads(text) if text else None


def stale_files(output_root: str, run_id: str, written: Iterable[str]) -> list[str]:
    """Files of ``run_id`` in any table that this attempt did not write, and its leftover temp files."""
    keep = set(written)
    stale = []
    for table in TABLES.values():
        patterns = [run_file_pattern(output_root, table, run_id), run_temp_pattern(output_root, table, run_id)]
        for result in FileSystems.match(patterns):
            # The glob also matches runs whose id merely starts with run_id ("<run_id>-c0001").
            stale.extend(m.path for m in result.metadata_list
                         if m.path not in keep and batch_run_id(m.path) == run_id)
    return sorted(stale)


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


class _CommitFn(beam.DoFn):
    def __init__(self, output_root: str, run_id: str, manifest_base: Mapping[str, Any],
                 hooks: list[Callable[..., dict | None]]):
        self._root = output_root
        self._run_id = run_id
        self._base = dict(manifest_base)
        self._hooks = list(hooks)

    def process(self, files: list[dict[str, Any]], counts: Mapping[str, int]):
        files = sorted(files, key=lambda f: f["path"])
        stale = stale_files(self._root, self._run_id, [f["path"] for f in files])
        if stale:
            FileSystems.delete(stale)
        extras: dict[str, Any] = {}
        for hook in self._hooks:
            extras.update(hook(files=files, counts=dict(counts)) or {})
        manifest = dict(self._base)
        manifest.update({
            "run_id": self._run_id,
            "status": "committed",
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "versions": versions(),
            "counters": build_counters(counts),
            "files": files,
            "stale_files_removed": len(stale),
            **extras,
        })
        write_text_atomically(manifest_path(self._root, self._run_id), json.dumps(manifest, indent=2, default=str))
        yield manifest


class CommitRun(beam.PTransform):
    """Finalize a run from the descriptors of every file it wrote.

    ``counts`` is a PCollection of ``(key, count)`` pairs (``inputs``,
    ``articles``, ``language:de`` ...). ``hooks`` are picklable callables run
    after the files are in place and before the manifest; each may return
    extra manifest fields. Outputs the manifest dict.
    """

    def __init__(self, output_root: str, run_id: str, manifest_base: Mapping[str, Any],
                 hooks: list[Callable[..., dict | None]] | None = None):
        super().__init__()
        self._fn = _CommitFn(output_root, run_id, manifest_base, hooks or [])

    def expand(self, files_and_counts):
        files, counts = files_and_counts
        all_files = files | "AllFiles" >> beam.combiners.ToList()
        totals = counts | "SumCounts" >> beam.CombinePerKey(sum)
        return all_files | "Commit" >> beam.ParDo(self._fn, counts=beam.pvalue.AsDict(totals))
