"""The stream command end to end: PeriodicImpulse polls a real feed server on 127.0.0.1.

The in-process DirectRunner runs the streaming graph as a bounded job
(``--duration``), so this checks the wiring (impulse -> per-feed keyed state
-> fetch -> parse -> dedup -> windows -> Parquet), not real-time firing; the
firing semantics are covered with TestStream in test_streaming.py.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.server
import threading

import duckdb
import pytest

from conftest import make_settings
from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.streaming import run_stream

STORIES = [
    "The regional parliament passed a new law on public transport fares after a heated debate on Tuesday.",
    "Farmers reported a record harvest of apples this autumn thanks to a warm spring and a rainy summer.",
    "The national orchestra opened its season with a concert of symphonies by composers from the north.",
    "Engineers finished the repairs on the old railway bridge two weeks earlier than the city had planned.",
    "A local school won the national science competition with a project about cleaning water with sand.",
    "The harbour authority announced longer opening hours for the ferry terminal during the holidays.",
]


class GrowingFeed(http.server.BaseHTTPRequestHandler):
    """Request n (from 1) lists stories 1..n: each poll repeats the old entries and adds one."""

    served: list[int] = []
    published = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)

    def do_GET(self):  # noqa: N802
        n = min(len(self.served) + 1, len(STORIES))
        self.served.append(n)
        items = "".join(
            f"<item><title>Story {i}</title><link>http://news.test/story/{i}</link><guid>story-{i}</guid>"
            f"<pubDate>{email.utils.format_datetime(self.published + dt.timedelta(minutes=i))}</pubDate>"
            f"<description>{STORIES[i - 1]}</description></item>"
            for i in range(1, n + 1))
        body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Test</title>'
                f"<link>http://news.test/</link><description>t</description>{items}</channel></rss>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server():
    GrowingFeed.served = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GrowingFeed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


def feeds_file(tmp_path, url: str) -> str:
    path = tmp_path / "feeds.yaml"
    path.write_text(f"allow_private_networks: true\nfeeds:\n  - name: growing\n    url: {url}\n    language: en\n")
    return str(path)


def count(output, table: str) -> int:
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{output}/{table}/**/*.parquet')").fetchone()[0]


def test_bounded_stream_polls_dedups_and_writes(tmp_path, feed_server):
    output = tmp_path / "out"
    settings = make_settings(output, feeds_file=feeds_file(tmp_path, feed_server),
                             stream={"poll_interval_seconds": 1}, run_id="stream-e2e")
    info = run_stream(settings, duration_seconds=2.5)
    assert info["runner"] == "FnApiRunner (DirectRunner, in_memory, 1 worker)"
    polls = list(GrowingFeed.served)
    assert len(polls) >= 2, polls  # the impulse really ticked more than once
    distinct = max(polls)
    served = sum(polls)
    assert count(output, "articles") == distinct
    assert count(output, "duplicates") == served - distinct  # every repeated entry, suppressed by keyed state
    assert count(output, "feed_status") == len(polls)
    titles = duckdb.sql(f"SELECT title FROM read_parquet('{output}/articles/**/*.parquet') ORDER BY 1").fetchall()
    assert [t for (t,) in titles] == [f"Story {i}" for i in range(1, distinct + 1)]


def test_direct_runner_refuses_an_unbounded_stream(tmp_path, feed_server):
    settings = make_settings(tmp_path, feeds_file=feeds_file(tmp_path, feed_server))
    with pytest.raises(ConfigError, match="--duration"):
        run_stream(settings)
    assert GrowingFeed.served == []  # refused before anything ran


def test_stream_command_without_duration_exits_with_a_clear_error(tmp_path, feed_server, capsys):
    code = main(["stream", "--feeds", feeds_file(tmp_path, feed_server), "--output", str(tmp_path / "o")])
    assert code == 2
    assert "cannot run an unbounded stream" in capsys.readouterr().err
