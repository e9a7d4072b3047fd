"""Real publisher feeds (tests/fixtures/feeds/, origins in its README): served by a real HTTP server on
127.0.0.1, fetched by FetchFeeds, parsed by ParseFeeds and normalized by NormalizeArticles in a Beam
TestPipeline; every sampled entry's body source, guid, url, published instant (to the second),
declared language, and every feed's charset and entry count are checked against expected.json,
which was written by hand from the raw XML (never from this code's output)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from conftest import make_test_pipeline
from feeds_server import FeedServer, static

from transforms.common import RunInfo
from transforms.feeds import STATUS, ParseFeeds, parse_feed_entries
from transforms.fetch import FetchFeeds, FetchSettings, NetworkPolicy
from transforms.normalize import NormalizeArticles, to_article

FEEDS = pathlib.Path(__file__).resolve().parent / "fixtures" / "feeds"
EXPECTED = json.loads((FEEDS / "expected.json").read_text(encoding="utf-8"))["feeds"]
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
RUN = RunInfo("real-feeds", NOW)
SETTINGS = FetchSettings(timeout_connect=2, timeout_total=10, max_bytes=5_000_000, max_redirects=2,
                         user_agent="newsbeam-test/1", backoff_base_seconds=60, backoff_max_seconds=3600)
# How each file is served: as publishers' servers do, mostly without a charset; golem.de with a
# charset header that contradicts its XML declaration (ISO-8859-1): the declaration must win.
CONTENT_TYPES = {"feeder__golem-de.xml": "application/rss+xml; charset=UTF-8"}
# In an ill-formed document the raw elements cannot be read; feedparser's loose parse names the
# same element "feedparser:summary" (description / atom:summary) or "feedparser:content".
LOOSE = {"description": "feedparser:summary", "atom:summary": "feedparser:summary",
         "content:encoded": "feedparser:content", "atom:content": "feedparser:content"}


def _instant(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def compare(items_by_feed: dict[str, list[dict]], articles_by_feed: dict[str, dict],
            charsets: dict[str, str] | None) -> tuple[dict[str, list[int]], list[str]]:
    """Per check ``[right, total]`` and the list of mismatches, over every feed and sample."""
    counts = {k: [0, 0] for k in ("entries", "charset", "body_source", "guid", "url", "canonical_url",
                                  "published", "declared_language", "date_source")}
    wrong: list[str] = []

    def check(name, where, got, expected):
        counts[name][1] += 1
        if got == expected:
            counts[name][0] += 1
        else:
            wrong.append(f"{where} {name}: got {got!r}, expected {expected!r}")

    for feed in EXPECTED:
        name = feed["file"]
        items = {item["entry_index"]: item for item in items_by_feed.get(name, [])}
        check("entries", name, len(items), feed["entries"])
        if charsets is not None:
            check("charset", name, charsets.get(name), feed["charset"])
        for sample in feed["samples"]:
            where = f"{name}#{sample['index']}"
            item = items.get(sample["index"])
            if item is None:
                wrong.append(f"{where}: no item")
                continue
            expected_source = sample["body_source"]
            if feed.get("well_formed") is False and expected_source:
                expected_source = LOOSE.get(expected_source, expected_source)
            check("body_source", where, item["body_source"], expected_source)
            check("guid", where, item["guid"], sample["guid"])
            check("url", where, item["url"], sample["url"])
            got = item["published_at"]
            check("published", where, got.replace(microsecond=0) if got else None, _instant(sample["published"]))
            check("declared_language", where, item["declared_language"], feed["declared_language"])
            if "date_source" in sample:
                check("date_source", where, item["date_source"], sample["date_source"])
            if "canonical_url" in sample:
                article = articles_by_feed.get(name, {}).get(sample["index"])
                check("canonical_url", where, article and article["canonical_url"], sample["canonical_url"])
    return counts, wrong


@pytest.fixture(scope="module")
def server():
    with FeedServer() as running:
        for feed in EXPECTED:
            body = (FEEDS / feed["file"]).read_bytes()
            running.routes[f"/{feed['file']}"] = static(body, CONTENT_TYPES.get(feed["file"], "application/rss+xml"))
        yield running


def test_expectations_cover_enough_real_feeds():
    languages = {feed["language"] for feed in EXPECTED}
    assert len(EXPECTED) >= 25 and len(languages) >= 8, (len(EXPECTED), languages)
    assert all((FEEDS / feed["file"]).is_file() for feed in EXPECTED)
    readme = (FEEDS / "README.md").read_text(encoding="utf-8")
    assert all(feed["file"] in readme for feed in EXPECTED), "every fixture's origin is in the README"


def test_real_feeds_through_fetch_parse_and_normalize(server):
    feeds = [({"name": f["file"], "url": server.url(f"/{f['file']}"), "language": None}, None) for f in EXPECTED]
    policy = NetworkPolicy(allow_private_networks=True)

    def check(outputs):
        items, articles, statuses = outputs
        assert len(statuses) == len(EXPECTED) and all(s["status"]["outcome"] == "ok" for s in statuses), statuses
        assert len(articles) == len(items)  # every entry became an article (no dead letter)
        items_by_feed: dict[str, list[dict]] = {}
        for item in items:
            items_by_feed.setdefault(item["source"], []).append(item)
        # canonical_url: the article of each sampled item (to_article is what NormalizeArticles applies).
        articles_by_feed = {name: {item["entry_index"]: to_article(item, RUN) for item in group}
                            for name, group in items_by_feed.items()}
        _counts, wrong = compare(items_by_feed, articles_by_feed, None)
        assert not wrong, "\n".join(wrong)

    with make_test_pipeline() as p:
        fetched = p | beam.Create(feeds) | FetchFeeds(SETTINGS, policy, RUN.run_id, NOW)
        parsed = fetched | ParseFeeds(RUN, 65536)
        normalized = parsed["items"] | NormalizeArticles(RUN, 1, 65536)
        both = ((parsed["items"] | "ItemsList" >> beam.combiners.ToList()),
                (normalized["articles"] | "ArticlesList" >> beam.combiners.ToList()),
                (parsed[STATUS] | "StatusList" >> beam.combiners.ToList()))
        joined = (p | "One" >> beam.Create([None])
                  | beam.Map(lambda _, a, b, c: (a, b, c), beam.pvalue.AsSingleton(both[0]),
                             beam.pvalue.AsSingleton(both[1]), beam.pvalue.AsSingleton(both[2])))
        assert_that(joined, lambda outputs: check(outputs[0]))


def real_feed_results() -> tuple[dict[str, list[int]], list[str]]:
    """The same comparison without Beam (also used for the figures in docs/feeds.md)."""
    items_by_feed, articles_by_feed, charsets = {}, {}, {}
    for feed in EXPECTED:
        body = (FEEDS / feed["file"]).read_bytes()
        headers = {"Content-Type": CONTENT_TYPES.get(feed["file"], "application/rss+xml")}
        items, info = parse_feed_entries(body, {"name": feed["file"], "url": f"https://feeds.test/{feed['file']}",
                                                "language": None}, headers, now=NOW)
        items_by_feed[feed["file"]] = items
        articles_by_feed[feed["file"]] = {item["entry_index"]: to_article(item, RUN) for item in items}
        charsets[feed["file"]] = info["charset"]
    return compare(items_by_feed, articles_by_feed, charsets)


def test_every_check_holds_on_every_real_feed():
    counts, wrong = real_feed_results()
    assert not wrong, "\n".join(wrong)
    assert counts["entries"][1] >= 25 and counts["published"][1] >= 50 and counts["canonical_url"][1] >= 5


def test_a_contradicting_charset_header_loses_to_the_xml_declaration():
    body = (FEEDS / "feeder__golem-de.xml").read_bytes()
    items, info = parse_feed_entries(body, {"name": "golem", "url": "https://golem.test/rss", "language": None},
                                     {"Content-Type": "application/rss+xml; charset=UTF-8"})
    assert info["charset"] == "iso8859-1" and "XML declaration says ISO-8859-1" in info["error"]
    # Written by hand from the raw entry: <title>Anheuser Busch: US-Brauerei bestellt 40 Tesla-Trucks vor</title>
    assert items[0]["title"] == "Anheuser Busch: US-Brauerei bestellt 40 Tesla-Trucks vor"


def _windows_1251(declared: bool) -> bytes:
    """The Ukrainian public broadcaster's feed (UTF-8) re-encoded as windows-1251, as many Cyrillic feeds are."""
    text = (FEEDS / "feeder__rss_ukrnet.xml").read_text(encoding="utf-8")
    text = text.replace('encoding="UTF-8"', 'encoding="windows-1251"' if declared else "", 1)
    if not declared:
        text = text.replace('<?xml version="1.0" ?>', "", 1)
    return text.encode("cp1251", errors="xmlcharrefreplace")


UKRNET_TITLE = "Торгівля між Росією та Китаєм у 2023 році перевищила 200 млрд доларів — New York Times"


def test_windows_1251_declared_in_xml_beats_a_wrong_header():
    items, info = parse_feed_entries(_windows_1251(True), {"name": "u", "url": "https://u.test/", "language": None},
                                     {"Content-Type": "text/xml; charset=utf-8"})
    assert info["charset"] == "cp1251" and items[0]["title"] == UKRNET_TITLE
    assert "mojibake" not in (info["error"] or "")


def test_windows_1251_read_with_a_wrong_latin1_header_is_flagged_as_mojibake():
    items, info = parse_feed_entries(_windows_1251(False), {"name": "u", "url": "https://u.test/", "language": None},
                                     {"Content-Type": "application/rss+xml; charset=ISO-8859-1"})
    assert info["charset"] == "iso8859-1" and items[0]["title"] != UKRNET_TITLE
    assert "mojibake" in info["error"] and "windows-1251" in info["error"].lower().replace("cp1251", "windows-1251")


def test_undeclared_windows_1251_is_recognized():
    items, info = parse_feed_entries(_windows_1251(False), {"name": "u", "url": "https://u.test/", "language": None},
                                     {"Content-Type": "application/rss+xml"})
    assert info["charset"] == "cp1251" and items[0]["title"] == UKRNET_TITLE


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "  JAVASCRIPT:void(0)"])
def test_a_script_or_data_link_is_never_the_article_url(url):
    from xml.sax.saxutils import escape

    body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
            f'<title>x</title><link>{escape(url)}</link><guid isPermaLink="false">g-1</guid>'
            f'<description>text</description></item></channel></rss>').encode()
    items, _ = parse_feed_entries(body, {"name": "h", "url": "https://h.test/feed", "language": None})
    assert items[0]["url"] is None and items[0]["guid"] == "g-1"



def test_a_few_stray_bytes_do_not_change_the_declared_charset():
    body = (FEEDS / "jmb__bbc.xml").read_bytes().replace(b"<title>", b"<title>\xff", 3)
    items, info = parse_feed_entries(body, {"name": "b", "url": "https://b.test/", "language": None})
    assert info["charset"] == "utf-8" and "3 byte sequence(s) invalid in the declared UTF-8" in info["error"]
    assert items[0]["url"] == "https://www.bbc.co.uk/news/uk-48201625"  # from expected.json, the rest is intact


def test_real_feeds_through_the_whole_pipeline(tmp_path):
    """The real CLI pipeline (fetch -> parse -> normalize -> dedup -> language -> topics -> Parquet) over
    four real feeds plus the Ukrainian one re-encoded as windows-1251 and served as ISO-8859-1; DuckDB
    reads the new columns back. Expected values from expected.json / written by hand from the raw XML."""
    import duckdb
    import yaml
    from conftest import FIXED_NOW, make_settings

    from pipeline.launch import run_once

    names = ["jmb__nytimes.xml", "jmb__cnn.xml", "rssparser__uolNoticias.rss", "feeder__rss_lemonde.xml"]
    with FeedServer() as running:
        for name in names:
            running.routes[f"/{name}"] = static((FEEDS / name).read_bytes())
        running.routes["/ukr1251"] = static(_windows_1251(False), "application/rss+xml; charset=ISO-8859-1")
        feeds_file = tmp_path / "feeds.yaml"
        feeds_file.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": name, "url": running.url(f"/{name}")} for name in [*names, "ukr1251"]]}))
        output = tmp_path / "out"
        settings = make_settings(output, feeds_file=str(feeds_file), feeds={
            "timeout_connect": 2, "timeout_total": 10, "max_bytes": 5_000_000, "max_redirects": 2,
            "backoff_base_seconds": 60, "backoff_max_seconds": 3600, "user_agent": "newsbeam-test/1"})
        manifest = run_once(settings, now=FIXED_NOW)
    assert manifest["counters"]["balanced"]
    con = duckdb.connect()
    for table in ("articles", "feed_status"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{output}/{table}/**/*.parquet', "
                    "hive_partitioning=true, union_by_name=true)")
    nyt = con.execute("SELECT canonical_url, body, body_source, declared_language, date_source, date_warning "
                      "FROM articles WHERE guid = 'https://www.nytimes.com/2019/12/31/world/middleeast/"
                      "baghdad-protesters-us-embassy.html'").fetchall()
    assert nyt == [("https://www.nytimes.com/2019/12/31/world/middleeast/baghdad-protesters-us-embassy.html",
                    "President Trump blamed Iran after demonstrators breached the compound’s outer wall. Tensions "
                    "are high after American airstrikes killed members of an Iran-backed militia.",
                    "description", "en", "entry:published", None)]
    ad = con.execute("SELECT date_source, date_warning, published_at FROM articles "
                     "WHERE url LIKE 'https://ck.lendingtree.com/%'").fetchall()
    assert ad[0][0] == "feed:published" and "feed's date" in ad[0][1]
    assert ad[0][2] == dt.datetime(2019, 12, 25, 2, 20, 31, tzinfo=UTC)
    uol = con.execute("SELECT published_at, date_warning FROM articles WHERE url = 'https://noticias.uol.com.br/"
                      "politica/eleicoes/2018/noticias/2018/09/24/ibope-bolsonaro-perde-de-haddad-ciro-e-alckmin-"
                      "em-simulacoes-de-2-turno.htm'").fetchall()
    assert uol == [(dt.datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC), None)]
    assert con.execute("SELECT count(*) FROM articles WHERE date_source = 'ingested'").fetchone()[0] == 0
    status = dict(con.execute("SELECT feed, error FROM feed_status").fetchall())
    assert "mojibake" in status["ukr1251"] and "charset: no charset declared" in status["rssparser__uolNoticias.rss"]
