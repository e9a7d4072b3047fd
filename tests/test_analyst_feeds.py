"""feed_health and the report over real feed runs: two real Beam runs fetching from a local HTTP server."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
import yaml
from conftest import FIXED_NOW, make_settings
from feeds_server import FeedServer, Response, rss, with_validators

from analyst.views import connect
from pipeline.launch import run_once

FETCH = {"timeout_connect": 1, "timeout_total": 2, "max_bytes": 100_000, "max_redirects": 3,
         "backoff_base_seconds": 60, "backoff_max_seconds": 3600,
         "user_agent": "newsbeam-test/1 (+https://example.org/newsbeam)"}

ITEMS = [
    {"guid": "n-1", "title": "Nato allies agree on higher defence spending",
     "link": "https://news.example.org/nato", "pubDate": "Fri, 20 Nov 2026 09:00:00 GMT",
     "description": "Nato members agreed to raise defence spending to five percent of GDP over ten years."},
    {"guid": "n-2", "title": "Rail strike ends after two days", "link": "https://news.example.org/rail",
     "pubDate": "Fri, 20 Nov 2026 10:00:00 GMT",
     "description": "Train drivers returned to work after the union reached a wage deal with the operator."},
]


@pytest.fixture(scope="module")
def feed_output(tmp_path_factory):
    """Run 1: 'news' answers 200, 'broken' 500. Run 2 a day later: 'news' answers 304, 'broken' 500 again."""
    base = tmp_path_factory.mktemp("feeds")
    output = base / "output"
    with FeedServer() as server:
        server.routes["/news"] = with_validators(rss("News", ITEMS, language="en"), '"v1"',
                                                 "Fri, 20 Nov 2026 10:00:00 GMT")
        server.routes["/broken"] = lambda request: Response(500, b"internal error")
        feeds = base / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": "news", "url": server.url("/news")}, {"name": "broken", "url": server.url("/broken")}]}))
        manifests = []
        for day in range(2):
            settings = make_settings(output, feeds_file=str(feeds), feeds=FETCH)
            manifests.append(run_once(settings, now=FIXED_NOW + dt.timedelta(days=day)))
    return output, manifests


def test_feed_health_over_two_runs(feed_output):
    output, manifests = feed_output
    assert all(m["counters"]["balanced"] for m in manifests)
    con = connect(str(output))
    statuses = con.execute("SELECT feed, outcome, http_status FROM feed_status ORDER BY fetched_at, feed").fetchall()
    assert [s[0] for s in statuses].count("news") == 2 and [s[0] for s in statuses].count("broken") == 2
    cursor = con.execute("SELECT * FROM feed_health ORDER BY feed")
    names = [d[0] for d in cursor.description]
    health = {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
    assert set(health) == {"news", "broken"}
    news, broken = health["news"], health["broken"]
    news_articles = con.execute("SELECT count(*) FROM articles WHERE source = 'news'").fetchone()[0]
    assert news_articles == len(ITEMS)
    assert news["healthy"] is True and news["last_outcome"] in ("not_modified", "unchanged")
    assert (news["fetches"], news["failures"], news["articles"]) == (2, 0, news_articles)
    assert news["last_fetched_at"] == max(s for s in con.execute(
        "SELECT fetched_at FROM feed_status WHERE feed = 'news'").fetchall())[0]
    assert broken["healthy"] is False and broken["last_outcome"] == "failed" and broken["last_http_status"] == 500
    assert (broken["fetches"], broken["failures"], broken["failure_rate"], broken["articles"]) == (2, 2, 1.0, 0)
    assert broken["consecutive_failures"] == 2 and broken["last_success_at"] is None
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_report_lists_feed_health(feed_output, tmp_path):
    pytest.importorskip("matplotlib")
    from analyst.report import write_report

    output, _ = feed_output
    written = write_report(str(output), str(tmp_path / "report"), now=FIXED_NOW)
    html = pathlib.Path(written["index"]).read_text(encoding="utf-8")
    assert "<h2>Feeds</h2>" in html
    assert "<td>broken</td><td>False</td><td>failed</td><td>500</td>" in html
    runs = written["data"].runs  # oldest first, as the dedup chart draws them
    assert [r["started_at"] for r in runs] == [FIXED_NOW, FIXED_NOW + dt.timedelta(days=1)]
