"""Fault injection on local disk: kill -9 at every stage of the commit, disk full, concurrent writers,
inbox growth and archiving, killed replacement runs. Real `newsbeam run` processes on real files;
after each fault a normal run, then :func:`faults.check_archive`: 0 lost and 0 duplicated rows,
counters that match the files, no leftovers.

The quick subset runs in `make test`; the exhaustive variants are marked ``faults`` and run by
`make test-faults` (CI runs both).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from faults import PROJECT, check, make_inputs, newsbeam, write_article
from feeds_server import FeedServer, static

KILLED = -signal.SIGKILL


def run_ok(*args: str, **kwargs) -> subprocess.CompletedProcess:
    done = newsbeam("run", "--no-summary", *args, **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """An output root with history (a committed run over two seeds), the full input, the article
    ids a clean run gives, and the fault points such a run passes, in order."""
    base = tmp_path_factory.mktemp("faults")
    inputs = make_inputs(base / "in")
    history_in = base / "history"
    history_in.mkdir()
    for name in sorted(os.listdir(base / "in"))[:2]:
        shutil.copy(base / "in" / name, history_in / name)
    template = base / "template"
    run_ok("--input", str(history_in / "*.txt"), "--output", str(template))
    reference = base / "reference"
    shutil.copytree(template, reference)
    trace = base / "trace.txt"
    run_ok("--input", inputs, "--output", str(reference), env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    result = check(str(reference))
    assert result["problems"] == [] and result["articles"] == 5
    points = trace.read_text().split()
    return {"base": base, "inputs": inputs, "template": template, "ids": result["article_ids"], "points": points}


def kill_then_recover(scenario, index: int, tag: str, extra: tuple[str, ...] = (), kind: str = "AFTER") -> dict:
    output = scenario["base"] / f"{tag}-{index}"
    shutil.copytree(scenario["template"], output)
    env = {f"NEWSBEAM_FAULT_{kind}": f"*:{index}"}
    faulted = newsbeam("run", "--no-summary", "--input", scenario["inputs"], "--output", str(output), *extra, env=env)
    if kind == "AFTER":
        assert faulted.returncode == KILLED, (index, faulted.returncode, faulted.stderr[-2000:])
    else:
        assert faulted.returncode == 1 and "No space left" in faulted.stderr, faulted.stderr[-2000:]
    run_ok("--input", scenario["inputs"], "--output", str(output))
    result = check(str(output))
    assert result["problems"] == [], (index, scenario["points"][index - 1], result["problems"])
    assert result["article_ids"] == scenario["ids"], (index, scenario["points"][index - 1])
    return result


def first_of_each_kind(points: list[str]) -> list[int]:
    seen: dict[str, int] = {}
    for number, name in enumerate(points, start=1):
        seen.setdefault(name, number)
    return sorted(seen.values())


def test_a_normal_run_passes_every_stage_of_the_protocol(scenario):
    kinds = set(scenario["points"])
    assert {"parquet", "commit_record", "publish", "manifest", "cleanup"} <= kinds, kinds


def test_kill_before_at_and_after_the_commit_point_loses_and_duplicates_nothing(scenario):
    first = {name: number for number, name in reversed(list(enumerate(scenario["points"], start=1)))}
    for name in ("parquet", "commit_record", "publish", "manifest"):
        kill_then_recover(scenario, first[name], "kill")


@pytest.mark.faults
def test_kill_at_the_first_point_of_each_stage_loses_and_duplicates_nothing(scenario):
    for index in first_of_each_kind(scenario["points"]):
        kill_then_recover(scenario, index, "kill")


@pytest.mark.faults
def test_kill_after_every_file_the_run_creates(scenario):
    for index in range(1, len(scenario["points"]) + 1):
        kill_then_recover(scenario, index, "killall")


@pytest.mark.faults
def test_disk_full_at_every_stage(scenario):
    for index in range(1, len(scenario["points"]) + 1):
        kill_then_recover(scenario, index, "enospc", kind="ENOSPC")


@pytest.mark.faults
def test_killed_replacement_run_is_finished_or_undone(scenario):
    """``--replace-run`` killed at each of its stages, then a normal run: the replaced run's rows or
    the replacement's, never both and never neither."""
    base = scenario["base"]
    for index in first_of_each_kind(scenario["points"]):
        output = base / f"replace-{index}"
        shutil.copytree(scenario["template"], output)
        first = newsbeam("run", "--json", "--input", scenario["inputs"], "--output", str(output))
        assert first.returncode == 0, first.stderr[-2000:]
        import json

        run_id = json.loads(first.stdout)["run_id"]
        faulted = newsbeam("run", "--no-summary", "--input", scenario["inputs"], "--output", str(output),
                           "--replace-run", run_id, env={"NEWSBEAM_FAULT_AFTER": f"*:{index}"})
        assert faulted.returncode in (KILLED, 0), faulted.stderr[-2000:]
        run_ok("--input", scenario["inputs"], "--output", str(output))
        result = check(str(output))
        assert result["problems"] == [] and result["article_ids"] == scenario["ids"], (index, result["problems"])


def test_real_disk_full_on_a_small_filesystem(scenario, tmp_path):
    """A tmpfs with little room left: the run fails (exit 1), nothing partial is visible; with room
    again the next run ingests everything once."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        for free_kb in (8, 48, 160):
            output = mount / f"out-{free_kb}"
            shutil.copytree(scenario["template"], output)
            filler = mount / "filler"
            stat = os.statvfs(mount)
            size = stat.f_bavail * stat.f_frsize - free_kb * 1024
            with open(filler, "wb") as handle:
                try:
                    handle.write(b"\0" * max(0, size))
                except OSError:
                    pass
            faulted = newsbeam("run", "--no-summary", "--input", scenario["inputs"], "--output", str(output))
            filler.unlink()
            if faulted.returncode == 0:  # it fitted: still a valid archive
                assert check(str(output))["problems"] == []
                continue
            assert faulted.returncode == 1, faulted.stderr[-2000:]
            run_ok("--input", scenario["inputs"], "--output", str(output))
            result = check(str(output))
            assert result["problems"] == [] and result["article_ids"] == scenario["ids"], (free_kb, result)
            shutil.rmtree(output)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_second_writer_is_refused_with_the_holder_named_or_waits(tmp_path):
    inputs = make_inputs(tmp_path / "in", extra=40)
    output = tmp_path / "out"
    env = {"PYTHONPATH": str(PROJECT)}
    first = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--no-summary", "--input", inputs,
                              "--output", str(output)], cwd=PROJECT, env={**os.environ, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    owner = output / "_lock" / "owner.json"
    deadline = time.monotonic() + 120
    while not owner.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    refused = newsbeam("run", "--no-summary", "--input", inputs, "--output", str(output))
    waited = newsbeam("run", "--no-summary", "--input", inputs, "--output", str(output), "--wait-lock", "300")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    if owner.exists() or refused.returncode != 0:
        assert refused.returncode == 1 and "is being written by run files-" in refused.stderr, refused.stderr
    assert waited.returncode == 0, waited.stderr[-2000:]
    result = check(str(output))
    assert result["problems"] == [] and result["articles"] == 45


@pytest.mark.parametrize("writers", [2, 3])
def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path, writers):
    """Several runs started at once on one output, overlapping inputs, all with --wait-lock."""
    base = tmp_path / "in"
    folders = []
    for w in range(writers):
        folder = base / f"w{w}"
        folder.mkdir(parents=True)
        for i in range(w * 10, w * 10 + 20):  # each overlaps the next by 10 articles
            write_article(folder / f"a{i:03d}.txt", i)
        folders.append(str(folder / "*.txt"))
    output = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--no-summary", "--input", pattern,
                               "--output", str(output), "--wait-lock", "600"], cwd=PROJECT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for pattern in folders]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
    result = check(str(output))
    assert result["problems"] == []
    assert result["articles"] == 10 * writers + 10
    assert len(result["runs"]) == writers


def test_inbox_growth_and_archiving_never_remove_articles(tmp_path):
    inbox, archive, output = tmp_path / "inbox", tmp_path / "archive", tmp_path / "out"
    inbox.mkdir()
    archive.mkdir()
    for i in range(3):
        write_article(inbox / f"a{i}.txt", i)
    run_ok("--input", str(inbox / "*.txt"), "--output", str(output))
    assert check(str(output))["articles"] == 3
    for i in range(3, 5):  # the inbox grows
        write_article(inbox / f"a{i}.txt", i)
    run_ok("--input", str(inbox / "*.txt"), "--output", str(output))
    result = check(str(output))
    assert result["problems"] == [] and result["articles"] == 5
    for name in sorted(os.listdir(inbox))[:4]:  # the operator archives what was processed
        shutil.move(str(inbox / name), archive / name)
    write_article(inbox / "a5.txt", 5)
    run_ok("--input", str(inbox / "*.txt"), "--output", str(output))
    result = check(str(output))
    assert result["problems"] == [] and result["articles"] == 6
    assert len(result["runs"]) == 3


def test_replace_run_swaps_rows_in_one_commit(tmp_path):
    import json

    inbox, output = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for i in range(4):
        write_article(inbox / f"a{i}.txt", i)
    first = newsbeam("run", "--json", "--input", str(inbox / "*.txt"), "--output", str(output))
    run_id = json.loads(first.stdout)["run_id"]
    again = newsbeam("run", "--json", "--input", str(inbox / "*.txt"), "--output", str(output),
                     "--replace-run", run_id)
    assert again.returncode == 0, again.stderr[-2000:]
    manifest = json.loads(again.stdout)
    assert manifest["counters"]["articles"] == 4 and manifest["replaced_runs"] == [run_id]
    result = check(str(output))
    assert result["problems"] == [] and result["articles"] == 4 and result["runs"] == [manifest["run_id"]]
    unknown = newsbeam("run", "--input", str(inbox / "*.txt"), "--output", str(output), "--replace-run", "nope")
    assert unknown.returncode == 2 and "no committed run" in unknown.stderr


def test_a_used_run_id_is_refused(tmp_path):
    inbox, output = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_article(inbox / "a.txt", 1)
    run_ok("--input", str(inbox / "*.txt"), "--output", str(output), "--run-id", "r1")
    again = newsbeam("run", "--input", str(inbox / "*.txt"), "--output", str(output), "--run-id", "r1")
    assert again.returncode == 2 and "already used" in again.stderr


@pytest.mark.parametrize("argv, message", [
    (["run", "--output", "{out}", "--ouput", "{out}2"], "unrecognized arguments: --ouput"),
    (["run", "--output", "{out}", "--inptu", "a/*.txt"], "unrecognized arguments: --inptu"),
    (["run", "--output", "{out}", "--input", "data/seeds/000.txt", "data/seeds/001.txt"], "quote it"),
    (["run", "--output", "{out}", "--project", "p"], "Beam pipeline options go after a literal --"),
    (["query", "--output", "{out}", "SELECT 1", "--", "--project", "p"], "takes no Beam options"),
])
def test_unknown_options_exit_2_before_anything_is_written(tmp_path, argv, message):
    out = tmp_path / "out"
    done = newsbeam(*(a.format(out=out) for a in argv))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not out.exists() and not pathlib.Path(f"{out}2").exists()


def test_a_committed_run_is_finished_after_the_archive_moved(scenario, tmp_path):
    """Commit records and manifests hold paths relative to the output root: a run killed after its
    commit point, its archive then moved (copied, remounted), is finished at the new place."""
    commit_at = scenario["points"].index("commit_record") + 1
    first_publish = scenario["points"].index("publish", commit_at - 1) + 1
    written = scenario["base"] / "moved-from"
    shutil.copytree(scenario["template"], written)
    faulted = newsbeam("run", "--no-summary", "--input", scenario["inputs"], "--output", str(written),
                       env={"NEWSBEAM_FAULT_AFTER": f"*:{first_publish}"})
    assert faulted.returncode == KILLED, faulted.stderr[-2000:]
    moved = tmp_path / "moved-to"
    shutil.move(str(written), moved)
    records = [json.loads(r.read_text()) for r in (moved / "_commits").glob("*.json")]
    paths = [p for r in records for f in r["files"] for p in (f["path"], f["staged"])]
    assert paths and not [p for p in paths if p.startswith("/")], paths[:3]
    run_ok("--input", scenario["inputs"], "--output", str(moved))
    result = check(str(moved))
    assert result["problems"] == [] and result["article_ids"] == scenario["ids"]
    manifests = [json.loads(p.read_text()) for p in (moved / "_runs").glob("*.json")]
    assert [f["path"] for m in manifests for f in m["files"] if f["path"].startswith("/")] == []


def static_feed_body() -> bytes:
    """Six entries published in the hour before now; served unchanged on every request (a restarted
    stream finds what the killed one found)."""
    published = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    items = "".join(
        f"<item><title>Story {i}</title><link>http://news.test/story/{i}</link><guid>story-{i}</guid>"
        f"<pubDate>{email.utils.format_datetime(published - dt.timedelta(minutes=i))}</pubDate>"
        f"<description>Entry number {i} of a static feed, long enough to be an article body.</description>"
        f"</item>" for i in range(1, 7))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Static</title>'
            f"<link>http://news.test/</link><description>t</description>{items}</channel></rss>").encode()


@pytest.fixture
def static_feeds(tmp_path):
    with FeedServer() as server:
        server.routes["/feed.xml"] = static(static_feed_body())
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"allow_private_networks: true\nfeeds:\n  - name: static\n"
                         f"    url: {server.url('/feed.xml')}\n    language: en\n")
        yield feeds


def stream_args(feeds, output) -> tuple[str, ...]:
    return ("stream", "--feeds", str(feeds), "--output", str(output), "--duration", "0.5", "--poll-interval", "5")


def kill_stream_then_restart(feeds, output, fault: str) -> None:
    """Kill a bounded stream at ``fault`` (``point:n``), restart it, check the archive."""
    killed = newsbeam(*stream_args(feeds, output), env={"NEWSBEAM_FAULT_AFTER": fault})
    assert killed.returncode == KILLED, killed.stderr[-2000:]
    if fault.startswith(("parquet", "commit_record")) and fault.endswith(":1"):
        # killed before the first commit point: staged only, no reader sees a file
        assert not (output / "articles").exists() or not list((output / "articles").rglob("*.parquet"))
    restarted = newsbeam(*stream_args(feeds, output))
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    result = check(str(output))
    assert result["problems"] == [], (fault, result["problems"])
    assert result["articles"] == 6 and len(set(result["article_ids"])) == 6, fault
    assert [p for p in (output / "_staging").rglob("*") if p.is_file()] == [], fault


@pytest.mark.parametrize("point", ["commit_record", "publish"])
def test_killed_stream_firing_is_rolled_back_or_finished_by_the_restart(static_feeds, tmp_path, point):
    """A stream killed before a window firing's commit record leaves nothing visible; killed after
    it, the restarted stream (same id, a new attempt) finishes that firing and finds its articles in
    the index. Either way: every file listed once, counters equal to rows, each entry an article once."""
    kill_stream_then_restart(static_feeds, tmp_path / "out", f"{point}:1")


@pytest.mark.faults
def test_kill_a_stream_at_the_first_point_of_each_stage(static_feeds, tmp_path):
    trace = tmp_path / "trace.txt"
    clean = newsbeam(*stream_args(static_feeds, tmp_path / "clean"), env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    assert clean.returncode == 0, clean.stderr[-2000:]
    points = trace.read_text().split()
    assert {"parquet", "commit_record", "publish", "manifest", "cleanup"} <= set(points), points
    for index in first_of_each_kind(points):
        name = points[index - 1]
        kill_stream_then_restart(static_feeds, tmp_path / f"kill-{index}", f"{name}:{points[:index].count(name)}")
