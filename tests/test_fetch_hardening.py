"""Fetch hardening (issue 12 item 8), against real HTTP servers on 127.0.0.1.

* One total deadline per fetch: a server that sends its status line and
  headers one byte at a time is cut off at ``timeout_total`` (httpx's own
  timeouts restart with every byte).
* Decompression bombs stop at ``max_bytes`` with bounded memory for every
  encoding layer: ``Content-Encoding: gzip, gzip`` and zstd. Memory is measured
  in a fresh process (tests/fetch_probe.py) so earlier tests cannot hide it.
* Stacked encodings decode correctly; unknown or too many layers fail cleanly.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import pathlib
import subprocess
import sys
import time
import zlib

import pytest
from page_server import Page, PageServer

from transforms.fetch import FetchError, FetchSettings, NetworkPolicy, http_get, make_client

PROJECT = pathlib.Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
OPEN = NetworkPolicy(allow_private_networks=True)
SETTINGS = FetchSettings(timeout_connect=1.0, timeout_total=1.5, max_bytes=1_000_000, max_redirects=3,
                         user_agent="newsbeam-test/1", backoff_base_seconds=60, backoff_max_seconds=3600)
BOMB_BYTES = 1 << 28   # 256 MiB of zeros once decoded (docs/fulltext.md has the 1 GiB figures)
MEMORY_LIMIT_MB = 64   # allowed growth of peak RSS while fetching a bomb (cap: 1 MB)

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None


def gzip_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built in chunks (never the whole plain text in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def server():
    with PageServer() as running:
        yield running


def probe(url: str, max_bytes: int, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    done = subprocess.run([sys.executable, str(PROJECT / "tests" / "fetch_probe.py"), url, str(max_bytes),
                           str(timeout)], capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(done.stdout)


def test_slow_headers_are_cut_at_the_total_deadline(server):
    """Headers at one byte per 0.2 s would take ~20 s; the fetch must end at its 1.5 s deadline."""
    server.routes["/trickle"] = Page(body=b"<html>" + b"x" * 50 + b"</html>", trickle=0.2)
    started = time.monotonic()
    with make_client(SETTINGS) as client, pytest.raises(FetchError) as caught:
        http_get(client, server.url("/trickle"), {}, SETTINGS, OPEN, NOW)
    elapsed = time.monotonic() - started
    assert caught.value.kind == "timeout", caught.value
    assert elapsed < SETTINGS.timeout_total + 0.5, elapsed


def test_slow_body_is_cut_at_the_total_deadline(server):
    server.routes["/trickle-body"] = Page(body=b"y" * 400, trickle=0.01)  # headers ~0.7 s, body 4 s
    started = time.monotonic()
    with make_client(SETTINGS) as client, pytest.raises(FetchError) as caught:
        http_get(client, server.url("/trickle-body"), {}, SETTINGS, OPEN, NOW)
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < SETTINGS.timeout_total + 0.5


def test_stacked_encodings_decode(server):
    text = "Grüße aus dem Test. ".encode("utf-8") * 500
    server.routes["/gzip-gzip"] = Page(body=gzip.compress(gzip.compress(text)), encoding="gzip, gzip")
    server.routes["/deflate"] = Page(body=zlib.compress(text), encoding="deflate")
    server.routes["/raw-deflate"] = Page(body=zlib.compress(text)[2:-4], encoding="deflate")
    server.routes["/multi-member"] = Page(body=gzip.compress(text[:100]) + gzip.compress(text[100:]),
                                          encoding="gzip")
    with make_client(SETTINGS) as client:
        for path in ("/gzip-gzip", "/deflate", "/raw-deflate", "/multi-member"):
            assert http_get(client, server.url(path), {}, SETTINGS, OPEN, NOW).body == text, path


def test_unknown_and_too_many_encodings_fail(server):
    server.routes["/br"] = Page(body=b"\x0b\x02\x80hello\x03", encoding="br")
    server.routes["/four"] = Page(body=gzip.compress(gzip.compress(gzip.compress(gzip.compress(b"x")))),
                                  encoding="gzip, gzip, gzip, gzip")
    server.routes["/garbage"] = Page(body=b"this is not gzip at all", encoding="gzip")
    with make_client(SETTINGS) as client:
        for path in ("/br", "/four", "/garbage"):
            with pytest.raises(FetchError) as caught:
                http_get(client, server.url(path), {}, SETTINGS, OPEN, NOW)
            assert caught.value.kind == "decoding", (path, caught.value)
            assert caught.value.head.startswith(b"HTTP/1.1 200")


@pytest.fixture(scope="module")
def double_gzip_bomb() -> bytes:
    return gzip.compress(gzip_zeros(BOMB_BYTES), 9)


def test_double_gzip_bomb_stops_at_the_cap_with_bounded_memory(server, double_gzip_bomb):
    server.routes["/bomb-gz2"] = Page(body=double_gzip_bomb, encoding="gzip, gzip")
    result = probe(server.url("/bomb-gz2"), 1_000_000, 30)
    assert result["outcome"].startswith("too_large"), result
    assert result["rss_peak_mb"] - result["rss_before_mb"] < MEMORY_LIMIT_MB, result


@pytest.mark.skipif(zstandard is None, reason="zstandard is not installed")
def test_zstd_bomb_stops_at_the_cap_with_bounded_memory(server):
    packer = zstandard.ZstdCompressor(level=3).compressobj(size=BOMB_BYTES)
    block = bytes(1 << 20)
    bomb = b"".join(packer.compress(block) for _ in range(BOMB_BYTES // len(block))) + packer.flush()
    server.routes["/bomb-zstd"] = Page(body=bomb, encoding="zstd")
    result = probe(server.url("/bomb-zstd"), 1_000_000, 30)
    assert result["outcome"].startswith("too_large"), result
    assert result["rss_peak_mb"] - result["rss_before_mb"] < MEMORY_LIMIT_MB, result
