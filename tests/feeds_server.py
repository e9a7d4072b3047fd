"""A real HTTP server on 127.0.0.1 for the feeds tests (http.server in a thread).

Routes map a path to a handler ``(request) -> Response``; tests may change
them between runs (a feed that gains entries). Every request is recorded
(path and headers) so tests can check what the client sent.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FEEDS = pathlib.Path(__file__).resolve().parent / "data" / "feeds"


@dataclasses.dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    delay: float = 0.0          # seconds to wait before answering
    gzip: bool = False


def fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def rss(title: str, items: list[dict], language: str | None = None) -> bytes:
    """An RSS 2.0 document; items are dicts with guid, title, link, description and optional pubDate."""
    from xml.sax.saxutils import escape

    parts = [f"<title>{escape(title)}</title><link>https://example.org/</link>"]
    if language:
        parts.append(f"<language>{language}</language>")
    for item in items:
        fields = "".join(f'<guid isPermaLink="false">{escape(str(value))}</guid>' if key == "guid"
                         else f"<{key}>{escape(str(value))}</{key}>" for key, value in item.items())
        parts.append(f"<item>{fields}</item>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            + "".join(parts) + "</channel></rss>").encode("utf-8")


def static(body: bytes, content_type: str = "application/rss+xml", **kwargs) -> Callable:
    return lambda request: Response(200, body, {"Content-Type": content_type}, **kwargs)


def with_validators(body: bytes, etag: str, last_modified: str) -> Callable:
    """Serve ``body`` with an ETag and Last-Modified; answer 304 when the client sends either back."""
    def handler(request):
        if request.headers.get("If-None-Match") == etag or request.headers.get("If-Modified-Since") == last_modified:
            return Response(304, b"", {"ETag": etag})
        return Response(200, body, {"Content-Type": "application/rss+xml", "ETag": etag,
                                    "Last-Modified": last_modified})
    return handler


def redirect(location: str, status: int = 302) -> Callable:
    return lambda request: Response(status, b"", {"Location": location})


class FeedServer:
    def __init__(self):
        self.routes: dict[str, Callable] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                response = route(self) if route else Response(404, b"not found")
                if response.delay:
                    time.sleep(response.delay)
                body = response.body
                headers = dict(response.headers)
                if response.gzip:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                try:
                    self.send_response(response.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (limits, timeouts)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[dict]:
        return [headers for p, headers in self.requests if p == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
