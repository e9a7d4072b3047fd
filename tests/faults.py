"""Fault injection helpers: real `newsbeam run` processes on real files (or a GCS stand-in).

Used by tests/test_faults.py (local disk) and tests/test_faults_gcs.py (gs:// on fake-gcs-server).
``python tests/faults.py check ROOT`` prints :func:`check_archive` of ROOT as JSON, so the check
can run with the Python that has the gs:// client (.venv-gcp) while pytest runs elsewhere.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

PROJECT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = PROJECT / "data" / "seeds"
GCP_PYTHON = PROJECT / ".venv-gcp" / "bin" / "python"


def newsbeam(*args: str, python: str | None = None, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` as a real process; ``env`` adds variables (fault injection)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBEAM_FAULT")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(PROJECT)
    return subprocess.run([python or sys.executable, "-m", "pipeline", *args], cwd=PROJECT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def make_inputs(folder: pathlib.Path, extra: int = 0) -> str:
    """The five seeds, an exact copy of one, an empty file and ``extra`` generated articles; the glob.

    A run over it gives 5 + extra articles, 1 duplicate and 1 dead letter."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, folder / seed.name)
    shutil.copy(min(SEEDS.glob("*.txt")), folder / "zz_copy.txt")
    (folder / "zz_empty.txt").write_bytes(b"")
    for i in range(extra):
        write_article(folder / f"gen_{i:04d}.txt", i)
    return str(folder / "*.txt")


CITIES = ["Lissabon", "Krakau", "Tallinn", "Bergen", "Triest", "Gent", "Brünn", "Košice", "Uppsala", "Cluj"]
TRADES = ["Bäcker", "Fährleute", "Lokführer", "Pflegekräfte", "Drucker", "Gärtner", "Hafenlotsen", "Imker"]


def write_article(path: pathlib.Path, i: int) -> None:
    """A distinct short German news text (no two are near duplicates)."""
    city, trade = CITIES[i % len(CITIES)], TRADES[(i // len(CITIES)) % len(TRADES)]
    words = " ".join(f"Punkt{i}x{j}" for j in range(25))
    path.write_text(f"{trade} in {city} streiken zum {i}. Mal\nDie {trade} in {city} legen am Tag {i} die Arbeit "
                    f"nieder. Verhandelt wird über {words}. Die Stadtverwaltung von {city} rechnet mit "
                    f"Einschränkungen bis zum Abend.\n", encoding="utf-8")


def _read_parquet(path: str):
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        return pq.read_table(io.BytesIO(handle.read()))


def _match(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:
        return []


def check_archive(root: str) -> dict[str, Any]:
    """What a reader of ``root`` finds, and every way it can disagree with the commits.

    ``problems`` lists each disagreement: a duplicated article id, an article file no committed
    manifest lists, a listed file missing or with another row count, counters that do not add up,
    index rows that are not the articles, leftovers of unfinished runs."""
    sys.path.insert(0, str(PROJECT))
    from transforms.commit import committed_runs, manifests
    from transforms.storage import join, read_text

    problems: list[str] = []
    found = manifests(root)
    committed = {r: m for r, m in found.items() if m.get("status") == "committed" and "chunks" not in m}
    listed: dict[str, int] = {}
    for run_id, manifest in committed.items():
        per_table: dict[str, int] = {}
        written_root = str(manifest.get("output") or root).rstrip("/") + "/"
        for entry in manifest.get("files", []):
            # Paths are relative to the output root (absolute in manifests written before that).
            path = entry["path"][len(written_root):] if entry["path"].startswith(written_root) else entry["path"]
            listed[join(root, path)] = entry["rows"]
            per_table[entry["table"]] = per_table.get(entry["table"], 0) + entry["rows"]
        c = manifest["counters"]
        for table, key in (("articles", "articles"), ("duplicates", "duplicates"), ("errors", "dead_letters")):
            if per_table.get(table, 0) != c.get(key, 0):
                problems.append(f"{run_id}: {table} files hold {per_table.get(table, 0)} rows, counters say {c.get(key)}")
        if not c.get("balanced"):
            problems.append(f"{run_id}: counters not balanced")
    ids: list[str] = []
    rows_on_disk = {}
    for table in ("articles", "duplicates", "errors", "feed_status"):
        for path in _match(join(root, table, "**", "*.parquet")):
            data = _read_parquet(path)
            rows_on_disk[path] = data.num_rows
            if path not in listed:
                problems.append(f"{path}: on disk but in no committed manifest")
            elif listed[path] != data.num_rows:
                problems.append(f"{path}: {data.num_rows} rows, manifest says {listed[path]}")
            if table == "articles":
                ids += data.column("article_id").to_pylist()
    for path in listed:
        if path not in rows_on_disk:
            problems.append(f"{path}: listed by a committed manifest but missing")
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicated article rows")
    index_ids: list[str] = []
    for path in _match(join(root, "_state", "dedup_index", "*.parquet")):
        index_ids += _read_parquet(path).column("article_id").to_pylist()
    if sorted(set(index_ids)) != sorted(set(ids)):
        problems.append(f"dedup index holds {len(set(index_ids))} ids, articles {len(set(ids))}")
    leftovers = _match(join(root, "_staging", "**"))
    if leftovers:
        problems.append(f"staging leftovers: {leftovers[:3]}")
    unpublished = sorted(set(committed_runs(root)) - set(found))
    if unpublished:
        problems.append(f"committed but unpublished: {unpublished}")
    for run_id, manifest in found.items():
        if manifest.get("status") == "running":
            problems.append(f"{run_id}: manifest still running")
    del read_text
    return {"articles": len(ids), "article_ids": sorted(set(ids)), "runs": sorted(committed),
            "problems": problems}


def check(root: str, python: str | None = None) -> dict[str, Any]:
    """:func:`check_archive` of ``root`` in a process of ``python`` (the gs:// client lives in .venv-gcp)."""
    if python is None:
        return check_archive(root)
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = str(PROJECT)
    done = subprocess.run([python, str(pathlib.Path(__file__)), "check", root], capture_output=True, text=True,
                          env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "check":
        print("usage: python tests/faults.py check ROOT", file=sys.stderr)
        sys.exit(2)
    import logging

    logging.disable(logging.WARNING)
    print(json.dumps(check_archive(sys.argv[2])))
