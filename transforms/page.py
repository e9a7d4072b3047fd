"""Feeds, step 2b: fetch each feed item's article page, politely, and extract its full text.

Between feed parsing and normalization. A feed gives a title and a teaser; the
page gives the article. Nothing is lost on the way: an item whose page cannot
be had (robots.txt, 404, timeout, too large, not HTML, nothing extracted ...)
keeps its feed text (``text_source = 'feed'``) with the reason in
``fetch_status``, and the failed page becomes a dead letter (stage ``page``)
holding the raw response head.

Core (plain functions and classes, no Beam):

* :func:`extract`: HTML -> text (trafilatura) plus what the page says about
  itself: canonical URL (``<link rel=canonical>``, else ``og:url``),
  publication date (htmldate, through trafilatura), author (trafilatura's
  metadata: meta tags, JSON-LD, bylines) and language (``<html lang>``, else
  ``<meta http-equiv=content-language>``, else ``og:locale``), each with the
  name of its source.
* :func:`apply_page` / :func:`keep_feed_text`: the item as it leaves the step.
* :class:`PageFetcher`: politeness for one worker. robots.txt (protego) is
  fetched once per host and obeyed, requests to one host go one at a time
  with at least ``min_delay_seconds`` (or the site's Crawl-delay, capped)
  between the end of one and the start of the next, the User-Agent names a
  contact, every hop is vetted by the SSRF guard of :mod:`transforms.fetch`
  (one total deadline, size cap while streaming, bounded redirects), only
  text/html is read. Transient failures (timeouts, connection errors, 429,
  5xx) are retried ``retries`` times within the run, after the host's other
  pages.
* The page cache (``<output>/_state/pages/``): one JSON line per page URL
  with its last status, attempts and validators. A run stages the entries of
  the pages it tried as ``seg-<run_id>.jsonl`` in its staging folder; the commit
  protocol (transforms/commit.py) publishes them with the run's articles and
  compacts the segments (:func:`compact_page_cache`). A page fetched ``ok`` is
  never requested again while its entry lives (``cache_days``, pruned at
  compaction), unless ``refetch_after_days`` asks for a conditional GET
  (If-None-Match / If-Modified-Since). A page that failed for a transient
  reason is tried again by later runs that see the item again, until
  ``max_attempts`` attempts in all.

Transform: :class:`FetchPages` maps items to items (same count, same order of
fields), plus dead letters and a count of failed pages.
Politeness across workers: items are grouped by a shard of their host
(``GroupByKey``), so every request to one host is made by one worker, one at a
time; within a shard up to ``concurrency`` hosts are fetched in parallel.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin, urlsplit

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.storage import read_text, write_text_atomically
from transforms.common import DEAD_LETTER, RunInfo, dead_letter, stable_hash
from transforms.feeds import language_code
from transforms.fetch import FetchError, FetchSettings, NetworkPolicy, http_get, make_client
from transforms.storage import join

CACHE = "page_cache"
STATE_DIR = ("_state", "pages")
PENDING = "_pending"
HTML_TYPES = ("text/html", "application/xhtml+xml")
ROBOTS_TOKEN = "newsbeam"
# Statuses worth another attempt (in this run, and in later runs up to max_attempts).
TRANSIENT = frozenset({"timeout", "connect_error", "http_429", "http_408", "http_500", "http_502", "http_503",
                       "http_504", "robots_unreachable"})
# Statuses that say "no page was tried": not failures, no dead letter (nor is feed_longer).
NOT_TRIED = frozenset({"disabled", "no_url", "cached", "gave_up"})


@dataclasses.dataclass(frozen=True)
class PageSettings:
    """Full-text settings: the feeds file's ``full_text:`` section (see pipeline/feeds_config.py)."""

    enabled: bool = True
    user_agent: str = "newsbeam/0.1 (+https://github.com/newsbeam/newsbeam)"
    min_delay_seconds: float = 2.0          # per host, between the end of a request and the next one
    max_crawl_delay_seconds: float = 30.0   # a robots.txt Crawl-delay is obeyed up to this
    concurrency: int = 8                    # hosts fetched at once per shard
    shards: int = 1                         # Beam keys hosts are spread over (1 = one worker fetches)
    timeout_connect: float = 10.0
    timeout_total: float = 20.0             # one wall-clock deadline per page, redirects included
    max_bytes: int = 3_000_000              # decoded HTML larger than this is refused (too_large)
    max_redirects: int = 5
    robots_max_bytes: int = 500_000
    min_text_chars: int = 200               # less extracted text is empty_extraction
    fallbacks: bool = True                  # trafilatura's fallback extractors (docs/fulltext.md)
    retries: int = 1                        # extra attempts within a run for transient failures
    max_attempts: int = 3                   # attempts over all runs for a page that keeps failing
    cache_days: int = 30                    # page cache entries live this long
    refetch_after_days: float = 0           # 0: a page fetched ok is never requested again

    def fetch_settings(self, max_bytes: int | None = None) -> FetchSettings:
        return FetchSettings(timeout_connect=self.timeout_connect, timeout_total=self.timeout_total,
                             max_bytes=max_bytes or self.max_bytes, max_redirects=self.max_redirects,
                             user_agent=self.user_agent, backoff_base_seconds=0, backoff_max_seconds=0)


# -- extraction -------------------------------------------------------------------

def _first(tree, xpath: str) -> str | None:
    for value in tree.xpath(xpath):
        value = str(value).strip()
        if value:
            return value
    return None


def page_meta(tree, url: str | None) -> dict[str, Any]:
    """Canonical URL and language the page declares, each with its source (None when absent)."""
    out: dict[str, Any] = {"canonical_url": None, "canonical_source": None, "language": None,
                           "language_source": None}
    for source, xpath in (("link_canonical", "//link[translate(@rel,'CANONICAL','canonical')='canonical']/@href"),
                          ("og_url", "//meta[@property='og:url']/@content")):
        value = _first(tree, xpath)
        if value:
            absolute = urljoin(url or "", value)
            if urlsplit(absolute).scheme in ("http", "https"):
                out.update(canonical_url=absolute, canonical_source=source)
                break
    for source, xpath in (("html_lang", "/html/@lang | /html/@xml:lang"),
                          ("meta_content_language",
                           "//meta[translate(@http-equiv,'CONTENT-LANGUAGE','content-language')="
                           "'content-language']/@content"),
                          ("og_locale", "//meta[@property='og:locale']/@content")):
        code = language_code(_first(tree, xpath))
        if code and len(code) == 2:
            out.update(language=code, language_source=source)
            break
    return out


# trafilatura over lxml crashes the process now and then (SIGSEGV) when several threads extract at once
# (adbar/trafilatura#840, #925; seen here in tests/test_pages.py): the fetch threads of a host pool download
# in parallel, but extract one page at a time. Extraction holds the GIL for most of its time anyway.
_EXTRACT_LOCK = threading.Lock()


def extract(html: bytes | str, url: str | None = None, fallbacks: bool = True) -> dict[str, Any]:
    """Article text and page metadata of one HTML document (pure; never raises for bad HTML).

    One extraction at a time per process (``_EXTRACT_LOCK``: lxml is not safe across threads here).

    ``fallbacks``: let trafilatura try its fallback extractors (readability, jusText) when its own
    result looks poor; off is about 2x faster for a small loss (docs/fulltext.md).

    Keys: text, title, author, published (a date), canonical_url,
    canonical_source, language, language_source. Missing values are None.
    """
    import trafilatura
    from trafilatura.settings import set_date_params

    out: dict[str, Any] = {"text": None, "title": None, "author": None, "published": None,
                           "canonical_url": None, "canonical_source": None, "language": None,
                           "language_source": None}
    with _EXTRACT_LOCK:
        tree = trafilatura.load_html(html)
        if tree is None:
            return out
        out.update(page_meta(tree, url))
        doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, include_comments=False,
                                          include_tables=True, deduplicate=False, no_fallback=not fallbacks,
                                          # structured dates only (meta, JSON-LD, URL, <time>): the extensive
                                          # search of free text costs 150 ms/page and guesses (docs/fulltext.md)
                                          date_extraction_params=set_date_params(False))
        if doc is None:
            return out
        out["text"] = (doc.text or "").strip() or None
        out["title"] = (doc.title or "").strip() or None
        out["author"] = (doc.author or "").strip() or None
        date = doc.date
        del doc, tree  # their lxml trees are freed under the lock too
    if date:
        try:
            out["published"] = dt.date.fromisoformat(date[:10])
        except ValueError:
            pass
    return out


def apply_page(item: Mapping[str, Any], page: Mapping[str, Any]) -> dict[str, Any]:
    """The item with the page's text as body and the feed's text as summary; fields the feed lacks
    are taken from the page, each named in ``page_fields`` with its source."""
    out = dict(item)
    fields = []
    out["summary"] = item.get("summary") or item.get("body") or None
    out["body"] = page["text"]
    out["text_source"] = "page"
    out["fetch_status"] = "ok"
    if page.get("canonical_url"):
        out["page_canonical_url"] = page["canonical_url"]
        fields.append(f"page_canonical_url:{page['canonical_source']}")
    if not item.get("published_at") and page.get("published"):
        out["published_at"] = dt.datetime.combine(page["published"], dt.time(), tzinfo=dt.timezone.utc)
        out["date_source"] = "page"
        out["date_precision"] = "day"
        fields.append("published_at:htmldate")
    if not item.get("author") and page.get("author"):
        out["author"] = page["author"]
        fields.append("author:page_meta")
    if not item.get("declared_language") and page.get("language"):
        out["declared_language"] = page["language"]
        fields.append(f"declared_language:{page['language_source']}")
    if not item.get("title") and page.get("title"):
        out["title"] = page["title"]
        fields.append("title:page")
    out["page_fields"] = fields
    return out


def keep_feed_text(item: Mapping[str, Any], status: str) -> dict[str, Any]:
    """The item unchanged but for the page columns: the feed's text stays, ``status`` says why."""
    out = dict(item)
    out.update(text_source="feed", fetch_status=status, page_canonical_url=None, page_fields=[])
    return out


def host_key(url: str | None) -> str | None:
    """``scheme://host:port`` of an http(s) URL (robots.txt and politeness are per this), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def status_of(err: FetchError) -> str:
    """The fetch_status of a failed fetch."""
    if err.kind == "http" and err.status:
        return f"http_{err.status}"
    return {"timeout": "timeout", "too_large": "too_large", "content_type": "not_html", "decoding": "bad_encoding",
            "blocked_address": "blocked_address", "dns": "connect_error", "connect": "connect_error",
            "redirect_loop": "too_many_redirects", "too_many_redirects": "too_many_redirects",
            "bad_url": "bad_url", "robots": "robots_disallowed"}.get(err.kind, err.kind)


# -- page cache (under the output root's _state) ----------------------------------------

def cache_key(url: str) -> str:
    return stable_hash("page:" + url)[:24]


def _cache_dir(root: str) -> str:
    return join(root, *STATE_DIR)


def load_page_cache(root: str) -> dict[str, dict]:
    """Committed cache entries by page URL; of several entries for one URL the latest wins."""
    entries: dict[str, dict] = {}
    try:
        matches = FileSystems.match([join(_cache_dir(root), "*.jsonl")])[0].metadata_list
    except OSError:
        return entries
    for meta in sorted(matches, key=lambda m: m.path):
        for line in (read_text(meta.path) or "").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            url = entry.get("url")
            if url and (url not in entries or entry.get("fetched_at", "") >= entries[url].get("fetched_at", "")):
                entries[url] = entry
    return entries


def plan(item: Mapping[str, Any], entry: Mapping[str, Any] | None, settings: PageSettings, enabled: bool,
         now: dt.datetime) -> str | None:
    """Why the item's page is not fetched (a fetch_status), or None when it should be."""
    if not enabled:
        return "disabled"
    if host_key(item.get("url")) is None:
        return "no_url"
    if not entry:
        return None
    status = entry.get("status")
    if status == "ok" or status == "not_modified":
        fetched = dt.datetime.fromisoformat(entry["fetched_at"])
        if not settings.refetch_after_days or now - fetched < dt.timedelta(days=settings.refetch_after_days):
            return "cached"
        return None
    if status in TRANSIENT and int(entry.get("attempts") or 0) < settings.max_attempts:
        return None
    return "gave_up"


class PageCacheSummary:
    """CommitRun summary: how many page-cache entries this run staged (for the manifest)."""

    def __call__(self, files=None, counts=None) -> dict[str, Any]:
        staged = [f for f in files or [] if f.get("table") == "page_cache"]
        entries = sum(len((read_text(f["staged"]) or "").splitlines()) for f in staged)
        return {"page_cache": {"entries_published": entries}}


def compact_page_cache(root: str, run_id: str, cache_days: int, now: dt.datetime,
                       compact_after_segments: int = 8) -> str | None:
    """Merge the published cache segments into one, dropping entries older than ``cache_days``,
    when there are more than ``compact_after_segments`` (called by the commit protocol's publish,
    under the writer lease; repeating it after a crash gives the same result)."""
    folder = _cache_dir(root)
    segments = FileSystems.match([join(folder, "*.jsonl")])[0].metadata_list
    if len(segments) <= compact_after_segments:
        return None
    cutoff = (now - dt.timedelta(days=cache_days)).isoformat()
    kept = [e for e in load_page_cache(root).values() if e.get("fetched_at", "") >= cutoff]
    merged = join(folder, f"seg-{run_id}-merged.jsonl")
    write_text_atomically(merged, "".join(json.dumps(e, sort_keys=True) + "\n"
                                          for e in sorted(kept, key=lambda e: e["url"])))
    old = [m.path for m in segments if m.path != merged]
    if old:
        FileSystems.delete(old)
    return merged


# -- fetching, politely ------------------------------------------------------------

class RobotsDenied(FetchError):
    def __init__(self, url: str):
        super().__init__("robots", f"robots.txt disallows {url}")


class PageFetcher:
    """Fetches pages host by host (one worker's share): robots.txt, spacing, retries, extraction."""

    def __init__(self, settings: PageSettings, policy: NetworkPolicy, clock=time.monotonic, sleep=time.sleep):
        self.settings = settings
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._client = make_client(settings.fetch_settings())
        self._client.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
        self._robots: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self._robots_lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._next_at: dict[str, float] = {}

    def close(self) -> None:
        self._client.close()

    # robots.txt: 2xx -> rules; 4xx -> everything allowed; 5xx/unreachable -> nothing (RFC 9309)
    def robots(self, host: str, now: dt.datetime) -> Any:
        with self._robots_lock:
            cached = self._robots.get(host)
            if cached and self._clock() - cached[1] < 3600:
                return cached[0]
        from protego import Protego

        try:
            result = http_get(self._client, f"{host}/robots.txt", {}, self.settings.fetch_settings(
                self.settings.robots_max_bytes), self.policy, now)
            rules = Protego.parse(result.body.decode("utf-8", "replace"))
        except FetchError as err:
            if err.kind == "http" and err.status and 400 <= err.status < 500:
                rules = Protego.parse("")
            else:
                rules = err
        with self._robots_lock:
            self._robots[host] = (rules, self._clock())
            while len(self._robots) > 10_000:
                self._robots.popitem(last=False)
        return rules

    def delay(self, rules) -> float:
        delay = self.settings.min_delay_seconds
        if rules is not None and not isinstance(rules, FetchError):
            crawl = rules.crawl_delay(ROBOTS_TOKEN)
            if crawl:
                delay = max(delay, min(float(crawl), self.settings.max_crawl_delay_seconds))
        return delay

    def _wait_turn(self, host: str) -> None:
        wait = self._next_at.get(host, 0.0) - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _check_hop(self, first_host: str, now: dt.datetime):
        def check(url: str) -> None:
            host = host_key(url)
            if host is None:
                return  # http_get refuses it with bad_url
            rules = self.robots(host, now) if host != first_host else self._robots.get(host, (None,))[0]
            if isinstance(rules, FetchError):
                raise FetchError("robots_unreachable", f"robots.txt of {host} unavailable ({rules})")
            if rules is not None and not rules.can_fetch(url, ROBOTS_TOKEN):
                raise RobotsDenied(url)
        return check

    def fetch_one(self, item: Mapping[str, Any], entry: Mapping[str, Any] | None, now: dt.datetime
                  ) -> tuple[str, dict | None, bytes | None, dict]:
        """One page: ``(status, extracted or None, raw head for a dead letter, cache entry)``.
        The caller holds the host's turn."""
        url = item["url"].strip()
        host = host_key(url)
        validators = {"etag": (entry or {}).get("etag"), "last_modified": (entry or {}).get("last_modified")}
        attempts = int((entry or {}).get("attempts") or 0) + 1
        cache = {"url": url, "fetched_at": now.isoformat(), "attempts": attempts, "etag": None,
                 "last_modified": None, "final_url": None}
        head = None
        extracted = None
        try:
            result = http_get(self._client, url, validators, self.settings.fetch_settings(), self.policy, now,
                              accept_types=HTML_TYPES, check_hop=self._check_hop(host, now),
                              extra_headers={"Accept-Language": "*"})
            cache.update(etag=result.headers.get("etag"), last_modified=result.headers.get("last-modified"),
                         final_url=result.final_url)
            head = result.head
            if result.status == 304:
                status = "not_modified"
            else:
                extracted = extract(result.body, result.final_url, self.settings.fallbacks)
                text = extracted.get("text") or ""
                status = "ok" if len(text) >= self.settings.min_text_chars else "empty_extraction"
                if status != "ok":
                    extracted = None
        except FetchError as err:
            status = status_of(err)
            head = err.head if err.head is not None else f"{status}: {err}".encode()
            cache["final_url"] = err.final_url
            cache["error"] = str(err)
        except Exception as err:  # noqa: BLE001 - an extractor bug costs one page, not the run
            status = "extraction_error"
            head = f"{type(err).__name__}: {err}".encode()
        if status in ("ok", "not_modified"):
            cache["attempts"] = 0
        cache["status"] = status
        return status, extracted, head, cache

    def fetch_host(self, host: str, work: list[tuple[dict, dict | None]], now: dt.datetime
                   ) -> list[tuple[dict, str, dict | None, bytes | None, dict | None]]:
        """Every page of one host, one at a time, spaced; returns ``(item, status, extracted, head, cache)``."""
        out = []
        with self._host_locks[host]:
            rules = self.robots(host, now)
            self._next_at[host] = self._clock() + self.delay(rules)  # the robots.txt request counts
            queue = [(item, entry, 0) for item, entry in work]
            done: dict[str, tuple] = {}
            while queue:
                item, entry, tries = queue.pop(0)
                if isinstance(rules, FetchError):
                    out.append((item, "robots_unreachable", None, str(rules).encode(),
                                {"url": item["url"].strip(), "fetched_at": now.isoformat(),
                                 "attempts": int((entry or {}).get("attempts") or 0) + 1,
                                 "status": "robots_unreachable", "error": str(rules)}))
                    continue
                if not rules.can_fetch(item["url"].strip(), ROBOTS_TOKEN):
                    out.append((item, "robots_disallowed", None, b"robots.txt disallows this URL for "
                                + ROBOTS_TOKEN.encode(), {"url": item["url"].strip(), "fetched_at": now.isoformat(),
                                                          "attempts": 1, "status": "robots_disallowed"}))
                    continue
                url = item["url"].strip()
                if url in done:  # two items (feeds) linking one page: one request
                    out.append((item, *done[url]))
                    continue
                self._wait_turn(host)
                status, extracted, head, cache = self.fetch_one(item, entry, now)
                self._next_at[host] = self._clock() + self.delay(rules)
                if status in TRANSIENT and tries < self.settings.retries:
                    queue.append((item, cache, tries + 1))
                    continue
                done[url] = (status, extracted, head, cache)
                out.append((item, status, extracted, head, cache))
        return out

    def fetch_many(self, work: list[tuple[dict, dict | None]], now: dt.datetime):
        """Pages of many hosts: up to ``concurrency`` hosts at once, each host's pages in order."""
        by_host: dict[str, list] = defaultdict(list)
        for item, entry in work:
            by_host[host_key(item["url"])].append((item, entry))
        hosts = sorted(by_host)
        if len(hosts) <= 1 or self.settings.concurrency <= 1:
            return [r for host in hosts for r in self.fetch_host(host, by_host[host], now)]
        with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, len(hosts))) as pool:
            results = pool.map(lambda host: self.fetch_host(host, by_host[host], now), hosts)
            return [r for per_host in results for r in per_host]


def page_outcome(item: Mapping[str, Any], status: str, extracted: Mapping[str, Any] | None, head: bytes | None,
                 run: RunInfo, payload_cap: int) -> tuple[dict, dict | None]:
    """The item leaving the step and, for a failed page, its dead letter.

    When the feed itself carries a text more than twice as long as the page's extracted text (a
    full-content feed, a page the extractor mostly missed), the feed's text stays the body
    (``feed_longer``); the page's metadata is still taken."""
    if status == "ok" and extracted:
        out = apply_page(item, extracted)
        if len(item.get("body") or "") > 2 * len(extracted["text"]):
            out.update(body=item["body"], text_source="feed", fetch_status="feed_longer")
        return out, None
    out = keep_feed_text(item, status)
    if status in NOT_TRIED or status == "not_modified":
        return out, None
    letter = dead_letter(source=item.get("source") or "unknown", origin=item["url"].strip(), stage="page",
                         error=f"{status}: the article keeps its feed text", raw=head or b"", run=run,
                         payload_cap=payload_cap)
    return out, letter


# -- Beam -----------------------------------------------------------------------------

class _PlanFn(beam.DoFn):
    """Items -> items that need no fetch (main) and ``(shard, (item, cache entry))`` to fetch."""

    def __init__(self, settings: PageSettings, output_root: str, now: dt.datetime, disabled_feeds: frozenset):
        self._settings = settings
        self._root = output_root
        self._now = now
        self._disabled = disabled_feeds
        self._cache: dict[str, dict] = {}

    def setup(self):
        self._cache = load_page_cache(self._root) if self._root else {}

    def process(self, item: Mapping[str, Any]):
        url = (item.get("url") or "").strip()
        entry = self._cache.get(url)
        enabled = self._settings.enabled and item.get("source") not in self._disabled
        reason = plan(item, entry, self._settings, enabled, self._now)
        if reason is not None:
            yield keep_feed_text(item, reason)
            return
        shard = int(stable_hash("host:" + host_key(url))[:8], 16) % max(1, self._settings.shards)
        yield beam.pvalue.TaggedOutput("fetch", (shard, (dict(item), entry)))


class _FetchKeyedFn(beam.DoFn):
    """Streaming: one item at a time per host shard (Beam serializes a key's stateful processing, on
    whichever worker holds it). The shard's state remembers when each host may be asked again and
    which pages were fetched (for ``cache_days``), so a feed that changes does not refetch its pages."""

    STATE = ReadModifyWriteStateSpec("pages", PickleCoder())

    def __init__(self, settings: PageSettings, policy: NetworkPolicy, run_id: str, payload_cap: int):
        self._settings = settings
        self._policy = policy
        self._run_id = run_id
        self._payload_cap = payload_cap
        self._fetcher: PageFetcher | None = None

    def setup(self):
        self._fetcher = PageFetcher(self._settings, self._policy, clock=time.time)

    def process(self, keyed, timestamp=beam.DoFn.TimestampParam, state=beam.DoFn.StateParam(STATE)):
        _, (item, entry) = keyed
        now = dt.datetime.fromtimestamp(float(timestamp), dt.timezone.utc).replace(microsecond=0)
        run = RunInfo(run_id=self._run_id, ingested_at=now)
        memory = state.read() or {"next_at": {}, "seen": {}}
        url = item["url"].strip()
        horizon = time.time() - self._settings.cache_days * 86400
        memory["seen"] = {u: seen for u, seen in memory["seen"].items() if seen[0] >= horizon}
        seen = memory["seen"].get(url)  # (time, status, attempts) of this page in this stream
        retry = seen is not None and seen[1] in TRANSIENT and seen[2] < self._settings.max_attempts
        if seen is not None and not retry:
            ok = seen[1] in ("ok", "not_modified")
            out, letter = keep_feed_text(item, "cached" if ok else "gave_up"), None
        else:
            host = host_key(url)
            self._fetcher._next_at[host] = max(self._fetcher._next_at.get(host, 0.0),
                                               memory["next_at"].get(host, 0.0))
            [(item, status, extracted, head, cache)] = self._fetcher.fetch_many([(item, entry)], now)
            memory["next_at"][host] = self._fetcher._next_at.get(host, 0.0)
            memory["seen"][url] = (time.time(), status, (seen[2] if seen else 0) + 1)
            out, letter = page_outcome(item, status, extracted, head, run, self._payload_cap)
        state.write(memory)
        yield out
        if letter is not None:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)

    def teardown(self):
        if self._fetcher is not None:
            self._fetcher.close()


class _FetchFn(beam.DoFn):
    def __init__(self, settings: PageSettings, policy: NetworkPolicy, run: RunInfo, payload_cap: int):
        self._settings = settings
        self._policy = policy
        self._run = run
        self._payload_cap = payload_cap
        self._fetcher: PageFetcher | None = None

    def setup(self):
        self._fetcher = PageFetcher(self._settings, self._policy)

    def process(self, shard_and_work):
        _, work = shard_and_work
        for item, status, extracted, head, cache in self._fetcher.fetch_many(list(work), self._run.ingested_at):
            out, letter = page_outcome(item, status, extracted, head, self._run, self._payload_cap)
            yield out
            if letter is not None:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)
            if cache is not None:
                yield beam.pvalue.TaggedOutput(CACHE, cache)

    def teardown(self):
        if self._fetcher is not None:
            self._fetcher.close()


def _stage_cache(entries: list[dict], stage_root: str, run_id: str) -> int:
    """Write the run's cache entries as one segment under its staging root (the commit publishes it)."""
    path = join(_cache_dir(stage_root), f"seg-{run_id}.jsonl")
    if entries:
        write_text_atomically(path, "".join(json.dumps(e, sort_keys=True, default=str) + "\n"
                                            for e in sorted(entries, key=lambda e: e["url"])))
    return len(entries)


class FetchPages(beam.PTransform):
    """Feed items -> ``{'items', 'dead_letter'}``: every item comes out once, with its page's text
    when one could be had (see the module docstring); one dead letter per failed page.

    With ``output_root`` the page cache is read from it and the run's entries are staged under
    ``stage_root`` (the run's staging folder; the items wait until the cache is staged, so the
    run's commit comes after and publishes it with the rest of the run).
    """

    def __init__(self, settings: PageSettings, policy: NetworkPolicy, run: RunInfo, payload_cap: int,
                 output_root: str | None = None, disabled_feeds: Iterable[str] = (), streaming: bool = False,
                 stage_root: str | None = None):
        super().__init__()
        self._stage_root = stage_root or output_root
        self._streaming = streaming
        self._settings = settings
        self._policy = policy
        self._run = run
        self._payload_cap = payload_cap
        self._root = output_root
        self._disabled = frozenset(disabled_feeds)

    def expand(self, items):
        planned = items | "Plan" >> beam.ParDo(
            _PlanFn(self._settings, self._root, self._run.ingested_at, self._disabled)).with_outputs(
            "fetch", main="kept")
        if self._streaming:  # unbounded: no GroupByKey in the global window; keyed state instead
            fetched = planned.fetch | "FetchKeyed" >> beam.ParDo(_FetchKeyedFn(
                self._settings, self._policy, self._run.run_id, self._payload_cap)).with_outputs(
                DEAD_LETTER, main="items")
            out = (planned.kept, fetched.items) | "AllItems" >> beam.Flatten()
            return {"items": out, DEAD_LETTER: fetched[DEAD_LETTER]}
        fetched = (planned.fetch
                   | "ByHostShard" >> beam.GroupByKey()
                   | "Fetch" >> beam.ParDo(_FetchFn(self._settings, self._policy, self._run,
                                                    self._payload_cap)).with_outputs(DEAD_LETTER, CACHE,
                                                                                     main="items"))
        out = (planned.kept, fetched.items) | "AllItems" >> beam.Flatten()
        if self._root:
            root, run_id = self._stage_root, self._run.run_id
            staged = (fetched[CACHE]
                      | "CacheEntries" >> beam.combiners.ToList()
                      | "StageCache" >> beam.Map(_stage_cache, root, run_id))
            out = out | "AfterCacheStaged" >> beam.Map(lambda item, _: item, beam.pvalue.AsSingleton(staged))
        return {"items": out, DEAD_LETTER: fetched[DEAD_LETTER]}
