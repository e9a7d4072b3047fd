"""Feed runs in committed chunks (pipeline/chunking.py ``run_feeds``): real Beam pipelines, a real
HTTP server on 127.0.0.1 for the feeds (tests/feeds_server.py) and one for the article pages
(tests/page_server.py), DuckDB over the Parquet output, and real ``newsbeam run`` processes killed
with SIGKILL between chunks.

The feeds: ``big`` (17 items: an exact copy and a near copy of earlier items, pages for six items
and two 404 pages), ``small`` (5 items, one an exact copy of a ``big`` item), ``validators`` (3
items, ETag), ``empty`` (no entry: a dead letter) and ``broken`` (HTTP 500). 25 items: with
``feeds.max_items_per_run: 9`` that is 3 chunks, and the result must equal the one-graph run's.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal

import duckdb
import pytest
import yaml
from conftest import FIXED_NOW, make_settings
from faults import check, newsbeam
from feeds_server import FeedServer, Response, rss, static, with_validators
from page_server import PageServer, html_page

from pipeline.chunking import max_items_per_run
from pipeline.config import ConfigError
from pipeline.feeds_pipeline import FeedSpool
from pipeline.launch import run_once
from transforms.feed_state import load_state
from transforms.page import load_page_cache

CHUNK = 9
KILLED = -signal.SIGKILL
FETCH = {"timeout_connect": 1, "timeout_total": 3, "max_bytes": 1_000_000, "max_redirects": 3,
         "backoff_base_seconds": 60, "backoff_max_seconds": 3600,
         "user_agent": "newsbeam-test/1 (+https://example.org)"}
FULL_TEXT = {"min_delay_seconds": 0.01, "timeout_total": 2, "timeout_connect": 1, "retries": 0, "concurrency": 4,
             "contact": "newsbeam-tests@example.org"}
WORDS = ("council market river harbour union budget school storm rail court minister energy water festival police "
         "border museum bridge vaccine election grain tariff coast airport strike mayor climate forest housing bank "
         "report village factory doctor season traffic island tunnel library youth pension drought harvest").split()
PAGES = (0, 5, 6, 10, 11, 16)       # big items whose link is a page on the page server
MISSING = (3, 9)                   # big items whose page is a 404 (a page dead letter each)


def text(seed: int, words: int = 45) -> str:
    rng = random.Random(seed)
    return " ".join([rng.choice(WORDS) for _ in range(words - 3)] + [f"tag{seed}a", f"tag{seed}b", f"tag{seed}c"])


def item(guid: str, title: str, body: str, day: int, link: str | None = None) -> dict:
    out = {"guid": guid, "title": title, "description": body, "pubDate": f"{day:02d} Nov 2026 10:00:00 GMT"}
    if link:
        out["link"] = link
    return out


def page(i: int) -> str:
    paragraphs = "".join(f"<p>Paragraph {j} of story {i}: {text(1000 + 10 * i + j, 30)}.</p>" for j in range(5))
    return (f"<html lang='en'><head><title>Story {i}</title></head><body><nav>Home | World</nav><article>"
            f"<h1>Story {i} in full</h1>{paragraphs}</article><footer>Contact</footer></body></html>")


@pytest.fixture(scope="module")
def servers():
    with FeedServer() as feeds, PageServer() as pages:
        big = []
        for i in range(17):
            link = pages.url(f"/a/{i}.html") if i in PAGES + MISSING else None
            title, body, day = f"Story {i} {text(i, 5)}", text(i), 1 + i
            if i == 15:    # an exact copy of item 1, later: a duplicate in the chunk after
                title, body = f"Story 1 {text(1, 5)}", text(1)
            if i == 12:    # a near copy of item 4 (three words dropped), later
                title, body = f"Story 4 {text(4, 5)}", " ".join(text(4).split()[:-3] + [f"tag{4}c"])
            big.append(item(f"big-{i}", title, body, day, link))
        for i in PAGES:
            pages.routes[f"/a/{i}.html"] = html_page(page(i))
        small = [item(f"small-{i}", f"Small {i} {text(100 + i, 5)}", text(100 + i), 20 + i) for i in range(5)]
        small[0] = item("small-0", f"Story 2 {text(2, 5)}", text(2), 25)    # copies big-2
        validated = [item(f"v-{i}", f"Checked {i} {text(200 + i, 5)}", text(200 + i), 26) for i in range(3)]
        feeds.routes["/big"] = static(rss("Big", big, language="en"))
        feeds.routes["/small"] = static(rss("Small", small, language="en"))
        feeds.routes["/validators"] = with_validators(rss("Validated", validated, language="en"), '"v1"',
                                                      "Fri, 27 Nov 2026 10:00:00 GMT")
        feeds.routes["/empty"] = static(rss("Empty", []))
        feeds.routes["/broken"] = lambda request: Response(500, b"internal error")
        yield feeds, pages


def feeds_file(folder: pathlib.Path, feeds: FeedServer) -> str:
    path = folder / "feeds.yaml"
    path.write_text(yaml.safe_dump({
        "allow_private_networks": True, "fetch": FETCH, "full_text": FULL_TEXT,
        "feeds": [{"name": n, "url": feeds.url(f"/{n}")} for n in ("big", "small", "validators", "empty", "broken")]},
        sort_keys=False))
    return str(path)


def query(output, sql: str) -> list[tuple]:
    con = duckdb.connect()
    for table in ("articles", "duplicates", "errors", "feed_status"):
        if list(pathlib.Path(output, table).rglob("*.parquet")):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{output}/{table}/**/*.parquet', "
                        "hive_partitioning=true, union_by_name=true)")
    return sorted(con.execute(sql).fetchall(), key=repr)


def manifests(output) -> dict[str, dict]:
    folder = pathlib.Path(output, "_runs")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def core(counters: dict) -> dict:
    return {k: v for k, v in counters.items() if k != "balanced"}


ARTICLE_COLUMNS = ("article_id, source, title, body, text_source, fetch_status, published_at, content_hash, "
                   "language, topics")
DUPLICATE_COLUMNS = "article_id, duplicate_of, method, source, title"
ERROR_COLUMNS = "source, origin, stage, error, raw_size"
STATUS_COLUMNS = "feed, outcome, http_status, error, entries_seen, new_articles, etag"


@pytest.fixture(scope="module")
def runs(servers, tmp_path_factory):
    feeds, _ = servers
    base = tmp_path_factory.mktemp("feed-chunks")
    path = feeds_file(base, feeds)

    def run(name: str, size: int):
        settings = make_settings(base / name, feeds_file=path, feeds={"full_text": True, "max_items_per_run": size})
        return run_once(settings, now=FIXED_NOW)

    whole = run("whole", 0)        # one Beam graph fetches, parses and runs everything
    chunked = run("chunked", CHUNK)
    return base, whole, chunked, path


def test_a_feed_larger_than_the_chunk_size_runs_as_committed_chunks(runs):
    base, whole, chunked, _ = runs
    assert "chunks" not in whole and whole["counters"]["balanced"]
    assert chunked["status"] == "committed" and chunked["max_items_per_run"] == CHUNK
    ids = chunked["chunks"]
    assert ids == [f"{chunked['run_id']}-c000{n}" for n in (1, 2, 3)]
    found = manifests(base / "chunked")
    assert set(found) == {chunked["run_id"], *ids}
    sizes = []
    for number, chunk_id in enumerate(ids, start=1):
        m = found[chunk_id]
        assert m["status"] == "committed" and m["parent_run_id"] == chunked["run_id"] and m["counters"]["balanced"]
        assert m["counters"]["inputs"] >= 1
        # Only the last chunk commits the feeds' state and status rows (and the empty feed's dead letter).
        tables = {f["table"] for f in m["files"]}
        assert all(not f["path"].startswith(("/", str(base))) for f in m["files"])  # relative to the root
        assert ("feed_status" in tables) == (number == 3), (chunk_id, tables)
        assert m["feeds"]["count"] == (5 if number == 3 else 0)
        feed_items = query(base / "chunked", f"SELECT count(*) FROM (SELECT article_id FROM articles WHERE run_id = "
                                             f"'{chunk_id}' UNION ALL SELECT article_id FROM duplicates WHERE run_id = "
                                             f"'{chunk_id}')")[0][0]
        sizes.append(feed_items)
    assert sizes == [9, 9, 7] and sum(sizes) == 25
    assert query(base / "chunked", "SELECT DISTINCT run_id FROM feed_status") == [(ids[-1],)]
    assert query(base / "chunked", "SELECT run_id FROM errors WHERE stage = 'feed_parse'") == [(ids[-1],)]


def test_chunks_give_the_articles_duplicates_and_dead_letters_of_one_run(runs):
    base, whole, chunked, _ = runs
    for columns, table in ((ARTICLE_COLUMNS, "articles"), (DUPLICATE_COLUMNS, "duplicates"),
                           (ERROR_COLUMNS, "errors"), (STATUS_COLUMNS, "feed_status")):
        one = query(base / "whole", f"SELECT {columns} FROM {table}")
        assert one, table
        assert query(base / "chunked", f"SELECT {columns} FROM {table}") == one, table
    assert core(chunked["counters"]) == core(whole["counters"]) and chunked["counters"]["balanced"]
    counters = whole["counters"]
    assert (counters["inputs"], counters["articles"], counters["duplicates"], counters["dead_letters"]) == \
        (25 + 1 + len(MISSING), 22, 3, 1 + len(MISSING))
    methods = dict(query(base / "chunked", "SELECT article_id, method FROM duplicates"))
    assert sorted(methods.values()) == ["content_hash", "content_hash", "minhash"]
    assert chunked["feeds"] == whole["feeds"]
    assert chunked["feeds"]["count"] == 5 and chunked["feeds"]["articles_written"] == 22
    assert {k: v for k, v in chunked["feeds"]["outcomes"].items() if v} == {"ok": 3, "dead_letter": 1, "failed": 1}
    # The feeds' next state is the same (the run that last touched it aside).
    for name in ("big", "small", "validators", "empty", "broken"):
        url = query(base / "whole", f"SELECT url FROM feed_status WHERE feed = '{name}'")[0][0]
        a, b = load_state(str(base / "whole"), url), load_state(str(base / "chunked"), url)
        assert {k: v for k, v in a.items() if k != "last_run_id"} == {k: v for k, v in b.items() if k != "last_run_id"}
        assert b["last_run_id"] == chunked["run_id"]


def test_article_pages_are_fetched_and_cached_per_chunk(runs):
    base, whole, chunked, _ = runs
    pages = dict(query(base / "chunked", "SELECT url, fetch_status FROM articles WHERE url IS NOT NULL"))
    assert sorted(pages.values()) == ["http_404"] * len(MISSING) + ["ok"] * len(PAGES)  # 404: feed text kept
    texts = query(base / "chunked", "SELECT text_source, count(*) FROM articles GROUP BY 1")
    assert dict(texts)["page"] == len(PAGES)
    missing = query(base / "chunked", "SELECT stage, error FROM errors WHERE stage <> 'feed_parse'")
    assert len(missing) == len(MISSING) and all("404" in error for _, error in missing)
    cache = {url: e["status"] for url, e in load_page_cache(str(base / "chunked")).items()}
    assert cache == {url: e["status"] for url, e in load_page_cache(str(base / "whole")).items()}
    assert sorted(cache.values()) == sorted(["ok"] * len(PAGES) + ["http_404"] * len(MISSING))
    segments = sorted(p.name for p in pathlib.Path(base, "chunked", "_state", "pages").glob("*.jsonl"))
    # Chunk 1 holds big 0-8 (pages 0, 3, 5, 6), chunk 2 big 9-16 (pages 9, 10, 11, 16), chunk 3 none.
    assert segments == [f"seg-{c}.jsonl" for c in chunked["chunks"][:2]]
    assert chunked["page_cache"]["entries_published"] == len(PAGES) + len(MISSING)


def test_a_second_chunked_run_fetches_conditionally_and_adds_nothing(runs, servers):
    base, _, chunked, path = runs
    settings = make_settings(base / "chunked", feeds_file=path, feeds={"full_text": True, "max_items_per_run": CHUNK})
    again = run_once(settings, now=FIXED_NOW)
    assert "chunks" not in again and again["counters"]["inputs"] == 0 and again["counters"]["balanced"]
    outcomes = dict(query(base / "chunked",
                          f"SELECT feed, outcome FROM feed_status WHERE run_id = '{again['run_id']}'"))
    assert outcomes == {"big": "unchanged", "small": "unchanged", "validators": "not_modified", "empty": "unchanged",
                        "broken": "skipped_backoff"}
    assert not pathlib.Path(base, "chunked", "_spool").exists()


def test_chunk_size_rules(tmp_path):
    feeds = make_settings(tmp_path / "o", feeds_file="configs/feeds.yaml", feeds={"max_items_per_run": 7})
    assert max_items_per_run(feeds) == 7
    assert max_items_per_run(feeds, wait=False) == 0
    import dataclasses

    assert max_items_per_run(dataclasses.replace(feeds, runner="DataflowRunner")) == 0
    assert max_items_per_run(dataclasses.replace(feeds, inputs=("a/*.txt",))) == 0
    assert max_items_per_run(dataclasses.replace(feeds, replaces_runs=("feeds-x",))) == 0
    with pytest.raises(ConfigError, match="max_items_per_run"):
        make_settings(tmp_path / "o", feeds_file="configs/feeds.yaml", feeds={"max_items_per_run": -1})


def test_spool_cuts_items_and_puts_feed_dead_letters_last(tmp_path):
    spool = FeedSpool(str(tmp_path), 2)
    for i in range(5):
        spool.add_item({"guid": i})
    spool.add_dead_letter({"source": "empty"})
    chunks = spool.close()
    assert [(c.items, c.dead_letters, c.last) for c in chunks] == [(2, 0, False), (2, 0, False), (1, 1, True)]
    assert sorted(os.listdir(tmp_path)) == ["chunk-0001.pickle", "chunk-0002.pickle", "chunk-0003.pickle"]
    (tmp_path / "none").mkdir()
    empty = FeedSpool(str(tmp_path / "none"), 2).close()
    assert [(c.items, c.dead_letters, c.last) for c in empty] == [(0, 0, True)]


# -- kill -9 between chunks, then a normal run -----------------------------------------------------

@pytest.fixture(scope="module")
def fault_scenario(servers, runs, tmp_path_factory):
    """The article ids and dead letters of a clean run (the in-process chunked run above)."""
    feeds, _ = servers
    base = tmp_path_factory.mktemp("feed-faults")
    result = check(str(runs[0] / "chunked"))
    assert result["problems"] == [] and result["articles"] == 22
    errors = query(runs[0] / "chunked", f"SELECT {ERROR_COLUMNS} FROM errors")
    return {"base": base, "feeds": feeds_file(base, feeds), "ids": result["article_ids"], "errors": errors}


def run_cli(feeds: str, output: pathlib.Path, env: dict | None = None):
    return newsbeam("run", "--no-summary", "--feeds", feeds, "--output", str(output),
                    "--max-items-per-run", str(CHUNK), env=env)


def kill_then_run(scenario, fault: str, tag: str) -> dict:
    output = scenario["base"] / tag
    shutil.rmtree(output, ignore_errors=True)
    killed = run_cli(scenario["feeds"], output, env={"NEWSBEAM_FAULT_AFTER": fault})
    assert killed.returncode == KILLED, (fault, killed.returncode, killed.stderr[-2000:])
    normal = run_cli(scenario["feeds"], output)
    assert normal.returncode == 0, (fault, normal.stderr[-3000:])
    result = check(str(output))
    assert result["problems"] == [], (fault, result["problems"])
    assert result["article_ids"] == scenario["ids"], fault                     # 0 lost, 0 invented
    assert query(output, f"SELECT {ERROR_COLUMNS} FROM errors") == scenario["errors"], fault  # 0 doubled
    # One status row per feed and committing run; the first fetch's outcomes exactly once (a kill after
    # the last chunk's commit point is rolled forward, and the next run then finds the feeds unchanged).
    per_run = query(output, "SELECT run_id, list(feed ORDER BY feed) FROM feed_status GROUP BY run_id")
    assert all(feeds == ["big", "broken", "empty", "small", "validators"] for _, feeds in per_run), (fault, per_run)
    first = query(output, "SELECT feed, outcome FROM feed_status WHERE outcome IN ('ok', 'dead_letter', 'failed')")
    assert first == [("big", "ok"), ("broken", "failed"), ("empty", "dead_letter"), ("small", "ok"),
                     ("validators", "ok")], (fault, first)
    assert not (output / "_spool").exists() and not list(output.glob("_staging/*"))
    return result


def test_kill_between_chunks_and_after_the_first_commit_point_loses_and_doubles_nothing(fault_scenario):
    # After chunk 1 committed and published, before chunk 2 starts: its 9 items were committed, the
    # feeds' state was not advanced, so the next run fetches again and they come out as duplicates.
    kill_then_run(fault_scenario, "chunk:1", "between")
    output = fault_scenario["base"] / "between"
    assert query(output, "SELECT count(*) FROM duplicates")[0][0] == 3 + 9
    runs = manifests(output)
    assert sorted(m["status"] for m in runs.values() if "chunks" in m) == ["committed", "incomplete"]
    # Right after the first chunk's commit point (its commit record), before it published a file.
    kill_then_run(fault_scenario, "publish:1", "after-commit")


def chunk_fault_points(points: list[str]) -> list[int]:
    """Where to kill: the first and the last point of each kind (the first chunk's and the last
    chunk's of the commit steps), every spool file and every chunk boundary (1-based)."""
    chosen: set[int] = set()
    for name in set(points):
        numbers = [n for n, p in enumerate(points, start=1) if p == name]
        chosen.update({numbers[0], numbers[-1]})
        if name in ("spool", "chunk", "commit_record"):
            chosen.update(numbers)
    return sorted(chosen)


@pytest.mark.faults
@pytest.mark.timeout(3600)  # ~30 kills, two real runs each
def test_kill_at_each_stage_of_a_chunked_feed_run(fault_scenario):
    trace = fault_scenario["base"] / "trace.txt"
    clean = run_cli(fault_scenario["feeds"], fault_scenario["base"] / "traced",
                    env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    assert clean.returncode == 0, clean.stderr[-3000:]
    points = trace.read_text().split()
    assert points.count("chunk") == 3 and points.count("spool") == 3, points
    for index in chunk_fault_points(points):
        kill_then_run(fault_scenario, f"*:{index}", f"kill-{index}")
        print(f"killed at point {index} ({points[index - 1]}): recovered", flush=True)
