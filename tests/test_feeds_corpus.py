"""Robustness: every feed of feedparser's own test suite (../shared/corpora/feedparser-tests, ~700
well-formed and ill-formed RSS/Atom/RDF documents) served from 127.0.0.1 in one run. The run must
complete, balance its counters and account for every feed in feed_status. Skipped without ../shared."""

from __future__ import annotations

import duckdb
import pytest
import yaml
from conftest import FIXED_NOW, SHARED, make_settings
from feeds_server import FeedServer, Response

from pipeline.launch import run_once

CORPUS = SHARED / "corpora" / "feedparser-tests"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpora/feedparser-tests")

FETCH = {"timeout_connect": 2, "timeout_total": 10, "max_bytes": 5_000_000, "max_redirects": 3,
         "backoff_base_seconds": 60, "backoff_max_seconds": 3600, "user_agent": "newsbeam-test/1"}


def test_feedparser_corpus_every_feed_accounted_for(tmp_path):
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    with FeedServer() as server:
        for path in files:
            body = path.read_bytes()
            server.routes[f"/{path.name}"] = (
                lambda request, body=body: Response(200, body, {"Content-Type": "application/xml"}))
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"allow_private_networks": True, "feeds": [
            {"name": path.stem, "url": server.url(f"/{path.name}")} for path in files]}))
        output = tmp_path / "out"
        manifest = run_once(make_settings(output, feeds_file=str(feeds), feeds=FETCH), now=FIXED_NOW)

    counters = manifest["counters"]
    assert manifest["status"] == "committed" and counters["balanced"]
    con = duckdb.connect()
    rows = con.execute(f"SELECT outcome, count(*) FROM read_parquet('{output}/feed_status/**/*.parquet', "
                       "hive_partitioning=true) GROUP BY outcome ORDER BY outcome").fetchall()
    outcomes = dict(rows)
    assert sum(outcomes.values()) == len(files)  # one status row per feed
    assert set(outcomes) <= {"ok", "dead_letter", "failed"}
    feed_letters = con.execute(f"SELECT count(*) FROM read_parquet('{output}/errors/**/*.parquet', "
                               "hive_partitioning=true) WHERE stage = 'feed_parse'").fetchone()[0]
    assert feed_letters == outcomes.get("dead_letter", 0)
    assert counters["articles"] > 0 and outcomes["ok"] > len(files) // 2
    print(f"\nfeedparser corpus: {len(files)} feeds -> outcomes {outcomes}; inputs {counters['inputs']}, "
          f"articles {counters['articles']}, duplicates {counters['duplicates']}, "
          f"dead letters {counters['dead_letters']} ({feed_letters} whole feeds)")
