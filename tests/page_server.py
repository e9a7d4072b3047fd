"""Real HTTP servers on 127.0.0.1 for the article-page tests (http.server in threads).

Each :class:`PageServer` listens on its own port, so several servers are
several hosts to the fetcher (politeness is keyed by scheme, host and port, as
robots.txt is). Routes map a path to a :class:`Page` or a handler
``(request) -> Page``. Every request is logged with its arrival time
(``time.monotonic``) so tests can measure the spacing per host.

Hostile behaviours for the fetch-hardening tests: ``trickle`` sends the whole
response (status line and headers first) one byte every ``trickle`` seconds;
``encoding`` sends ``body`` as is under that Content-Encoding (bombs are
pre-compressed by the test).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass
class Page:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict = dataclasses.field(default_factory=dict)
    delay: float = 0.0           # seconds before anything is sent
    trickle: float = 0.0         # seconds per byte for the whole response, headers included
    encoding: str | None = None  # Content-Encoding header; body is sent as given


def html_page(body: bytes | str, **kwargs) -> Page:
    return Page(body=body.encode("utf-8") if isinstance(body, str) else body, **kwargs)


class PageServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Page | Callable] = {}
        self.log: list[tuple[float, str, dict]] = []  # (monotonic arrival, path, headers)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with server._lock:
                    server.log.append((time.monotonic(), self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                page = (route(self) if callable(route) else route) if route is not None else Page(404, b"not found")
                if page.delay:
                    time.sleep(page.delay)
                headers = {"Content-Type": page.content_type, **page.headers}
                if page.encoding:
                    headers["Content-Encoding"] = page.encoding
                headers["Content-Length"] = str(len(page.body))
                try:
                    if page.trickle:
                        raw = f"HTTP/1.1 {page.status} X\r\n".encode() + b"".join(
                            f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n" + page.body
                        for i in range(len(raw)):
                            self.wfile.write(raw[i:i + 1])
                            self.wfile.flush()
                            time.sleep(page.trickle)
                        return
                    self.send_response(page.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (limits, deadlines)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hits(self, path: str) -> list[float]:
        """Arrival times of the requests for ``path``."""
        return [t for t, p, _ in self.log if p == path]

    def paths(self) -> list[str]:
        return [p for _, p, _ in self.log]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
