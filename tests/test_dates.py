"""transforms.dates on the hand-written table of real-world feed date forms, plus what it says when a
date is doubtful; and the date fields of feed items (date_source, date_warning, nothing silently
becomes the ingestion day)."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.evaluate_dates import TABLE, evaluate, load_table, main
from transforms.common import RunInfo
from transforms.dates import LANGUAGES, name_tables, parse_date
from transforms.feeds import parse_feed_entries
from transforms.normalize import to_article

UTC = dt.timezone.utc
ROWS = load_table(TABLE)


@pytest.mark.parametrize("text, expected, note", ROWS, ids=[r[2] or r[0] for r in ROWS])
def test_date_form(text, expected, note):
    got = parse_date(text)
    assert got.instant == expected, (text, got)
    if expected is None:
        assert got.warning and got.warning.startswith("unparsed")


def test_table_covers_the_forms_the_issue_names():
    notes = " ".join(r[2] for r in ROWS)
    for form in ("MEZ", "MESZ", "CET", "CEST", "EST", "EDT", "PST", "PDT", "GMT", "UTC", "12-hour", "without day name",
                 "ISO", "Portuguese", "Italian", "Spanish", "French", "Dutch", "Polish", "Czech", "Slovak",
                 "Ukrainian", "Russian", "Romanian", "Swedish", "German"):
        assert form in notes, form


@pytest.mark.parametrize("text, warning", [
    ("Sat, Dec 16 2023 02:02:33 PM", "no time zone, UTC assumed"),
    ("2018-12-13 00:00:00", "no time zone, UTC assumed"),
    ("2024-01-05", "date only"),
    ("Mon, 03 Jul 2023 08:15:00 CST", "ambiguous time zone CST read as -06:00"),
    ("Sat, 16 Dec 2023 14:02:33 +0100", None),
])
def test_doubtful_dates_say_so(text, warning):
    assert parse_date(text).warning == warning


def test_precision():
    assert parse_date("2024-01-05").precision == "day"
    assert parse_date("Sat, 16 Dec 2023 14:02 GMT").precision == "minute"
    assert parse_date("Sat, 16 Dec 2023 14:02:33 GMT").precision == "second"


def test_month_names_cover_the_14_languages_without_conflicts():
    months, weekdays = name_tables()
    assert len(LANGUAGES) == 14
    # Hand-picked genitive / abbreviated forms, one per language.
    for token, number in {"dezember": 12, "december": 12, "décembre": 12, "dicembre": 12, "diciembre": 12,
                          "dezembro": 12, "grudnia": 12, "prosince": 12, "decembra": 12, "грудня": 12,
                          "декабря": 12, "decembrie": 12, "set": 9, "mär": 3, "září": 9}.items():
        assert months.get(token) == number, token
    assert {"seg", "mer", "fr", "пт", "sáb"} <= weekdays


def test_our_parser_is_right_on_the_whole_table():
    ours = next(r for r in evaluate(ROWS, repeat=1) if r["parser"] == "newsbeam transforms.dates")
    assert ours["right"] == ours["rows"], ours["wrong"]


def test_evaluate_dates_exits_2_without_its_table(tmp_path, capsys):
    assert main([str(tmp_path / "missing.tsv")]) == 2


# -- item date fields -----------------------------------------------------------------------------

RUN = RunInfo("dates-test", dt.datetime(2026, 1, 12, 12, 0, tzinfo=UTC))


def _rss(item_fields: str, channel_fields: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{channel_fields}'
            f'<item><title>Titel</title><guid isPermaLink="false">g1</guid><description>Text</description>'
            f'{item_fields}</item></channel></rss>').encode()


def _item(body: bytes, now=None):
    items, _ = parse_feed_entries(body, {"name": "t", "url": "https://t.test/feed", "language": None}, now=now)
    return items[0]


def test_mez_is_not_read_as_utc():
    item = _item(_rss("<pubDate>Fr, 15 Dez 2023 10:00:00 MEZ</pubDate>"))
    assert item["published_at"] == dt.datetime(2023, 12, 15, 9, 0, tzinfo=UTC)
    assert item["date_source"] == "entry:published" and item["date_warning"] is None


def test_a_date_nobody_can_read_is_kept_in_the_warning_and_not_replaced_by_the_run_day():
    item = _item(_rss("<pubDate>am Tag der Deutschen Einheit</pubDate>"))
    assert item["published_at"] is None and item["date_source"] is None
    assert "unparsed: 'am Tag der Deutschen Einheit'" in item["date_warning"]
    article = to_article(item, RUN)
    assert article["published_at"] is None and article["date_source"] == "ingested"
    assert article["published_date"] == RUN.ingested_date  # the partition stays non-null ...
    assert "filed under the ingestion day" in article["date_warning"]  # ... and the row says why


def test_entry_without_date_uses_the_feeds_date_and_says_so():
    item = _item(_rss("", "<lastBuildDate>Wed, 01 Jan 2020 12:23:59 GMT</lastBuildDate>"))
    assert item["published_at"] == dt.datetime(2020, 1, 1, 12, 23, 59, tzinfo=UTC)
    assert item["date_source"] == "feed:updated" and "feed's date" in item["date_warning"]


def test_future_date_is_flagged():
    item = _item(_rss("<pubDate>Sat, 16 Dec 2034 14:02:33 GMT</pubDate>"),
                 now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert "in the future" in item["date_warning"]
