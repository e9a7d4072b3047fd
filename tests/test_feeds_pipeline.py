"""Feeds end to end: real Beam runs (FnApiRunner) fetching from a real HTTP server on 127.0.0.1,
checked with DuckDB over the Parquet output. Every fixture feed ends as articles, a recorded
failure or a dead letter; the run never crashes and its counters balance."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import duckdb
import pytest
import yaml
from conftest import FIXED_NOW, make_settings
from feeds_server import (
    FeedServer,
    Response,
    fixture,
    redirect,
    rss,
    static,
    with_validators,
)

from pipeline.cli import main as cli_main
from pipeline.config import ConfigError
from pipeline.launch import run_once
from transforms.feed_state import load_state

TEST_FETCH = {"timeout_connect": 1, "timeout_total": 1.5, "max_bytes": 100_000, "max_redirects": 3,
              "backoff_base_seconds": 60, "backoff_max_seconds": 3600,
              "user_agent": "newsbeam-test/1 (+https://example.org/newsbeam)",
              "full_text": False}  # the test items link to hosts this machine cannot reach

FIXTURES = {
    "rss20": "rss20.xml", "rss10": "rss10.xml", "atom": "atom.xml", "bozo": "bozo.xml", "empty": "empty.xml",
    "cp1252": "cp1252.xml", "latin1": "latin1.xml", "laughs": "billion_laughs.xml",
}


def write_feeds_file(path: pathlib.Path, server: FeedServer, names, **top) -> str:
    data = {"allow_private_networks": True, **top,
            "feeds": [{"name": name, "url": server.url(f"/{name}")} for name in names]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def query(output, sql: str):
    con = duckdb.connect()
    for table in ("articles", "feed_status", "errors", "duplicates"):
        files = list(pathlib.Path(output, table).rglob("*.parquet"))
        if files:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{output}/{table}/**/*.parquet', "
                        "hive_partitioning=true, union_by_name=true)")
    return con.execute(sql).fetchall()


@pytest.fixture
def server(tmp_path):
    with FeedServer() as running:
        for name, file in FIXTURES.items():
            running.routes[f"/{name}"] = static(fixture(file))
        running.routes["/gzip"] = static(rss("Compressed", [
            {"guid": "gz-1", "title": "Central bank holds interest rates", "link": "https://gz.example.org/rates",
             "description": "The central bank left its key interest rate unchanged on Thursday."},
            {"guid": "gz-2", "title": "Wildfires spread in the south", "link": "https://gz.example.org/fires",
             "description": "Firefighters battled wildfires that spread across three southern provinces."},
        ]), gzip=True)
        running.routes["/validators"] = with_validators(rss("Validated", [
            {"guid": "v-1", "title": "Parliament debates new climate law", "link": "https://v.example.org/climate",
             "description": "Members of parliament debated the proposed climate law for six hours."},
            {"guid": "v-2", "title": "Rail strike ends after two days", "link": "https://v.example.org/rail",
             "description": "Train drivers returned to work after the union reached a wage deal."},
        ]), '"abc"', "Fri, 09 Jan 2026 14:00:00 GMT")
        running.routes["/broken"] = lambda request: Response(500, b"internal error")
        running.routes["/busy"] = lambda request: Response(429, b"too many", {"Retry-After": "900"})
        running.routes["/slow"] = static(fixture("atom.xml"), delay=TEST_FETCH["timeout_total"] + 1)
        running.routes["/huge"] = static(b"<rss>" + b"x" * 200_000 + b"</rss>")
        running.routes["/loop"] = redirect("/loop2")
        running.routes["/loop2"] = redirect("/loop")
        running.routes["/metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET-MARKER-4711")
        running.routes["/xxe"] = static(
            f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">\n]>\n'
            '<rss version="2.0"><channel><title>x</title><item><title>Leak &xxe;</title>'
            '<link>https://xxe.example/1</link><description>Secret: &xxe;</description></item></channel>'
            '</rss>'.encode())
        yield running


ALL = ["rss20", "rss10", "atom", "bozo", "empty", "cp1252", "latin1", "laughs", "gzip", "validators", "broken",
       "busy", "slow", "huge", "loop", "metadata", "xxe"]


def test_every_feed_ends_as_articles_failure_or_dead_letter(tmp_path, server):
    output = tmp_path / "out"
    feeds_file = write_feeds_file(tmp_path / "feeds.yaml", server, ALL)
    settings = make_settings(output, feeds_file=feeds_file, feeds=TEST_FETCH)
    manifest = run_once(settings, now=FIXED_NOW)
    counters = manifest["counters"]
    assert counters["balanced"] and manifest["run_id"].startswith("feeds-")
    status = dict(query(output, "SELECT feed, outcome FROM feed_status"))
    assert status == {
        "rss20": "ok", "rss10": "ok", "atom": "ok", "bozo": "ok", "empty": "dead_letter", "cp1252": "ok",
        "latin1": "ok", "laughs": "ok", "gzip": "ok", "validators": "ok", "broken": "failed", "busy": "failed",
        "slow": "failed", "huge": "failed", "loop": "failed", "metadata": "failed", "xxe": "ok"}
    errors = dict(query(output, "SELECT feed, error FROM feed_status WHERE outcome = 'failed'"))
    assert errors["broken"].startswith("http: HTTP 500") and errors["busy"].startswith("http: HTTP 429")
    assert errors["slow"].startswith("timeout") and errors["huge"].startswith("too_large")
    assert errors["loop"].startswith("redirect_loop") and errors["metadata"].startswith("blocked_address")
    assert dict(query(output, "SELECT feed, http_status FROM feed_status WHERE feed IN ('broken', 'busy')")) == \
        {"broken": 500, "busy": 429}
    bozo_reason = query(output, "SELECT error FROM feed_status WHERE feed = 'bozo'")[0][0]
    assert bozo_reason.startswith("bozo:")

    per_feed = dict(query(output, "SELECT source, count(*) FROM articles GROUP BY source"))
    assert per_feed == {"rss20": 2, "rss10": 2, "atom": 2, "bozo": 2, "cp1252": 1, "latin1": 1, "laughs": 1,
                        "gzip": 2, "validators": 2, "xxe": 1}
    new_articles = dict(query(output, "SELECT feed, new_articles FROM feed_status WHERE outcome = 'ok'"))
    assert new_articles == per_feed
    # inputs = one per entry + one per dead-lettered feed
    assert counters["inputs"] == sum(per_feed.values()) + 1
    assert counters["articles"] + counters["duplicates"] + counters["dead_letters"] == counters["inputs"]
    dead = query(output, "SELECT source, stage, error, raw FROM errors")
    assert [(d[0], d[1]) for d in dead] == [("empty", "feed_parse")] and dead[0][3] == fixture("empty.xml")

    row = query(output, "SELECT canonical_url, guid, title, author, categories, published_at, date_source, "
                        "declared_language, source, origin FROM articles WHERE guid = 'ex-1001'")[0]
    assert row[0] == "https://news.example.org/world/nato-Spending?id=7" and row[2].startswith("NATO ministers")
    assert row[3] == "Jane Reporter" and row[4] == ["Politics", "Europe"]
    assert row[5] == dt.datetime(2026, 1, 6, 8, 30, tzinfo=dt.timezone.utc) and row[6] == "entry:published"
    assert row[7] == "en" and row[8] == "rss20" and row[9] == server.url("/rss20")
    titles = {t for (t,) in query(output, "SELECT title FROM articles")}
    assert "Müller trifft Minister – Gespräche in Köln" in titles
    assert "L'hôpital de Genève ouvre un centre" in titles
    text = json.dumps(query(output, "SELECT title, body, summary FROM articles"), default=str)
    assert "TOP-SECRET-MARKER" not in text and "lollollol" not in text

    # State committed under the output, after the files; validators and failures remembered.
    state = load_state(str(output), server.url("/validators"))
    assert state["etag"] == '"abc"' and state["last_modified"] == "Fri, 09 Jan 2026 14:00:00 GMT"
    assert load_state(str(output), server.url("/broken"))["consecutive_failures"] == 1
    assert manifest["feeds"]["outcomes"]["ok"] == 10 and manifest["feeds"]["count"] == len(ALL)
    assert not list((output / "_state" / "feeds" / "_pending").rglob("*.json"))

    # Second run 30 s later: 304, unchanged bodies (no parsing), feeds in backoff not requested.
    before = {path: len(server.requests_to(f"/{path}")) for path in ("broken", "busy", "validators")}
    second = run_once(make_settings(output, feeds_file=feeds_file, feeds=TEST_FETCH),
                      now=FIXED_NOW + dt.timedelta(seconds=30))
    assert second["counters"]["balanced"] and second["run_id"] != manifest["run_id"]
    rows = query(output, f"SELECT feed, outcome, entries_seen, new_articles, consecutive_failures "
                         f"FROM feed_status WHERE run_id = '{second['run_id']}'")
    outcome = {r[0]: r[1] for r in rows}
    assert outcome["validators"] == "not_modified"
    assert server.requests_to("/validators")[-1]["If-None-Match"] == '"abc"'
    for name in ("rss20", "rss10", "atom", "gzip", "empty"):
        assert outcome[name] == "unchanged", name
    assert outcome["broken"] == outcome["busy"] == "skipped_backoff"
    assert len(server.requests_to("/broken")) == before["broken"] and len(server.requests_to("/busy")) == before["busy"]
    assert all(r[2] == 0 and r[3] == 0 for r in rows if r[1] != "failed")
    assert second["counters"]["inputs"] == 0 and second["counters"]["articles"] == 0
    assert query(output, "SELECT count(*) FROM articles")[0][0] == sum(per_feed.values())


def test_private_addresses_blocked_by_default(tmp_path, server):
    output = tmp_path / "out"
    feeds_file = write_feeds_file(tmp_path / "feeds.yaml", server, ["rss20", "metadata"],
                                  allow_private_networks=False)
    manifest = run_once(make_settings(output, feeds_file=feeds_file, feeds=TEST_FETCH), now=FIXED_NOW)
    assert manifest["counters"]["balanced"] and manifest["counters"]["inputs"] == 0
    rows = query(output, "SELECT feed, outcome, error FROM feed_status ORDER BY feed")
    assert [(r[0], r[1]) for r in rows] == [("metadata", "failed"), ("rss20", "failed")]
    assert all(r[2].startswith("blocked_address") and "127.0.0.1" in r[2] for r in rows)
    assert server.requests == []  # nothing was contacted


def test_files_and_feeds_in_one_run(tmp_path, server, seeds_glob):
    output = tmp_path / "out"
    feeds_file = write_feeds_file(tmp_path / "feeds.yaml", server, ["atom"])
    manifest = run_once(make_settings(output, [seeds_glob], feeds_file=feeds_file, feeds=TEST_FETCH),
                        now=FIXED_NOW)
    assert manifest["counters"]["balanced"]
    sources = dict(query(output, "SELECT source, count(*) FROM articles GROUP BY source"))
    assert sources["atom"] == 2 and sources["files"] >= 1


def test_cli_run_feeds(tmp_path, server, capsys):
    output = tmp_path / "out"
    feeds_file = write_feeds_file(tmp_path / "feeds.yaml", server, ["rss20", "broken"])
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"extends": "local", "feeds": TEST_FETCH}))
    code = cli_main(["run", "--profile", str(profile), "--feeds", feeds_file, "--output", str(output), "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert code == 0 and manifest["counters"]["articles"] == 2
    assert manifest["feeds"]["outcomes"]["failed"] == 1 and manifest["feeds_file"] == feeds_file
    # The human summary names the feed outcomes too.
    assert cli_main(["run", "--profile", str(profile), "--feeds", feeds_file, "--output", str(output)]) == 0
    summary = capsys.readouterr().out
    assert "feeds: " in summary and "skipped_backoff=1" in summary  # the broken feed now backs off
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - name: x\n    url: gopher://x\n")
    assert cli_main(["run", "--feeds", str(bad), "--output", str(output)]) == 2
    assert "feeds[0].url: expected an http" in capsys.readouterr().err


def test_feeds_file_checked_before_the_run(tmp_path):
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds: {}\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        run_once(make_settings(tmp_path / "out", feeds_file=str(bad), feeds=TEST_FETCH))
    assert not (tmp_path / "out").exists()


def test_state_staged_by_a_crashed_run_is_not_used(tmp_path, server):
    """A run that dies before its commit leaves staged state; it never becomes the feed's state."""
    import json as _json

    from transforms.commit import staging_root
    from transforms.feed_state import pending_dir, state_key
    from transforms.write import join

    output = tmp_path / "out"
    feeds_file = write_feeds_file(tmp_path / "feeds.yaml", server, ["rss20"])
    crashed = join(pending_dir(staging_root(str(output), "feeds-crashed")), f"{state_key(server.url('/rss20'))}.json")
    pathlib.Path(crashed).parent.mkdir(parents=True)
    pathlib.Path(crashed).write_text(_json.dumps({"url": server.url("/rss20"), "body_hash": "x",
                                                  "consecutive_failures": 9, "next_attempt_at": None}))
    assert load_state(str(output), server.url("/rss20")) is None
    manifest = run_once(make_settings(output, feeds_file=feeds_file, feeds=TEST_FETCH), now=FIXED_NOW)
    assert manifest["counters"]["articles"] == 2  # fetched and parsed: the staged hash was ignored
    assert load_state(str(output), server.url("/rss20"))["consecutive_failures"] == 0
    assert not pathlib.Path(crashed).exists()
