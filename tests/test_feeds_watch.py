"""``watch --max-polls 3`` against a local feed that gains entries between polls: each entry is
written exactly once (cross-run dedup index), an unchanged feed is not parsed again, a feed with
validators answers 304, and every poll is its own committed run with one log line."""

from __future__ import annotations

import pathlib
import re

import duckdb
import yaml
from conftest import make_settings
from feeds_server import FeedServer, Response, rss

from pipeline.cli import main as cli_main
from pipeline.commands.watch import watch

TEST_FETCH = {"timeout_connect": 1, "timeout_total": 3, "max_bytes": 100_000, "max_redirects": 3,
              "backoff_base_seconds": 60, "backoff_max_seconds": 3600, "user_agent": "newsbeam-test/1",
              "full_text": False}  # the test items link to hosts this machine cannot reach

STORIES = [
    {"guid": "w-1", "title": "Coalition agrees on budget", "link": "https://w.example.org/budget",
     "description": "The governing coalition agreed on next year's budget after long talks.",
     "pubDate": "Mon, 05 Jan 2026 08:00:00 GMT"},
    {"guid": "w-2", "title": "Storm closes airports", "link": "https://w.example.org/storm",
     "description": "A winter storm closed three airports and cancelled hundreds of flights.",
     "pubDate": "Mon, 05 Jan 2026 09:00:00 GMT"},
    {"guid": "w-3", "title": "Chess champion defends title", "link": "https://w.example.org/chess",
     "description": "The world chess champion defended the title in a tense final game.",
     "pubDate": "Tue, 06 Jan 2026 10:00:00 GMT"},
    {"guid": "w-4", "title": "Museum returns looted bronzes", "link": "https://w.example.org/bronzes",
     "description": "The museum handed back bronzes taken during the colonial period.",
     "pubDate": "Tue, 06 Jan 2026 11:00:00 GMT"},
]
NEWS = [
    {"guid": "n-1", "title": "Central bank raises rates", "link": "https://n.example.org/rates",
     "description": "The central bank raised its key rate by a quarter point to fight inflation."},
    {"guid": "n-2", "title": "Vaccine approved for children", "link": "https://n.example.org/vaccine",
     "description": "Regulators approved the vaccine for children aged five to eleven."},
]


class GrowingFeed:
    """Poll 1: two stories; poll 2: the same body; poll 3: four stories, the old ones with a tracking
    parameter added to their links (same canonical URL, same GUID)."""

    def __init__(self):
        self.polls = 0

    def __call__(self, request):
        self.polls += 1
        if self.polls < 3:
            body = rss("Growing", STORIES[:2])
        else:
            old = [dict(s, link=s["link"] + "?utm_source=rss") for s in STORIES[:2]]
            body = rss("Growing", STORIES[2:] + old)
        return Response(200, body, {"Content-Type": "application/rss+xml"})


def validated(request):
    if request.headers.get("If-None-Match") == '"n1"':
        return Response(304, b"", {"ETag": '"n1"'})
    return Response(200, rss("Validated", NEWS), {"Content-Type": "application/rss+xml", "ETag": '"n1"'})


def test_watch_three_polls_writes_each_entry_once(tmp_path, capsys):
    output = tmp_path / "out"
    with FeedServer() as server:
        growing = GrowingFeed()
        server.routes["/growing"] = growing
        server.routes["/validated"] = validated
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": "growing", "url": server.url("/growing"), "language": "en"},
            {"name": "validated", "url": server.url("/validated")}]}))
        profile = tmp_path / "profile.yaml"
        profile.write_text(yaml.safe_dump({"extends": "local", "feeds": TEST_FETCH}))
        code = cli_main(["watch", "--profile", str(profile), "--feeds", str(feeds), "--output", str(output),
                         "--interval", "0", "--max-polls", "3"])
        assert code == 0 and growing.polls == 3
        assert server.requests_to("/validated")[1]["If-None-Match"] == '"n1"'

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("poll ")]
    assert len(lines) == 3
    assert re.match(r"poll 1 run poll-\d{8}T\d{6}-\d{6}: feeds 2 ok, 0 not modified, 0 unchanged, 0 failed, "
                    r"0 backing off, 0 dead letter; new articles 4,", lines[0]), lines[0]
    assert "feeds 0 ok, 1 not modified, 1 unchanged" in lines[1] and "new articles 0," in lines[1]
    assert "feeds 1 ok, 1 not modified, 0 unchanged" in lines[2] and "new articles 2," in lines[2]
    assert "duplicates 2" in lines[2]

    con = duckdb.connect()
    articles = con.execute(f"SELECT guid, run_id FROM read_parquet('{output}/articles/**/*.parquet', "
                           "hive_partitioning=true) ORDER BY guid").fetchall()
    assert [g for g, _ in articles] == ["n-1", "n-2", "w-1", "w-2", "w-3", "w-4"]  # each exactly once
    runs = sorted({r for _, r in articles})
    assert len(runs) == 2 and all(r.startswith("poll-") for r in runs)

    status = con.execute(f"SELECT run_id, feed, outcome, entries_seen, new_articles FROM read_parquet("
                         f"'{output}/feed_status/**/*.parquet', hive_partitioning=true) ORDER BY run_id, feed"
                         ).fetchall()
    assert [(s[1], s[2], s[3], s[4]) for s in status] == [
        ("growing", "ok", 2, 2), ("validated", "ok", 2, 2),
        ("growing", "unchanged", 0, 0), ("validated", "not_modified", 0, 0),   # poll 2: no parsing
        ("growing", "ok", 4, 4), ("validated", "not_modified", 0, 0),
    ]
    assert len({s[0] for s in status}) == 3
    assert len(list(pathlib.Path(output, "_runs").glob("poll-*.json"))) == 3


def test_ctrl_c_stops_cleanly(tmp_path):
    with FeedServer() as server:
        server.routes["/growing"] = GrowingFeed()
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": "growing", "url": server.url("/growing")}]}))
        settings = make_settings(tmp_path / "out", feeds_file=str(feeds), feeds=TEST_FETCH)
        lines = []

        class Out:
            def write(self, text):
                lines.append(text)

            def flush(self):
                pass

        def interrupted_sleep(seconds):
            raise KeyboardInterrupt

        manifests = watch(settings, interval=300, max_polls=None, out=Out(), sleep=interrupted_sleep)
    assert len(manifests) == 1 and manifests[0]["status"] == "committed"
    assert any("stopped by Ctrl-C after 1 finished poll" in line for line in lines)


def test_watch_compacts_the_months_a_poll_wrote(tmp_path, capsys):
    """With ``write.compact_min_files: 2`` the third poll's second small file in January 2026 triggers a
    compaction after that poll's commit: one file left in the month, every article still there once."""
    from faults import check

    output = tmp_path / "out"
    with FeedServer() as server:
        growing = GrowingFeed()
        server.routes["/growing"] = growing
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": "growing", "url": server.url("/growing"), "language": "en"}]}))
        profile = tmp_path / "profile.yaml"
        profile.write_text(yaml.safe_dump({"extends": "local", "feeds": TEST_FETCH, "write": {"compact_min_files": 2}}))
        code = cli_main(["watch", "--profile", str(profile), "--feeds", str(feeds), "--output", str(output),
                         "--interval", "0", "--max-polls", "3"])
        assert code == 0 and growing.polls == 3
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("poll ")]
    assert "compacted" not in lines[0] + lines[1]
    assert re.search(r"; compacted 2 small files into 1 \(run compact-", lines[2]), lines[2]
    month = sorted(pathlib.Path(output, "articles", "published_month=2026-01").glob("*.parquet"))
    assert len(month) == 1
    checked = check(str(output))
    assert checked["problems"] == [] and checked["articles"] == 4
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT guid) FROM read_parquet('{output}/articles/**/*.parquet')"
                      ).fetchone() == (4, 4)
