"""The short DuckDB summary printed after a run, read from the Parquet output itself."""

from __future__ import annotations

from typing import Any

import duckdb

from transforms.write import join


# Rows of the "per date" table (date x date_source, newest first).
MAX_DATE_ROWS = 30


def articles_glob(output_root: str) -> str:
    return join(output_root, "articles", "**", "*.parquet")


def rate_line(counters: dict[str, Any], elapsed: float) -> str:
    """``done in 6.1 s: 5 inputs, 0.8 articles/s`` (articles/s counts every input handled per second)."""
    inputs = counters.get("inputs") or 0
    rate = inputs / elapsed if elapsed > 0 else 0.0
    return f"done in {elapsed:,.1f} s: {inputs:,} inputs, {rate:,.1f} articles/s"


def summarize(output_root: str, manifest: dict[str, Any] | None = None, elapsed: float | None = None) -> str:
    """The run's counters, elapsed time and rate, then articles per language, topic and date."""
    lines = []
    if manifest:
        c = manifest["counters"]
        lines.append(
            f"run {manifest['run_id']} on {manifest['runner']}: inputs={c['inputs']} articles={c['articles']} "
            f"duplicates={c['duplicates']} dead_letters={c['dead_letters']} balanced={c['balanced']}"
        )
        if elapsed is not None:
            lines.append(rate_line(c, elapsed))
        outcomes = (manifest.get("feeds") or {}).get("outcomes")
        if outcomes:
            lines.append("feeds: " + " ".join(f"{outcome}={n}" for outcome, n in sorted(outcomes.items())))
    con = duckdb.connect()
    source = f"read_parquet('{articles_glob(output_root)}', hive_partitioning=true, union_by_name=true)"
    try:
        total = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    except duckdb.IOException:
        lines.append(f"no article files under {output_root}/articles yet")
        return "\n".join(lines)
    lines.append(f"articles in {output_root}/articles: {total}")
    queries = {
        "per language": f"SELECT language, count(*) AS articles FROM {source} GROUP BY 1 ORDER BY 2 DESC, 1",
        "per topic": f"SELECT coalesce(topic, '(none)') AS topic, count(*) AS articles FROM "
                     f"(SELECT unnest(CASE WHEN len(topics) = 0 THEN [NULL] ELSE topics END) AS topic FROM {source}) "
                     f"GROUP BY 1 ORDER BY 2 DESC, 1",
        # The newest dates first: an archive of years has thousands (only the newest MAX_DATE_ROWS are shown).
        "per date": f"SELECT published_date, date_source, count(*) AS articles FROM {source} "
                    f"GROUP BY 1, 2 ORDER BY 1 DESC, 2",
    }
    for title, sql in queries.items():
        rel = con.sql(sql)
        columns, rows = rel.columns, rel.fetchall()  # each query runs once (it reads every article file)
        shown = rows[:MAX_DATE_ROWS] if title == "per date" else rows
        lines.append(f"-- articles {title}")
        lines.extend(_table(columns, shown))
        if len(shown) < len(rows):
            lines.append(f"({len(rows) - len(shown):,} older rows not shown; docs/querying.md has the queries)")
    return "\n".join(lines)


def _table(columns: list[str], rows: list[tuple]) -> list[str]:
    """Left-aligned columns, as wide as their widest value."""
    widths = [max(len(str(v)) for v in [col, *[r[i] for r in rows]]) for i, col in enumerate(columns)]
    return ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)) for line in [tuple(columns), *rows]]
