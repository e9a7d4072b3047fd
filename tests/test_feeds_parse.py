"""Feeds, parsing: RSS 2.0, RSS 1.0, Atom, bozo, empty, legacy encodings, entity bombs and XXE,
feeds.yaml validation."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from feeds_server import fixture

from pipeline.config import ConfigError
from pipeline.feeds_config import fetch_settings, load_feeds, validate_feeds
from transforms.common import RunInfo
from transforms.feeds import (
    HostileXML,
    defuse_xml,
    feed_to_outputs,
    html_to_text,
    parse_feed_entries,
)
from transforms.normalize import to_article

UTC = dt.timezone.utc
RUN = RunInfo("parse-test", dt.datetime(2026, 1, 12, 12, 0, tzinfo=UTC))


def feed(name="test", url="https://feeds.example.org/feed.xml", language=None):
    return {"name": name, "url": url, "language": language}


def test_rss20_entries_become_items_and_articles():
    items, info = parse_feed_entries(fixture("rss20.xml"), feed(), {"Content-Type": "application/rss+xml"})
    assert info["version"] == "rss20" and not info["bozo"] and info["entries_seen"] == 2
    first = items[0]
    assert first["guid"] == "ex-1001" and first["title"] == "NATO ministers agree on defence spending"
    assert first["summary"] == "Defence ministers met in Brussels on Tuesday.\n\nThey agreed to raise spending."
    assert "alert" not in first["body"] and "<" not in first["body"]
    assert first["published_at"] == dt.datetime(2026, 1, 6, 8, 30, tzinfo=UTC)  # +0100 -> UTC
    assert first["date_source"] == "entry:published" and first["date_precision"] == "second"
    assert first["author"] == "Jane Reporter" and first["categories"] == ["Politics", "Europe"]
    assert first["declared_language"] == "en"  # from <language>en-gb</language>
    assert first["source"] == "test" and first["origin"] == "https://feeds.example.org/feed.xml"
    article = to_article(first, RUN)
    assert article["canonical_url"] == "https://news.example.org/world/nato-Spending?id=7"
    assert article["url"].startswith("https://News.Example.org:443/")
    assert to_article(items[1], RUN)["canonical_url"] == "https://news.example.org/world/portugal-election"


def test_rss10_rdf():
    items, info = parse_feed_entries(fixture("rss10.xml"), feed(language="de"))
    assert info["version"] == "rss10" and len(items) == 2
    assert items[0]["title"] == "Bundestag beschließt Haushalt"
    assert items[0]["published_at"] == dt.datetime(2026, 1, 9, 13, 15, tzinfo=UTC)
    assert items[0]["declared_language"] == "de" and items[0]["guid"] == "https://rdf.example.de/a/1"


def test_atom_html_title_content_relative_link_and_feed_date():
    items, info = parse_feed_entries(fixture("atom.xml"), feed(url="https://atom.example.fr/feed"))
    assert info["version"] == "atom10" and len(items) == 2
    summit, strike = items
    assert summit["title"] == "Sommet de l'UE à Bruxelles"
    assert summit["body"] == ("Les dirigeants européens se réunissent à Bruxelles pour discuter du budget.\n\n"
                              "Budget\n\nDéfense")
    assert summit["url"] == "https://atom.example.fr/monde/sommet-ue"  # resolved against the feed URL
    assert summit["published_at"] == dt.datetime(2026, 1, 8, 7, 0, tzinfo=UTC)
    assert summit["author"] == "Marie Dupont" and summit["declared_language"] == "fr"
    # No date on the entry: the feed's own <updated> is used and said so.
    assert strike["published_at"] == dt.datetime(2026, 1, 8, 12, 0, tzinfo=UTC) and strike["date_source"] == "feed:updated"
    assert to_article(strike, RUN)["date_source"] == "feed:updated"


def test_bozo_feed_is_still_mined_and_the_reason_kept():
    items, info = parse_feed_entries(fixture("bozo.xml"), feed())
    assert info["bozo"] and "bozo:" in info["error"]
    assert [i["title"] for i in items] == ["Markets & trade talks resume", "Floods in the north"]
    assert items[1]["body"] == "Heavy rain caused floods in several northern towns overnight."  # &nbsp; resolved


@pytest.mark.parametrize("name, title, body_part", [
    ("cp1252.xml", "Müller trifft Minister – Gespräche in Köln", "„verliefen gut“"),
    ("latin1.xml", "L'hôpital de Genève ouvre un centre", "dès janvier, a déclaré"),
])
def test_legacy_encodings_declared_in_xml(name, title, body_part):
    items, _ = parse_feed_entries(fixture(name), feed(), {"Content-Type": "application/rss+xml"})
    assert items[0]["title"] == title and body_part in items[0]["body"]


def test_future_dates_are_flagged():
    body = fixture("rss20.xml").replace(b"Tue, 06 Jan 2026 09:30:00 +0100", b"Fri, 01 Jan 2027 00:00:00 GMT")
    items, _ = parse_feed_entries(body, feed())
    article = to_article(items[0], RUN, future_tolerance_minutes=10)
    assert article["date_in_future"] is True
    assert to_article(items[1], RUN, future_tolerance_minutes=10)["date_in_future"] is False


def fetched(body: bytes, name="f") -> dict:
    return {"feed": name, "url": f"https://{name}.example.org/rss", "language": None, "outcome": "ok",
            "body": body, "headers": {"content-type": "application/rss+xml"}, "final_url": None,
            "http_status": 200, "error": None, "bytes": len(body), "latency_ms": 1.0, "fetched_at": RUN.ingested_at,
            "state": {"consecutive_failures": 0, "etag": '"e"', "next_attempt_at": None}}


def test_feed_without_entries_is_one_dead_letter_with_the_raw_body():
    items, letter, status = feed_to_outputs(fetched(fixture("empty.xml"), "empty"), RUN, payload_cap=100)
    assert items == [] and letter["stage"] == "feed_parse" and "no usable entry" in letter["error"]
    assert letter["raw"] == fixture("empty.xml")[:100] and letter["raw_size"] == len(fixture("empty.xml"))
    assert status["outcome"] == "dead_letter" and status["entries_seen"] == 0 and status["etag"] == '"e"'
    garbage = fetched(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "garbage")
    items, letter, status = feed_to_outputs(garbage, RUN, payload_cap=64)
    assert not items and letter is not None and status["outcome"] == "dead_letter"


def test_good_feed_status_row():
    items, letter, status = feed_to_outputs(fetched(fixture("rss20.xml")), RUN, payload_cap=1000)
    assert len(items) == 2 and letter is None
    assert (status["outcome"], status["entries_seen"], status["new_articles"]) == ("ok", 2, 2)
    not_modified = dict(fetched(b""), outcome="not_modified", body=None, http_status=304)
    assert feed_to_outputs(not_modified, RUN, 1000)[2]["outcome"] == "not_modified"


def test_billion_laughs_is_not_expanded():
    started = time.monotonic()
    items, info = parse_feed_entries(fixture("billion_laughs.xml"), feed())
    assert time.monotonic() - started < 5  # generous: expanding would take minutes and gigabytes
    assert len(items) == 1 and "lol" * 10 not in items[0]["title"] + items[0]["body"]
    assert "DTD internal subset removed" in info["error"]


def test_quadratic_blowup_is_not_expanded():
    """feedparser alone keeps this 'safe' text entity and its fallback parser expands every reference
    (measured: 1 GB of summary and 3 GB of memory from a 110 kB feed)."""
    body = (b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + b"A" * 50_000 + b'">\n]>\n'
            b'<rss version="2.0"><channel><title>q</title><item><title>quadratic</title><description>'
            + b"&a;" * 20_000 + b"</description></item></channel></rss>")
    items, info = parse_feed_entries(body, feed())
    assert len(items) == 1 and len(items[0]["body"]) <= len(body)
    assert "DTD internal subset removed" in info["error"]


def test_xxe_does_not_read_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER-4711")
    for body in (
        (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">\n]>\n'
         '<rss version="2.0"><channel><title>x</title><item><title>Leak &xxe;</title>'
         '<link>https://x.example/1</link><description>d &xxe;</description></item></channel></rss>'),
        (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
         '<rss version="2.0"><channel><title>x</title><item><title>Param</title>'
         '<link>https://x.example/2</link></item></channel></rss>'),
        (f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "file://{secret}">'
         '<rss version="2.0"><channel><title>x</title><item><title>External DTD</title>'
         '<link>https://x.example/3</link></item></channel></rss>'),
    ):
        items, letter, status = feed_to_outputs(fetched(body.encode()), RUN, payload_cap=10_000)
        produced = repr(items) + repr(status)
        assert "TOP-SECRET-MARKER" not in produced
        assert items or letter is not None


def test_defuse_refuses_entities_it_cannot_remove():
    # An entity value holding markup cuts the prolog where feedparser would: refused, not parsed.
    body = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "<b>x</b>">]><rss>&e;</rss>'
    with pytest.raises(HostileXML):
        defuse_xml(body)
    plain = fixture("rss20.xml")
    assert defuse_xml(plain) == (plain, None)


def test_html_to_text():
    assert html_to_text("<p>One &amp; two</p><p>Three<br>four</p>") == "One & two\n\nThree\nfour"
    assert html_to_text("<style>p{}</style><script>x()</script>Text") == "Text"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text(None) == ""


def test_starter_feeds_file_is_valid():
    config = load_feeds("configs/feeds.yaml")
    assert len(config.feeds) >= 30 and not config.policy.allow_private_networks
    assert {f["language"] for f in config.feeds} == {"de", "en", "fr"}
    settings = fetch_settings({"timeout_connect": 5, "timeout_total": 10, "max_bytes": 10, "max_redirects": 2,
                               "user_agent": "ua", "backoff_base_seconds": 1, "backoff_max_seconds": 2}, config)
    assert settings.timeout_total == 30 and settings.max_redirects == 5  # the feeds file's fetch: wins


@pytest.mark.parametrize("data, message", [
    ({}, "feeds: missing"),
    ({"feeds": []}, "non-empty list"),
    ({"feeds": [{"url": "https://a.example/rss"}]}, "missing 'name'"),
    ({"feeds": [{"name": "a", "url": "ftp://a.example/rss"}]}, "feeds[0].url: expected an http"),
    ({"feeds": [{"name": "a", "url": "https://a.example/rss", "language": "german"}]}, "two-letter"),
    ({"feeds": [{"name": "a", "url": "https://a.example/1"}, {"name": "a", "url": "https://a.example/2"}]},
     "duplicate feed name"),
    ({"feeds": [{"name": "a", "url": "https://a.example/1", "colour": "red"}]}, "unknown key(s) ['colour']"),
    ({"allow_private_networks": "yes", "feeds": [{"name": "a", "url": "https://a.example/1"}]}, "true or false"),
    ({"allow_networks": ["localhost"], "feeds": [{"name": "a", "url": "https://a.example/1"}]}, "allow_networks[0]"),
    ({"fetch": {"timeout_total": -1}, "feeds": [{"name": "a", "url": "https://a.example/1"}]}, "fetch.timeout_total"),
])
def test_feeds_file_errors_are_clear(data, message):
    with pytest.raises(ConfigError) as err:
        validate_feeds(data, "feeds.yaml")
    assert message in str(err.value) and "feeds.yaml" in str(err.value)


def test_missing_fetch_settings_name_the_profile_section():
    config = validate_feeds({"feeds": [{"name": "a", "url": "https://a.example/1"}]}, "f.yaml")
    with pytest.raises(ConfigError, match="timeout_connect: missing; set it in the run profile"):
        fetch_settings({}, config)
