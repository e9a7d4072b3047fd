"""The closing summary (pipeline/summary.py) read by DuckDB from real Parquet files."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.summary import MAX_DATE_ROWS, summarize


def _archive(root, days: int) -> None:
    """One article per day for ``days`` days (two on the newest day), monthly partitions as the writer makes."""
    start = dt.date(2025, 1, 1)
    dates = [start + dt.timedelta(days=i) for i in range(days)] + [start + dt.timedelta(days=days - 1)]
    by_month: dict[str, list[dt.date]] = {}
    for d in dates:
        by_month.setdefault(d.strftime("%Y-%m"), []).append(d)
    for month, month_dates in by_month.items():
        folder = root / "articles" / f"published_month={month}"
        folder.mkdir(parents=True)
        table = pa.table({
            "language": ["de"] * len(month_dates),
            "topics": [["sanctions"] if d.day == 1 else [] for d in month_dates],
            "published_date": pa.array(month_dates, pa.date32()),
            "date_source": ["text"] * len(month_dates),
        })
        pq.write_table(table, folder / "part-0.parquet")


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("-- ")), len(lines))
    return lines[start:end]


def test_per_date_shows_the_newest_dates_and_counts_the_rest(tmp_path):
    _archive(tmp_path, 100)
    text = summarize(str(tmp_path))
    assert f"articles in {tmp_path}/articles: 101" in text
    assert _section(text, "-- articles per language")[1].split() == ["de", "101"]
    topics = {line.split()[0]: int(line.split()[1]) for line in _section(text, "-- articles per topic")[1:]}
    assert topics == {"sanctions": 4, "(none)": 97}  # Jan 1, Feb 1, Mar 1, Apr 1 of 2025
    dates = _section(text, "-- articles per date")
    assert dates[0].split() == ["published_date", "date_source", "articles"]
    rows = dates[1:-1]
    assert len(rows) == MAX_DATE_ROWS
    assert rows[0].split() == ["2025-04-10", "text", "2"]  # the newest day first, both of its articles
    shown = [line.split()[0] for line in rows]
    assert shown == sorted(shown, reverse=True)
    assert dates[-1].startswith(f"({100 - MAX_DATE_ROWS:,} older rows not shown")


def test_a_small_archive_shows_every_date(tmp_path):
    _archive(tmp_path, 3)
    dates = _section(summarize(str(tmp_path)), "-- articles per date")
    assert [line.split() for line in dates[1:]] == [
        ["2025-01-03", "text", "2"], ["2025-01-02", "text", "1"], ["2025-01-01", "text", "1"]]


def test_no_articles_yet(tmp_path):
    assert summarize(str(tmp_path)).endswith(f"no article files under {tmp_path}/articles yet")
