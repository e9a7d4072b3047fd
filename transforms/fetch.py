"""Feeds, step 1: fetch each feed over HTTP(S), politely and defensively.

Core (plain functions, no Beam):

* ``vet_address`` / ``resolve_vetted``: the SSRF policy. Every hop's host is
  resolved with ``socket.getaddrinfo``; loopback, private, link-local,
  reserved, multicast and other non-global addresses (the cloud metadata
  server 169.254.169.254 included) are refused unless the feeds file allows
  private networks (or lists the network in ``allow_networks``); cloud
  metadata endpoints stay refused even then. The request
  then connects to the vetted IP itself (Host header and TLS SNI/certificate
  check keep the host name), so a DNS answer that changes between check and
  connect (DNS rebinding) cannot redirect the connection.
* ``http_get``: one conditional GET with manual, bounded redirects, a connect
  timeout and ONE total wall-clock deadline, and a body cap. The deadline is
  enforced at the socket: every read, write, connect and TLS handshake of the
  request gets at most the time left (``_DeadlineBackend``), so a server that
  trickles its headers or body one byte at a time is cut off at the deadline
  (httpx's own timeouts are per operation). Content-Encoding layers (gzip,
  deflate, zstd, stacked as in ``gzip, gzip``) are decoded here, pull-style,
  from the raw bytes: each layer hands out at most a small chunk per read and
  the decoded size is counted as it grows, so a decompression bomb stops at
  ``max_bytes`` with bounded memory.
* ``fetch_feed``: backoff check, conditional GET (ETag / Last-Modified),
  content-hash skip of unchanged bodies and the next per-feed state. It never
  raises for a feed's fault: the outcome is ``ok``, ``not_modified``,
  ``unchanged``, ``failed`` or ``skipped_backoff``.

Transform: :class:`FetchFeeds` maps ``(feed, state)`` pairs to fetch results;
the HTTP client is built in ``DoFn.setup``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import hashlib
import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import apache_beam as beam
import httpcore
import httpx

try:  # optional: zstd-encoded bodies are decoded when zstandard is installed
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, "
          "text/xml;q=0.9, */*;q=0.5")

Resolver = Callable[..., list]

# Cloud instance-metadata endpoints: refused even when private networks are allowed
# (only an explicit ``allow_networks`` entry opens them). AWS/GCP/Azure/OpenStack, AWS IPv6,
# AWS ECS task metadata, Alibaba Cloud.
METADATA_NETWORKS = ("169.254.169.254/32", "fd00:ec2::254/128", "169.254.170.2/32", "100.100.100.200/32")


@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """Fetch limits, from the profile's ``feeds:`` section (and the feeds file's ``fetch:``)."""

    timeout_connect: float
    timeout_total: float
    max_bytes: int
    max_redirects: int
    user_agent: str
    backoff_base_seconds: float
    backoff_max_seconds: float


@dataclasses.dataclass(frozen=True)
class NetworkPolicy:
    """Which addresses a feed (and each redirect) may resolve to."""

    allow_private_networks: bool = False
    allow_networks: tuple[str, ...] = ()  # CIDRs allowed even when private networks are not

    def allows(self, address: str) -> bool:
        return vet_address(address, self) is None


class FetchError(Exception):
    """A feed could not be fetched; ``kind`` names the failure class."""

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None,
                 final_url: str | None = None, head: bytes | None = None):
        super().__init__(message)
        self.kind = kind
        self.head = head  # raw response head (status line, headers, first body bytes) when one arrived
        self.status = status
        self.retry_after = retry_after
        self.final_url = final_url

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]}"


# -- SSRF policy ----------------------------------------------------------------

def vet_address(address: str, policy: NetworkPolicy) -> str | None:
    """Why ``address`` (an IP literal) may not be contacted, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for cidr in policy.allow_networks:
        if ip in ipaddress.ip_network(cidr, strict=False):
            return None
    for cidr in METADATA_NETWORKS:
        if ip in ipaddress.ip_network(cidr):
            return f"{ip} is a cloud metadata endpoint"
    if policy.allow_private_networks:
        return None
    for flag in ("is_loopback", "is_link_local", "is_private", "is_reserved", "is_multicast", "is_unspecified"):
        if getattr(ip, flag):
            return f"{ip} is {flag[3:].replace('_', '-')}"
    if not ip.is_global:
        return f"{ip} is not a global address"
    return None


def resolve_vetted(host: str, port: int, policy: NetworkPolicy, resolve: Resolver = socket.getaddrinfo) -> str:
    """Resolve ``host`` and return an address to connect to; every resolved address must pass the policy.

    A host that resolves to any refused address is refused as a whole: a name
    that mixes public and private answers is how rebinding attacks start.
    """
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise FetchError("dns", f"cannot resolve {host!r}: {err}") from err
    except UnicodeError as err:
        raise FetchError("dns", f"invalid host name {host!r}: {err}") from err
    addresses = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError("dns", f"{host!r} resolves to no address")
    for address in addresses:
        reason = vet_address(address, policy)
        if reason:
            raise FetchError("blocked_address", f"{host!r} resolves to a refused address ({reason}); "
                                                "set allow_private_networks in the feeds file to allow it")
    return addresses[0]


def _pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL that connects to ``address``, plus the Host header and TLS SNI that keep the real host name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip_host = f"[{address}]" if ":" in address else address
    netloc = ip_host if parts.port is None else f"{ip_host}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host and not host_header.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    return pinned, {"Host": host_header}, extensions


# -- HTTP -----------------------------------------------------------------------

RAW_CHUNK = 16 * 1024        # raw bytes read from the socket per step
DECODED_CHUNK = 64 * 1024    # decoded bytes a layer hands out per read
MAX_ENCODING_LAYERS = 3      # `Content-Encoding: gzip, gzip, gzip` is the most accepted
ZSTD_MAX_WINDOW = 1 << 23    # zstd frames that need a larger window (memory) are refused
HEAD_BYTES = 2048            # body bytes kept in a failure's response head (dead letters)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


# One total deadline per request, enforced at the socket ----------------------------

_DEADLINE = threading.local()


def _time_left(kind: type[Exception]) -> float | None:
    at = getattr(_DEADLINE, "at", None)
    if at is None:
        return None
    left = at - time.monotonic()
    if left <= 0:
        raise kind("total deadline of the request reached")
    return left


def _bounded(timeout: float | None, kind: type[Exception]) -> float | None:
    left = _time_left(kind)
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read/write waits at most until the request's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _DeadlineStream(super().connect_tcp(host, port, _bounded(timeout, httpcore.ConnectTimeout),
                                                   local_address, socket_options))


class DeadlineTransport(httpx.HTTPTransport):
    """httpx transport whose connections obey the total deadline set by :func:`http_get`."""

    def __init__(self, limits: httpx.Limits):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


# Content-Encoding, decoded layer by layer with bounded reads ----------------------

class _RawSource:
    """File-like ``read(n)`` over ``response.iter_raw``; counts (and caps) the bytes on the wire."""

    def __init__(self, response: httpx.Response, limit: int):
        self._chunks = response.iter_raw(RAW_CHUNK)
        self._buffer = b""
        self._limit = limit
        self.wire_bytes = 0

    def read(self, n: int = -1) -> bytes:
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
            self.wire_bytes += len(self._buffer)
            if self.wire_bytes > self._limit:
                raise FetchError("too_large", f"more than {self._limit} bytes on the wire")
        size = len(self._buffer) if n is None or n < 0 else n
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class _ZlibLayer:
    """gzip (multi-member) or deflate (zlib or raw) decoding that returns at most ``n`` bytes per read."""

    def __init__(self, source, encoding: str):
        self._source = source
        self._gzip = encoding != "deflate"
        self._d = None
        self._pending = b""
        self._done = False

    def _new(self, first: bytes):
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        zlib_header = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)

    def read(self, n: int = DECODED_CHUNK) -> bytes:
        n = DECODED_CHUNK if n is None or n < 0 else n
        while not self._done:
            if not self._pending:
                self._pending = self._source.read(RAW_CHUNK)
                if not self._pending:
                    self._done = True
                    return self._d.flush() if self._d is not None else b""
            if self._d is None:
                self._d = self._new(self._pending)
            try:
                out = self._d.decompress(self._pending, n)
            except zlib.error as err:
                raise FetchError("decoding", f"cannot decode the body: {err}") from err
            if self._d.eof:  # a gzip member ended; another may follow
                self._pending = self._d.unused_data
                self._d = None
                if self._pending.strip(b"\0") == b"" and self._pending:
                    self._pending = b""
            else:
                self._pending = self._d.unconsumed_tail
            if out:
                return out
        return b""


class _ZstdLayer:
    def __init__(self, source):
        if zstandard is None:
            raise FetchError("decoding", "zstd body but the zstandard package is not installed")
        self._reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            source, read_size=RAW_CHUNK, read_across_frames=True)

    def read(self, n: int = DECODED_CHUNK) -> bytes:
        try:
            return self._reader.read(DECODED_CHUNK if n is None or n < 0 else n)
        except zstandard.ZstdError as err:
            raise FetchError("decoding", f"cannot decode the zstd body: {err}") from err


def content_encodings(header: str | None) -> list[str]:
    """The encodings of a Content-Encoding header in the order they were applied (identity dropped)."""
    layers = [part.strip().lower() for part in (header or "").split(",") if part.strip()]
    return [layer for layer in layers if layer != "identity"]


def decoded_stream(response: httpx.Response, max_bytes: int):
    """A ``read(n)`` object giving the decoded body; raises FetchError for unknown or too many layers."""
    source = _RawSource(response, max_bytes)
    layers = content_encodings(response.headers.get("content-encoding"))
    if len(layers) > MAX_ENCODING_LAYERS:
        raise FetchError("decoding", f"{len(layers)} content-encoding layers (at most {MAX_ENCODING_LAYERS})")
    stream = source
    for layer in reversed(layers):  # the last encoding applied is undone first
        if layer in ("gzip", "x-gzip", "deflate"):
            stream = _ZlibLayer(stream, layer)
        elif layer == "zstd":
            stream = _ZstdLayer(stream)
        else:
            raise FetchError("decoding", f"unsupported content-encoding {layer!r}")
    return stream


def read_capped(stream, max_bytes: int, what: str = "body") -> bytes:
    """Read a decoded stream to its end, failing as soon as it grows beyond ``max_bytes``."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(DECODED_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("too_large", f"{what} larger than the limit of {max_bytes} bytes (decoded)")
        chunks.append(chunk)


def response_head(response: httpx.Response, body: bytes = b"") -> bytes:
    """Status line, headers and the first body bytes: the raw payload of a failed page's dead letter."""
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body[:HEAD_BYTES]


@dataclasses.dataclass
class HttpResult:
    status: int
    final_url: str
    headers: dict[str, str]
    body: bytes
    redirects: int
    head: bytes = b""


def http_get(client: httpx.Client, url: str, validators: Mapping[str, str | None], settings: FetchSettings,
             policy: NetworkPolicy, now: dt.datetime, resolve: Resolver = socket.getaddrinfo,
             clock: Callable[[], float] = time.monotonic, *, accept_types: tuple[str, ...] | None = None,
             check_hop: Callable[[str], None] | None = None, extra_headers: Mapping[str, str] | None = None,
             ) -> HttpResult:
    """Conditional GET of ``url`` following at most ``max_redirects`` redirects; raises :class:`FetchError`.

    Returns the 2xx or 304 response with its body (decoded, at most
    ``max_bytes``). Other statuses raise, with ``retry_after`` for 429/503.
    Connect, TLS, headers, body and every redirect share ONE deadline of
    ``timeout_total`` seconds (wall clock). ``accept_types``: media types
    accepted (else ``not_html``-like kind ``content_type`` before the body is
    read); ``check_hop(url)``: raises FetchError to refuse a hop (robots.txt),
    called for the first URL and every redirect target.
    """
    deadline = clock() + settings.timeout_total
    outer = getattr(_DEADLINE, "at", None)  # a fetch inside a fetch (robots.txt of a redirect target)
    mine = time.monotonic() + settings.timeout_total
    _DEADLINE.at = mine if outer is None else min(outer, mine)
    try:
        return _http_get(client, url, validators, settings, policy, now, resolve, clock, deadline,
                         accept_types, check_hop, extra_headers)
    finally:
        _DEADLINE.at = outer


def _http_get(client, url, validators, settings, policy, now, resolve, clock, deadline, accept_types, check_hop,
              extra_headers) -> HttpResult:
    seen: list[str] = []
    current = url
    for hop in range(settings.max_redirects + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("bad_url", f"only http(s) URLs with a host are fetched, got {current!r}",
                             final_url=current)
        seen.append(current)
        if check_hop is not None:
            check_hop(current)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve_vetted(parts.hostname, port, policy, resolve)
        pinned, headers, extensions = _pinned_request(current, address)
        headers.update(extra_headers or {})
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        remaining = deadline - clock()
        if remaining <= 0:
            raise FetchError("timeout", f"total time limit of {settings.timeout_total}s reached", final_url=current)
        timeout = httpx.Timeout(connect=min(settings.timeout_connect, remaining), read=remaining,
                                write=remaining, pool=remaining)
        request = client.build_request("GET", pinned, headers=headers, timeout=timeout, extensions=extensions)
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as err:
            raise FetchError("timeout", f"{type(err).__name__}: no complete answer within the "
                                        f"{settings.timeout_total}s total limit", final_url=current) from err
        except httpx.HTTPError as err:
            raise FetchError("connect", f"{type(err).__name__}: {err}", final_url=current) from err
        body = b""
        try:
            status = response.status_code
            if status in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError("http", f"redirect {status} without Location", status, final_url=current)
                target = urljoin(current, location.strip())
                target = urlunsplit(urlsplit(target)._replace(fragment=""))
                if target in seen:
                    raise FetchError("redirect_loop", f"redirect loop: {' -> '.join(seen + [target])}", status,
                                     final_url=current)
                current = target
                continue
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            if status == 304:
                return HttpResult(304, current, response_headers, b"", hop, response_head(response))
            if status >= 400 or status < 200:
                retry = parse_retry_after(response.headers.get("retry-after"), now) if status in (429, 503) else None
                raise FetchError("http", f"HTTP {status} {response.reason_phrase}".strip(), status, retry, current)
            if accept_types is not None:
                media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if media not in accept_types:
                    raise FetchError("content_type", f"content type {media or 'missing'!r} is not one of "
                                                     f"{', '.join(accept_types)}", status, final_url=current)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > settings.max_bytes \
                    and "content-encoding" not in response.headers:
                raise FetchError("too_large", f"Content-Length {declared} > limit {settings.max_bytes} bytes",
                                 status, final_url=current)
            body = read_capped(decoded_stream(response, settings.max_bytes), settings.max_bytes)
            if clock() > deadline:
                raise FetchError("timeout", f"total time limit of {settings.timeout_total}s reached",
                                 status, final_url=current)
            return HttpResult(status, current, response_headers, body, hop, response_head(response, body))
        except FetchError as err:
            if err.status is None:
                err.status = response.status_code
            if err.final_url is None:
                err.final_url = current
            if err.head is None:
                err.head = response_head(response, body)
            raise
        except httpx.TimeoutException as err:
            raise FetchError("timeout", f"{type(err).__name__}: body not complete within the "
                                        f"{settings.timeout_total}s total limit", response.status_code,
                             final_url=current, head=response_head(response)) from err
        except httpx.HTTPError as err:
            raise FetchError("connect", f"{type(err).__name__}: {err}", response.status_code,
                             final_url=current, head=response_head(response)) from err
        finally:
            response.close()
    raise FetchError("too_many_redirects", f"more than {settings.max_redirects} redirects: {' -> '.join(seen)}",
                     final_url=current)


# -- one feed ---------------------------------------------------------------------

def body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def backoff_seconds(failures: int, settings: FetchSettings, retry_after: float | None = None) -> float:
    """Wait before the next attempt: base * 2^(failures-1), capped, and at least Retry-After."""
    if failures <= 0:
        return 0.0
    wait = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (failures - 1))
    if retry_after is not None:
        wait = max(wait, min(retry_after, settings.backoff_max_seconds))
    return wait


def empty_state(feed: Mapping[str, Any]) -> dict[str, Any]:
    return {"feed": feed["name"], "url": feed["url"], "etag": None, "last_modified": None, "body_hash": None,
            "consecutive_failures": 0, "next_attempt_at": None, "last_outcome": None, "last_run_id": None}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def fetch_feed(client: httpx.Client, feed: Mapping[str, Any], state: Mapping[str, Any] | None,
               settings: FetchSettings, policy: NetworkPolicy, now: dt.datetime, run_id: str,
               resolve: Resolver = socket.getaddrinfo, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Fetch one feed; returns the fetch result (never raises for the feed's own faults).

    Keys: feed, url, language, outcome, http_status, error, final_url, body
    (bytes, only when outcome is ``ok``), headers, bytes, latency_ms, fetched_at
    and ``state`` (what to remember for the next run, see :func:`empty_state`).
    """
    old = dict(state) if state and state.get("url") == feed["url"] else empty_state(feed)
    new = dict(old, feed=feed["name"], last_run_id=run_id)
    result: dict[str, Any] = {
        "feed": feed["name"], "url": feed["url"], "language": feed.get("language"), "final_url": None,
        "http_status": None, "error": None, "body": None, "headers": {}, "bytes": 0, "latency_ms": None,
        "fetched_at": now,
    }
    next_attempt = _parse_iso(old.get("next_attempt_at"))
    if next_attempt and next_attempt > now:
        new["last_outcome"] = "skipped_backoff"
        result.update(outcome="skipped_backoff", error=f"backing off until {next_attempt.isoformat()} after "
                                                       f"{old.get('consecutive_failures', 0)} failure(s)", state=new)
        return result
    validators = {"etag": old.get("etag"), "last_modified": old.get("last_modified")}
    started = clock()
    try:
        response = http_get(client, feed["url"], validators, settings, policy, now, resolve, clock)
    except FetchError as err:
        failures = int(old.get("consecutive_failures") or 0) + 1
        wait = backoff_seconds(failures, settings, err.retry_after)
        new.update(consecutive_failures=failures, last_outcome="failed",
                   next_attempt_at=_iso(now + dt.timedelta(seconds=wait)))
        result.update(outcome="failed", error=str(err), http_status=err.status, final_url=err.final_url,
                      latency_ms=round((clock() - started) * 1000, 1), state=new)
        return result
    result.update(http_status=response.status, final_url=response.final_url, headers=response.headers,
                  bytes=len(response.body), latency_ms=round((clock() - started) * 1000, 1))
    new.update(consecutive_failures=0, next_attempt_at=None)
    if response.status != 304:
        new["etag"] = response.headers.get("etag")
        new["last_modified"] = response.headers.get("last-modified")
    if response.status == 304:
        outcome = "not_modified"
    else:
        digest = body_hash(response.body)
        outcome = "unchanged" if digest == old.get("body_hash") else "ok"
        new["body_hash"] = digest
        if outcome == "ok":
            result["body"] = response.body
    new["last_outcome"] = outcome
    result.update(outcome=outcome, state=new)
    return result


def make_client(settings: FetchSettings) -> httpx.Client:
    """HTTP client for feeds: no proxies from the environment (they would bypass address vetting),
    no connection reuse (each request is pinned to one vetted IP and TLS name), no automatic redirects."""
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        transport=DeadlineTransport(httpx.Limits(max_keepalive_connections=0)),
        timeout=httpx.Timeout(settings.timeout_total, connect=settings.timeout_connect),
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
    )


def fetch_or_fail(client: httpx.Client, feed: Mapping[str, Any], state: Mapping[str, Any] | None,
                  settings: FetchSettings, policy: NetworkPolicy, now: dt.datetime, run_id: str) -> dict[str, Any]:
    """:func:`fetch_feed`, where a bug or an exotic failure costs one feed (a ``failed`` result with
    the error and the next backoff), never the run. Used by :class:`FetchFeeds` and by the chunked
    feed runs' launcher (pipeline/chunking.py), so both fetch alike."""
    try:
        return fetch_feed(client, feed, state, settings, policy, now, run_id)
    except Exception as err:  # noqa: BLE001
        failed = dict(state or empty_state(feed))
        failures = int(failed.get("consecutive_failures") or 0) + 1
        failed.update(consecutive_failures=failures, last_outcome="failed", last_run_id=run_id,
                      next_attempt_at=_iso(now + dt.timedelta(seconds=backoff_seconds(failures, settings))))
        return {"feed": feed["name"], "url": feed["url"], "language": feed.get("language"), "final_url": None,
                "http_status": None, "error": f"internal: {type(err).__name__}: {err}", "body": None,
                "headers": {}, "bytes": 0, "latency_ms": None, "fetched_at": now, "outcome": "failed",
                "state": failed}


class _FetchFn(beam.DoFn):
    def __init__(self, settings: FetchSettings, policy: NetworkPolicy, run_id: str, now: dt.datetime):
        self._settings = settings
        self._policy = policy
        self._run_id = run_id
        self._now = now
        self._client: httpx.Client | None = None

    def setup(self):
        self._client = make_client(self._settings)

    def process(self, feed_and_state: tuple[Mapping[str, Any], Mapping[str, Any] | None]) -> Iterable[dict]:
        feed, state = feed_and_state
        yield fetch_or_fail(self._client, feed, state, self._settings, self._policy, self._now, self._run_id)

    def teardown(self):
        if self._client is not None:
            self._client.close()


class FetchFeeds(beam.PTransform):
    """``(feed, state)`` pairs -> one fetch result per feed (see :func:`fetch_feed`).

    ``now`` is the run's start time: backoff deadlines and Retry-After are
    measured from it.
    """

    def __init__(self, settings: FetchSettings, policy: NetworkPolicy, run_id: str, now: dt.datetime):
        super().__init__()
        self._fn = _FetchFn(settings, policy, run_id, now)

    def expand(self, feeds_and_states):
        return (feeds_and_states
                | "Spread" >> beam.Reshuffle()
                | "Fetch" >> beam.ParDo(self._fn))
