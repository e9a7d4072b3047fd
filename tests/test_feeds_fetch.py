"""Feeds, fetching: the pure core against a real HTTP server on 127.0.0.1.

Conditional GET and 304, body-hash skip, 500, 429 with Retry-After, timeout,
body size limit, redirect loop, redirects to refused addresses, gzip, backoff,
and the SSRF policy (address vetting, pinning to the vetted IP).
"""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from feeds_server import (
    FeedServer,
    Response,
    fixture,
    redirect,
    static,
    with_validators,
)

from transforms.fetch import (
    FetchError,
    FetchSettings,
    NetworkPolicy,
    backoff_seconds,
    empty_state,
    fetch_feed,
    http_get,
    make_client,
    parse_retry_after,
    resolve_vetted,
    vet_address,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
SETTINGS = FetchSettings(timeout_connect=1.0, timeout_total=1.5, max_bytes=100_000, max_redirects=3,
                         user_agent="newsbeam-test/1 (+https://example.org/newsbeam)",
                         backoff_base_seconds=60, backoff_max_seconds=3600)
OPEN = NetworkPolicy(allow_private_networks=True)
ONLY_LOCALHOST = NetworkPolicy(allow_private_networks=False, allow_networks=("127.0.0.1/32",))


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def client():
    with make_client(SETTINGS) as http:
        yield http


def fetch(client, server, path, state=None, policy=OPEN, now=NOW):
    feed = {"name": path.strip("/"), "url": server.url(path), "language": None}
    return fetch_feed(client, feed, state, SETTINGS, policy, now, "run-1")


def test_ok_sends_honest_user_agent_and_gzip(server, client):
    server.routes["/feed"] = static(fixture("rss20.xml"), gzip=True)
    result = fetch(client, server, "/feed")
    assert result["outcome"] == "ok" and result["http_status"] == 200
    assert result["body"] == fixture("rss20.xml")  # decoded from gzip
    sent = server.requests_to("/feed")[0]
    assert sent["User-Agent"] == SETTINGS.user_agent
    assert "gzip" in sent["Accept-Encoding"]
    assert sent["Host"] == f"127.0.0.1:{server.port}"
    assert result["state"]["body_hash"] and result["state"]["consecutive_failures"] == 0


def test_conditional_get_304_and_unchanged_body(server, client):
    server.routes["/v"] = with_validators(fixture("atom.xml"), '"v1"', "Tue, 06 Jan 2026 09:00:00 GMT")
    first = fetch(client, server, "/v")
    assert first["outcome"] == "ok"
    assert first["state"]["etag"] == '"v1"'
    assert first["state"]["last_modified"] == "Tue, 06 Jan 2026 09:00:00 GMT"
    second = fetch(client, server, "/v", state=first["state"])
    assert second["outcome"] == "not_modified" and second["http_status"] == 304 and second["body"] is None
    sent = server.requests_to("/v")[1]
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == "Tue, 06 Jan 2026 09:00:00 GMT"
    assert second["state"]["etag"] == '"v1"'  # validators survive a 304

    # A server without validators, same body twice: skipped by content hash.
    server.routes["/plain"] = static(fixture("atom.xml"))
    one = fetch(client, server, "/plain")
    two = fetch(client, server, "/plain", state=one["state"])
    assert (one["outcome"], two["outcome"]) == ("ok", "unchanged")
    assert two["body"] is None


def test_server_error_and_backoff_grow(server, client):
    server.routes["/broken"] = lambda request: Response(500, b"oops")
    first = fetch(client, server, "/broken")
    assert first["outcome"] == "failed" and first["http_status"] == 500 and "HTTP 500" in first["error"]
    assert first["state"]["consecutive_failures"] == 1
    assert dt.datetime.fromisoformat(first["state"]["next_attempt_at"]) == NOW + dt.timedelta(seconds=60)
    # Still backing off a minute later: no request is made.
    requests = len(server.requests)
    skipped = fetch(client, server, "/broken", state=first["state"], now=NOW + dt.timedelta(seconds=30))
    assert skipped["outcome"] == "skipped_backoff" and len(server.requests) == requests
    later = NOW + dt.timedelta(seconds=61)
    second = fetch(client, server, "/broken", state=first["state"], now=later)
    assert second["state"]["consecutive_failures"] == 2
    assert dt.datetime.fromisoformat(second["state"]["next_attempt_at"]) == later + dt.timedelta(seconds=120)
    # Recovery resets the count.
    server.routes["/broken"] = static(fixture("rss20.xml"))
    third = fetch(client, server, "/broken", state=second["state"], now=later + dt.timedelta(hours=1))
    assert third["outcome"] == "ok" and third["state"]["consecutive_failures"] == 0
    assert third["state"]["next_attempt_at"] is None


def test_429_retry_after_sets_the_next_attempt(server, client):
    server.routes["/busy"] = lambda request: Response(429, b"slow down", {"Retry-After": "900"})
    result = fetch(client, server, "/busy")
    assert result["outcome"] == "failed" and result["http_status"] == 429
    assert dt.datetime.fromisoformat(result["state"]["next_attempt_at"]) == NOW + dt.timedelta(seconds=900)


def test_slow_server_times_out(server, client):
    server.routes["/slow"] = static(fixture("rss20.xml"), delay=SETTINGS.timeout_total + 1)
    result = fetch(client, server, "/slow")
    assert result["outcome"] == "failed" and result["error"].startswith("timeout")
    assert result["latency_ms"] < (SETTINGS.timeout_total + 0.9) * 1000


def test_body_over_the_limit(server, client):
    big = b"<rss>" + b"x" * (SETTINGS.max_bytes + 10) + b"</rss>"
    server.routes["/big"] = static(big)
    server.routes["/big-gzip"] = static(big, gzip=True)  # small on the wire, too large decoded
    for path in ("/big", "/big-gzip"):
        result = fetch(client, server, path)
        assert result["outcome"] == "failed" and result["error"].startswith("too_large"), result


def test_redirects_followed_loop_and_limit(server, client):
    server.routes["/old"] = redirect("/new", 301)
    server.routes["/new"] = static(fixture("rss20.xml"))
    moved = fetch(client, server, "/old")
    assert moved["outcome"] == "ok" and moved["final_url"] == server.url("/new")

    server.routes["/loop-a"] = redirect("/loop-b")
    server.routes["/loop-b"] = redirect("/loop-a")
    loop = fetch(client, server, "/loop-a")
    assert loop["outcome"] == "failed" and loop["error"].startswith("redirect_loop")

    for i in range(6):
        server.routes[f"/hop{i}"] = redirect(f"/hop{i + 1}")
    chain = fetch(client, server, "/hop0")
    assert chain["outcome"] == "failed" and chain["error"].startswith("too_many_redirects")


def test_redirects_to_private_addresses_are_blocked(server, client):
    """127.0.0.1 is allowed explicitly; the redirect targets are refused, never contacted."""
    server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    server.routes["/to-private"] = redirect("http://10.1.2.3/feed")
    server.routes["/to-ipv6-loopback"] = redirect(f"http://[::1]:{server.port}/feed")
    server.routes["/to-file"] = redirect("file:///etc/passwd")
    server.routes["/feed"] = static(fixture("rss20.xml"))
    for path, kind in (("/to-metadata", "blocked_address"), ("/to-private", "blocked_address"),
                       ("/to-ipv6-loopback", "blocked_address"), ("/to-file", "bad_url")):
        result = fetch(client, server, path, policy=ONLY_LOCALHOST)
        assert result["outcome"] == "failed" and result["error"].startswith(kind), (path, result)
    assert not server.requests_to("/feed")
    # Without an exception for it, the loopback feed itself is refused before any request.
    before = len(server.requests)
    refused = fetch(client, server, "/feed", policy=NetworkPolicy())
    assert refused["error"].startswith("blocked_address") and len(server.requests) == before


def test_connection_refused_and_dns_failure(client):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = {"name": "gone", "url": f"http://127.0.0.1:{port}/feed"}
    result = fetch_feed(client, feed, None, SETTINGS, OPEN, NOW, "run-1")
    assert result["outcome"] == "failed" and result["error"].startswith("connect")
    feed = {"name": "nxdomain", "url": "http://does-not-exist.invalid/feed"}
    result = fetch_feed(client, feed, None, SETTINGS, OPEN, NOW, "run-1")
    assert result["outcome"] == "failed" and result["error"].startswith("dns")


def test_connection_goes_to_the_vetted_address(server, client):
    """DNS rebinding: the name is resolved once, vetted, and that IP is connected to (Host header kept)."""
    server.routes["/feed"] = static(fixture("rss20.xml"))
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port))],
                    [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", server.port))]])
    calls = []

    def rebinding_resolver(host, port, **kwargs):
        calls.append(host)
        return next(answers)

    url = f"http://feeds.example.test:{server.port}/feed"
    result = http_get(client, url, {}, SETTINGS, ONLY_LOCALHOST, NOW, resolve=rebinding_resolver)
    assert result.status == 200 and calls == ["feeds.example.test"]
    assert server.requests_to("/feed")[-1]["Host"] == f"feeds.example.test:{server.port}"
    # The second (rebound) answer would have been refused.
    with pytest.raises(FetchError, match="blocked_address"):
        resolve_vetted("feeds.example.test", 80, ONLY_LOCALHOST, resolve=rebinding_resolver)


@pytest.mark.parametrize("address, allowed", [
    ("93.184.216.34", True), ("2606:4700::6810:85e5", True),
    ("127.0.0.1", False), ("10.0.0.8", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fd00:ec2::254", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("240.0.0.1", False),
])
def test_address_policy(address, allowed):
    assert (vet_address(address, NetworkPolicy()) is None) is allowed
    metadata = address in ("169.254.169.254", "fd00:ec2::254")
    assert (vet_address(address, NetworkPolicy(allow_private_networks=True)) is None) is not metadata


def test_metadata_endpoints_stay_refused_with_private_networks_allowed():
    policy = NetworkPolicy(allow_private_networks=True)
    assert "metadata" in vet_address("169.254.169.254", policy)
    assert "metadata" in vet_address("::ffff:169.254.169.254", policy)
    assert vet_address("169.254.169.254", NetworkPolicy(allow_networks=("169.254.169.254/32",))) is None


def test_retry_after_and_backoff():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Sat, 21 Nov 2026 12:05:00 GMT", NOW) == 300
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None
    assert [backoff_seconds(n, SETTINGS) for n in range(5)] == [0, 60, 120, 240, 480]
    assert backoff_seconds(20, SETTINGS) == 3600
    assert backoff_seconds(1, SETTINGS, retry_after=900) == 900
    assert backoff_seconds(1, SETTINGS, retry_after=10 ** 9) == 3600


def test_state_of_another_url_is_ignored(server, client):
    server.routes["/feed"] = with_validators(fixture("rss20.xml"), '"v1"', "Tue, 06 Jan 2026 09:00:00 GMT")
    stale = dict(empty_state({"name": "x", "url": "http://elsewhere.example/feed"}), etag='"v1"')
    result = fetch(client, server, "/feed", state=stale)
    assert result["outcome"] == "ok" and "If-None-Match" not in server.requests_to("/feed")[0]
