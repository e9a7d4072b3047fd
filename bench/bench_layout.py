"""The articles layout before and after ``newsbeam migrate`` and ``compact``, measured (docs/bench.md).

``python -m bench.bench_layout --source OUT [--copies 26]`` takes the articles of a real output
root OUT, copies them ``--copies`` times (new article ids, publication dates moved back 33 days
per copy, so ~100,000 rows span two years as a real archive does) and writes them as newsbeam
1.x did: one file per ``published_date=/language=`` folder, the partition values only in the
folder names (layout 1). Then it measures typical analyst queries (best of three, DuckDB, 2
threads) and the files each scan read (``EXPLAIN ANALYZE``), runs :func:`transforms.rewrite.migrate`
on that archive (the real migration: lease, staging, commit record, folder exchange), measures
again, adds 40 small files to one month as 40 scheduled runs would, and runs
:func:`transforms.rewrite.compact`. Everything is written under ``--work`` (default a temporary
folder), which is deleted afterwards. Without articles under ``--source`` it exits 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time

import duckdb

QUERIES = {
    "one day, one language": "SELECT count(*), avg(text_length) FROM t "
                             "WHERE published_date = DATE '{day}' AND language = 'de'",
    "one month, one language": "SELECT count(*) FROM t WHERE published_date BETWEEN DATE '{month}-01' "
                               "AND last_day(DATE '{month}-01') AND language = 'de'",
    "one language, all dates": "SELECT published_date, count(*) FROM t WHERE language = 'en' GROUP BY 1",
    "topics per day, everything": "SELECT published_date, x.label, count(*) FROM t, unnest(topics) AS x(label) "
                                  "GROUP BY ALL",
}


def build_layout1(source: str, root: str, copies: int) -> dict:
    """A layout-1 archive of ``copies`` shifted copies of ``source``'s articles, as 1.x wrote it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas import ARTICLES

    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    con.sql(f"""CREATE TABLE a AS SELECT * REPLACE (article_id || '-' || i AS article_id,
                published_date - CAST(i * 33 AS INTEGER) AS published_date)
                FROM read_parquet('{source}/articles/**/*.parquet', hive_partitioning = true, union_by_name = true),
                range({copies}) r(i)""")
    names = [f.name for f in ARTICLES.file_schema if f.name not in ("published_date", "language")]
    table = con.sql(f"SELECT {', '.join(names)}, published_date, language FROM a "
                    f"ORDER BY published_date, language, article_id").arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    schema = pa.schema([ARTICLES.file_schema.field(n) for n in names],
                       metadata=ARTICLES.file_schema.metadata)
    keys = con.sql("SELECT published_date, language, count(*) FROM a GROUP BY ALL ORDER BY ALL").fetchall()
    start = 0
    for day, language, n in keys:
        part = table.slice(start, n)
        start += n
        folder = os.path.join(root, "articles", f"published_date={day.isoformat()}", f"language={language}")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(part.select(names).cast(schema), os.path.join(folder, "part-bench-00000-000.parquet"),
                       compression="zstd")
    register_run(root, "bench")
    return {"rows": table.num_rows, "days": len({k[0] for k in keys})}


def register_run(root: str, run_id: str) -> None:
    """A committed manifest for the files the benchmark writes itself (recovery removes table files
    of runs that never committed)."""
    os.makedirs(os.path.join(root, "_runs"), exist_ok=True)
    with open(os.path.join(root, "_runs", f"{run_id}.json"), "w", encoding="utf-8") as handle:
        json.dump({"run_id": run_id, "status": "committed", "output": root, "files": [],
                   "counters": {"inputs": 0, "articles": 0, "duplicates": 0, "dead_letters": 0, "balanced": True}}, handle)


def layout_stats(root: str) -> dict:
    files = glob.glob(f"{root}/articles/**/*.parquet", recursive=True)
    return {"files": len(files), "mib": round(sum(os.path.getsize(f) for f in files) / 2**20, 1)}


def measure(root: str, day: str, month: str) -> dict:
    reader = duckdb.connect()
    reader.sql("SET threads = 2")
    reader.sql(f"CREATE VIEW t AS SELECT * FROM read_parquet('{root}/articles/**/*.parquet', hive_partitioning = true)")
    results = {}
    for label, template in QUERIES.items():
        sql = template.format(day=day, month=month)
        reader.sql(sql).fetchall()
        best = min(_timed(reader, sql) for _ in range(3))
        plan = reader.sql("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
        read = re.findall(r"Total Files Read: *(\d+)", plan)
        results[label] = {"ms": round(best * 1000, 1), "files_read": int(read[0]) if read else None}
    return results


def _timed(con, sql: str) -> float:
    start = time.perf_counter()
    con.sql(sql).fetchall()
    return time.perf_counter() - start


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def add_small_files(root: str, month: str, n: int) -> None:
    """``n`` small files in one month partition, one per scheduled run (rows moved out of the
    month's big file, so the table's rows stay the same)."""
    import pyarrow.parquet as pq

    from schemas import ARTICLES
    from transforms.write import file_name, write_arrow_file

    folder = os.path.join(root, "articles", f"published_month={month}")
    [big] = glob.glob(f"{folder}/*.parquet")
    table = pq.read_table(big)
    chunk = 25
    for i in range(n):
        write_arrow_file(ARTICLES, table.slice(i * chunk, chunk), os.path.join(folder, file_name(f"sched{i:03d}", 0, 0)))
        register_run(root, f"sched{i:03d}")
    write_arrow_file(ARTICLES, table.slice(n * chunk), big)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_layout", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="output root whose articles are copied")
    parser.add_argument("--copies", type=int, default=26, help="copies of the articles (default: %(default)s)")
    parser.add_argument("--work", help="work folder (default: a temporary one, deleted afterwards)")
    args = parser.parse_args(argv)
    if not glob.glob(f"{args.source}/articles/**/*.parquet", recursive=True):
        print(f"bench-layout: no articles under {args.source}/articles", file=sys.stderr)
        return 2
    from transforms.rewrite import compact, migrate

    work = args.work or tempfile.mkdtemp(prefix="bench-layout-")
    root = os.path.join(work, "archive")
    try:
        built = build_layout1(args.source, root, args.copies)
        con = duckdb.connect()
        day, month = con.sql(f"SELECT published_date, strftime(published_date, '%Y-%m') FROM read_parquet("
                             f"'{root}/articles/**/*.parquet', hive_partitioning = true) WHERE language = 'de' "
                             f"GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1").fetchone()
        day = day.isoformat()
        out = {"rows": built["rows"], "days": built["days"], "layout1": {**layout_stats(root), "queries": measure(root, day, month)}}
        cpu = _cpu()
        migrated = migrate(root)
        out["migrate"] = {k: migrated[k] for k in ("files_read", "files_written", "rows_read", "rows_written")}
        out["migrate"]["cpu_s"] = round(_cpu() - cpu, 1)
        out["layout2"] = {**layout_stats(root), "queries": measure(root, day, month)}
        add_small_files(root, month, 40)
        out["scheduled"] = {**layout_stats(root), "queries": measure(root, day, month)}
        cpu = _cpu()
        compacted = compact(root, min_files=8)
        out["compact"] = {k: compacted[k] for k in ("files_read", "files_written", "table_files_before",
                                                    "table_files_after")}
        out["compact"]["cpu_s"] = round(_cpu() - cpu, 1)
        out["compacted"] = {**layout_stats(root), "queries": measure(root, day, month)}
        out["day"], out["month"] = day, month
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
