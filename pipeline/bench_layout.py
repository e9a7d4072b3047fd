"""Partition layouts of the articles table, measured for the analyst's queries (docs/bench.md).

``python -m pipeline.bench_layout --output OUT`` takes the articles of an output
root, copies them ``--copies`` times (new article ids, publication dates moved
back 33 days per copy, so ~100,000 rows span two years as a real archive does)
and writes them with DuckDB in three layouts under ``bench/work/layouts/``:

  * ``day_language``: ``published_date=/language=`` folders (the layout before 2.0.0);
  * ``day``: ``published_date=`` folders, language a sorted column;
  * ``month``: ``published_month=`` folders, language and date sorted columns (the layout now).

It prints files, size and the best of three timings of typical queries per
layout, and the files each scan read (DuckDB ``EXPLAIN ANALYZE``). It writes
nothing else; without an articles table under ``--output`` it exits 2.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sys
import time

import duckdb

from pipeline.bench_corpus import PROJECT

WORK = PROJECT / "bench" / "work" / "layouts"
LAYOUTS = {
    "day_language": ("published_date, language", "article_id"),
    "day": ("published_date", "language, article_id"),
    "month": ("published_month", "language, published_date, article_id"),
}
QUERIES = {
    "one day, one language": "SELECT count(*), avg(text_length) FROM t "
                             "WHERE published_date = DATE '2026-11-10' AND language = 'en'",
    "one month, one language": "SELECT count(*) FROM t WHERE published_date BETWEEN DATE '2026-10-01' "
                               "AND DATE '2026-10-31' AND language = 'de'",
    "one month + month filter": "SELECT count(*) FROM t WHERE published_month = '2026-10' AND published_date "
                                "BETWEEN DATE '2026-10-01' AND DATE '2026-10-31' AND language = 'de'",
    "one language, all dates": "SELECT published_date, count(*) FROM t WHERE language = 'fr' GROUP BY 1",
    "topics per day, everything": "SELECT published_date, x.label, count(*) FROM t, unnest(topics) AS x(label) "
                                  "GROUP BY ALL",
}


def measure(output: str, copies: int) -> list[dict]:
    source = f"{output}/articles/**/*.parquet"
    con = duckdb.connect()
    con.sql("SET threads = 1")
    con.sql(f"""CREATE TABLE a AS SELECT * REPLACE (article_id || '-' || i AS article_id,
                published_date - CAST(i * 33 AS INTEGER) AS published_date)
                FROM read_parquet('{source}', hive_partitioning = true, union_by_name = true), range({copies}) r(i)""")
    con.sql("ALTER TABLE a ADD COLUMN IF NOT EXISTS published_month VARCHAR")
    con.sql("UPDATE a SET published_month = strftime(published_date, '%Y-%m')")
    rows = con.sql("SELECT count(*) FROM a").fetchone()[0]
    shutil.rmtree(WORK, ignore_errors=True)
    results = []
    for name, (parts, order) in LAYOUTS.items():
        out = WORK / name / "articles"
        out.parent.mkdir(parents=True, exist_ok=True)
        drop = "published_month" if name != "month" else None
        select = f"SELECT * EXCLUDE ({drop})" if drop else "SELECT *"
        con.sql(f"COPY ({select} FROM a ORDER BY {order}) TO '{out}' "
                f"(FORMAT parquet, PARTITION_BY ({parts}), COMPRESSION zstd, ROW_GROUP_SIZE 16384)")
        files = glob.glob(f"{out}/**/*.parquet", recursive=True)
        layout = {"layout": name, "rows": rows, "files": len(files),
                  "mib": round(sum(os.path.getsize(f) for f in files) / 2**20, 1), "queries": {}}
        reader = duckdb.connect()
        reader.sql("SET threads = 2")
        reader.sql(f"CREATE VIEW t AS SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true)")
        for label, sql in QUERIES.items():
            if "published_month" in sql and name != "month":
                continue
            reader.sql(sql).fetchall()
            best = min(_timed(reader, sql) for _ in range(3))
            plan = reader.sql("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
            read = re.findall(r"Total Files Read: *(\d+)", plan)
            layout["queries"][label] = {"ms": round(best * 1000, 1), "files_read": int(read[0]) if read else None}
        results.append(layout)
    return results


def _timed(con, sql: str) -> float:
    start = time.perf_counter()
    con.sql(sql).fetchall()
    return time.perf_counter() - start


def markdown(results: list[dict]) -> str:
    labels = list(QUERIES)
    lines = ["| layout | files | MiB | " + " | ".join(f"{q} (ms / files read)" for q in labels) + " |",
             "|---|---:|---:|" + "---:|" * len(labels)]
    for r in results:
        cells = []
        for q in labels:
            got = r["queries"].get(q)
            cells.append("n/a" if got is None else f"{got['ms']:,.0f} / {got['files_read'] if got['files_read'] is not None else 'all'}")
        lines.append(f"| {r['layout']} | {r['files']:,} | {r['mib']:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench_layout", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="output root whose articles are copied")
    parser.add_argument("--copies", type=int, default=22, help="copies of the articles (default: %(default)s)")
    args = parser.parse_args(argv)
    if not glob.glob(f"{args.output}/articles/**/*.parquet", recursive=True):
        print(f"bench-layout: no articles under {args.output}/articles", file=sys.stderr)
        return 2
    results = measure(args.output, args.copies)
    print(markdown(results))
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
