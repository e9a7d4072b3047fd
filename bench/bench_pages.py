"""Full-text extraction: quality and cost of extractors, and page-fetch throughput over many hosts.

usage:
  python -m bench.bench_pages compare --trafilatura-tests DIR --scrapinghub DIR [--limit N] [--json FILE]
  python -m bench.bench_pages throughput [--hosts 20] [--pages-per-host 5] [--delay 0.2] [--concurrency 8]

compare: every extractor on (a) trafilatura's evaluation set (``DIR`` = the ``tests/`` folder of
github.com/adbar/trafilatura: evaldata.json with hand-written must / must-not phrases per page) and
(b) the ScrapingHub article-extraction benchmark (``DIR`` = its checkout: ground-truth.json and
html/*.html.gz). Reports pages passing (every must-phrase in, no must-not phrase in), phrase recall
and leak rate, mean token F1 / precision / recall against the ground-truth text (bag of word
tokens, case-folded), and ms/page. Extractors: ``trafilatura`` (transforms/page.py ``extract``: text
and metadata, with trafilatura's fallbacks), ``trafilatura-no-fallbacks`` (the same without them),
``trafilatura-text-only`` (fallbacks, no metadata), ``readability`` (readability-lxml, then the
summary HTML to text), ``all-text`` (every visible text of the page: what no extractor gives).

throughput: the page fetcher (transforms/page.py PageFetcher: robots.txt, per-host spacing,
extraction) against ``--hosts`` local HTTP servers on 127.0.0.1, each serving
``--pages-per-host`` fixture pages (tests/fixtures/pages); reports pages/s and the extraction ms/page.

Without its inputs, ``compare`` exits 2. Nothing is written unless ``--json`` is given.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import re
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "tests" / "fixtures" / "pages"


# -- extractors -------------------------------------------------------------------------

def _trafilatura(html: bytes, url: str | None) -> str:
    from transforms.page import extract

    return extract(html, url)["text"] or ""


def _trafilatura_no_fallbacks(html: bytes, url: str | None) -> str:
    from transforms.page import extract

    return extract(html, url, fallbacks=False)["text"] or ""


def _trafilatura_text_only(html: bytes, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, include_comments=False, include_tables=True,
                               deduplicate=False) or ""


def _readability(html: bytes, url: str | None) -> str:
    from readability import Document
    from trafilatura.utils import decode_file

    from transforms.feeds import html_to_text

    # decoded the way trafilatura decodes (readability-lxml 0.8 fails on bytes input)
    return html_to_text(Document(decode_file(html), url=url).summary(html_partial=True))


def _all_text(html: bytes, url: str | None) -> str:
    from trafilatura.utils import decode_file

    from transforms.feeds import html_to_text

    return html_to_text(decode_file(html))


EXTRACTORS = {"trafilatura": _trafilatura, "trafilatura-no-fallbacks": _trafilatura_no_fallbacks,
              "trafilatura-text-only": _trafilatura_text_only, "readability": _readability, "all-text": _all_text}


# -- scoring ------------------------------------------------------------------------------

def _tokens(text: str) -> collections.Counter:
    return collections.Counter(re.findall(r"\w+", text.casefold()))


def token_scores(predicted: str, truth: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of the predicted text's word tokens against the truth's (bags)."""
    p, t = _tokens(predicted), _tokens(truth)
    overlap = sum((p & t).values())
    precision = overlap / sum(p.values()) if p else 0.0
    recall = overlap / sum(t.values()) if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    return precision, recall, f1


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_trafilatura_set(folder: pathlib.Path) -> list[tuple[str, bytes, dict]]:
    data = json.loads((folder / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, entry in sorted(data.items()):
        for sub in ("eval", "cache"):
            path = folder / sub / entry["file"]
            if path.is_file():
                pages.append((url, path.read_bytes(), entry))
                break
    return pages


def load_scrapinghub_set(folder: pathlib.Path) -> list[tuple[str, bytes, str]]:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    return [(value["url"], gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes()), value["articleBody"])
            for key, value in sorted(truth.items()) if (folder / "html" / f"{key}.html.gz").is_file()]


def compare(traf_pages, sh_pages, extractors=EXTRACTORS) -> dict[str, dict]:
    results = {}
    for name, fn in extractors.items():
        fn(b"<html><body><p>warm up</p></body></html>", None)
        times, passing, with_n, with_found, without_n, without_found = [], 0, 0, 0, 0, 0
        for url, html, entry in traf_pages:
            started = time.perf_counter()
            text = _squash(fn(html, url))
            times.append(time.perf_counter() - started)
            found = sum(_squash(p) in text for p in entry.get("with", []))
            leaked = sum(_squash(p) in text for p in entry.get("without", []))
            with_n += len(entry.get("with", []))
            with_found += found
            without_n += len(entry.get("without", []))
            without_found += leaked
            passing += found == len(entry.get("with", [])) and not leaked
        scores = []
        for url, html, truth in sh_pages:
            started = time.perf_counter()
            text = fn(html, url)
            times.append(time.perf_counter() - started)
            scores.append(token_scores(text, truth))
        results[name] = {
            "trafilatura_set": {"pages": len(traf_pages), "pages_passing": passing,
                                "with_recall": round(with_found / with_n, 4) if with_n else None,
                                "without_leak": round(without_found / without_n, 4) if without_n else None},
            "scrapinghub_set": {"pages": len(sh_pages),
                                "precision": round(statistics.fmean(s[0] for s in scores), 4) if scores else None,
                                "recall": round(statistics.fmean(s[1] for s in scores), 4) if scores else None,
                                "f1": round(statistics.fmean(s[2] for s in scores), 4) if scores else None},
            "ms_per_page_mean": round(1000 * statistics.fmean(times), 1) if times else None,
            "ms_per_page_median": round(1000 * statistics.median(times), 1) if times else None,
        }
    return results


# -- throughput over many local hosts ------------------------------------------------------------

def _serve(pages: dict[str, bytes]):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = pages.get(self.path)
            status = 200 if body is not None else 404
            body = body if body is not None else b"not found"
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):  # the fetcher closes after each response
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def throughput(hosts: int, pages_per_host: int, delay: float, concurrency: int) -> dict:
    import datetime as dt

    from transforms.fetch import NetworkPolicy
    from transforms.page import PageFetcher, PageSettings

    manifest = json.loads((FIXTURES / "pages.json").read_text(encoding="utf-8"))
    bodies = [gzip.decompress((FIXTURES / e["file"]).read_bytes()) for e in manifest]
    servers, work, k = [], [], 0
    for _ in range(hosts):
        pages = {}
        for j in range(pages_per_host):
            pages[f"/a/{j}.html"] = bodies[k % len(bodies)]
            k += 1
        server = _serve(pages)
        servers.append(server)
        work += [({"url": f"http://127.0.0.1:{server.server_address[1]}{p}", "source": "bench"}, None)
                 for p in pages]
    settings = PageSettings(min_delay_seconds=delay, concurrency=concurrency, timeout_total=20)
    fetcher = PageFetcher(settings, NetworkPolicy(allow_private_networks=True))
    try:
        started = time.perf_counter()
        results = fetcher.fetch_many(work, dt.datetime.now(dt.timezone.utc))
        elapsed = time.perf_counter() - started
    finally:
        fetcher.close()
        for server in servers:
            server.shutdown()
            server.server_close()
    statuses = collections.Counter(r[1] for r in results)
    extract_times = []
    from transforms.page import extract

    for body in bodies:
        t = time.perf_counter()
        extract(body, None)
        extract_times.append(time.perf_counter() - t)
    # The floor set by politeness: each host's pages are at least `delay` apart (robots.txt first).
    floor = pages_per_host * delay
    return {"hosts": hosts, "pages": len(work), "delay_s": delay, "concurrency": concurrency,
            "seconds": round(elapsed, 2), "pages_per_s": round(len(work) / elapsed, 1),
            "politeness_floor_s_per_host": round(floor, 2), "statuses": dict(statuses),
            "extract_ms_per_page_mean": round(1000 * statistics.fmean(extract_times), 1),
            "extract_ms_per_page_median": round(1000 * statistics.median(extract_times), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pages", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    cmp_ = sub.add_parser("compare", help="extractor quality and cost on public test sets")
    cmp_.add_argument("--trafilatura-tests", type=pathlib.Path)
    cmp_.add_argument("--scrapinghub", type=pathlib.Path)
    cmp_.add_argument("--limit", type=int, default=0, help="at most N pages of each set (0 = all)")
    cmp_.add_argument("--extractors", default=",".join(EXTRACTORS))
    cmp_.add_argument("--json", type=pathlib.Path, help="also write the figures to this file")
    thr = sub.add_parser("throughput", help="page fetch + extraction over many local hosts")
    thr.add_argument("--hosts", type=int, default=20)
    thr.add_argument("--pages-per-host", type=int, default=5)
    thr.add_argument("--delay", type=float, default=0.2)
    thr.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    if args.command == "compare":
        traf_ok = args.trafilatura_tests and (args.trafilatura_tests / "evaldata.json").is_file()
        sh_ok = args.scrapinghub and (args.scrapinghub / "ground-truth.json").is_file()
        if not (traf_ok or sh_ok):
            print("compare needs --trafilatura-tests DIR (with evaldata.json) and/or --scrapinghub DIR "
                  "(with ground-truth.json)", file=sys.stderr)
            return 2
        traf = load_trafilatura_set(args.trafilatura_tests) if traf_ok else []
        sh = load_scrapinghub_set(args.scrapinghub) if sh_ok else []
        if args.limit:
            traf, sh = traf[:args.limit], sh[:args.limit]
        chosen = {n: EXTRACTORS[n] for n in args.extractors.split(",")}
        figures = compare(traf, sh, chosen)
    elif args.command == "throughput":
        figures = throughput(args.hosts, args.pages_per_host, args.delay, args.concurrency)
    else:
        parser.print_help(sys.stderr)
        return 2
    print(json.dumps(figures, indent=2))
    if getattr(args, "json", None):
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
