"""Peak memory of a feed run against the feed's size: one generated RSS feed of N items.

``python -m bench.bench_feeds --items 10000,50000 [--code DIR] [--max-items-per-run N]``

For each N it writes a seeded RSS 2.0 feed (8-word titles, 45-word descriptions, like the
measurement in docs/data-safety-inputs.md), serves it from ``tests/feeds_server.py`` on 127.0.0.1
and runs ``python -m pipeline run --feeds ... --no-full-text`` (profile ``fast`` by default, so
language detection does not dominate the time) as a fresh process with ``PYTHONPATH=DIR``
(default: this checkout; give another checkout to measure its code side by side). It prints one
JSON line per run: items, peak RSS of the process tree (sampled from /proc every 50 ms), wall and
CPU seconds, the counters and the number of chunks. Nothing is written outside ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import sys

PROJECT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

WORDS = ("council market river harbour union budget school storm rail court minister energy water "
         "festival police border museum bridge vaccine election grain tariff coast airport museum "
         "strike mayor climate forest housing bank report village factory doctor season traffic "
         "island tunnel library youth pension drought harvest summit treaty engine satellite").split()


def feed_body(items: int, seed: int = 7) -> bytes:
    """An RSS 2.0 document of ``items`` distinct generated items (no two near duplicates)."""
    from xml.sax.saxutils import escape

    rng = random.Random(seed)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             "<title>Generated</title><link>https://bench.example.org/</link><language>en</language>"]
    for i in range(items):
        title = " ".join(rng.choice(WORDS) for _ in range(7)) + f" {i}"
        words = [rng.choice(WORDS) for _ in range(40)] + [f"n{i}x{j}" for j in range(5)]
        rng.shuffle(words)
        day = 1 + i % 28
        parts.append(f'<item><guid isPermaLink="false">bench-{i}</guid><title>{escape(title)}</title>'
                     f"<link>https://bench.example.org/a/{i}</link>"
                     f"<description>{escape(' '.join(words).capitalize())}.</description>"
                     f"<pubDate>Mon, {day:02d} Nov 2026 10:00:00 GMT</pubDate></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def measure(items: int, work: pathlib.Path, code: pathlib.Path, profile: str,
            max_items: int | None) -> dict:
    from bench.bench import run_measured
    from feeds_server import FeedServer, static

    folder = work / f"feed-{items}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    body = feed_body(items)
    with FeedServer() as server:
        server.routes["/big"] = static(body)
        feeds = folder / "feeds.yaml"
        feeds.write_text(json.dumps({"allow_private_networks": True,
                                     "fetch": {"max_bytes": 200_000_000, "timeout_total": 600},
                                     "feeds": [{"name": "big", "url": server.url("/big")}]}))
        args = [sys.executable, "-m", "pipeline", "run", "--json", "--profile", profile, "--no-full-text",
                "--feeds", str(feeds), "--output", str(folder / "out")]
        if max_items is not None:
            args += ["--max-items-per-run", str(max_items)]
        done = run_measured(args, code, env={**os.environ, "PYTHONPATH": str(code)})
    if done["returncode"] != 0:
        raise RuntimeError(f"feed run of {items} items failed ({done['returncode']}):\n{done['stderr'][-4000:]}")
    manifest = json.loads(done["stdout"])
    shutil.rmtree(folder, ignore_errors=True)
    return {"items": items, "feed_mb": round(len(body) / 2**20, 1), "code": str(code), "profile": profile,
            "max_items_per_run": max_items, "peak_rss_tree_mb": round(done["peak"] / 2**20, 1),
            "wall_seconds": round(done["wall"], 1), "cpu_seconds": round(done["cpu"], 1),
            "chunks": len(manifest.get("chunks") or []) or 1, "counters": {
                k: manifest["counters"][k] for k in ("inputs", "articles", "duplicates", "dead_letters", "balanced")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="10000,50000", help="comma-separated feed sizes (default: %(default)s)")
    parser.add_argument("--code", default=str(PROJECT), help="checkout whose pipeline runs (default: this one)")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--max-items-per-run", dest="max_items", type=int, default=None,
                        help="passed to the run (omit for code that has no such option)")
    parser.add_argument("--work", default=str(PROJECT / "bench" / "work" / "feeds"))
    args = parser.parse_args(argv)
    for n in [int(x) for x in args.items.split(",") if x.strip()]:
        print(json.dumps(measure(n, pathlib.Path(args.work), pathlib.Path(args.code).resolve(), args.profile,
                                 args.max_items)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
