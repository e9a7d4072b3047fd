"""Every matched path is accounted: odd entries of an input folder each end as exactly one article,
duplicate or dead letter (with the path and the reason); nothing hangs, nothing crashes.

Real entries made in tmp_path (symlinks, a symlink loop, a FIFO, a socket, a directory named
``x.txt``, names with a backslash, glob characters or bytes that are not UTF-8), read by a real
TestPipeline and by the real ``python -m pipeline run`` in a subprocess (a timeout guards the FIFO).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import apache_beam as beam
import duckdb
import pytest
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, PROJECT, make_test_pipeline
from pipeline.chunking import literal_pattern, matched_files
from transforms.common import DEAD_LETTER, RunInfo
from transforms.read import ReadArticleFiles, display_path, glob_regex, match_local

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, sockets and byte file names as on Linux")

BAD_NAME = b"bad\xff-name.txt"  # not valid UTF-8
# name -> (outcome, fragment of the dead letter's error); articles are "article" (duplicates included)
EXPECTED = {
    "good.txt": ("article", None),
    "target.txt": ("article", None),
    "link_ok.txt": ("article", None),          # symlink to a regular file: followed (a copy of target.txt)
    "back\\slash.txt": ("article", None),
    "star*.txt": ("article", None),
    "q[1].txt": ("article", None),
    "dangling.txt": ("dead", "dangling symlink"),
    "loop_a.txt": ("dead", "symlink loop"),
    "loop_b.txt": ("dead", "symlink loop"),
    "dir.txt": ("dead", "a directory"),
    "link_dir.txt": ("dead", "a directory"),
    "fifo.txt": ("dead", "a fifo"),
    "sock.txt": ("dead", "a socket"),
    "null.txt": ("dead", "a character device"),  # symlink to /dev/null
    os.fsdecode(BAD_NAME): ("dead", "not valid utf-8"),
}


def make_odd_folder(folder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.txt").write_text("Good title\nThe body of a good file.\n", encoding="utf-8")
    (folder / "target.txt").write_text("Target title\nThe body that a symlink points at.\n", encoding="utf-8")
    (folder / "back\\slash.txt").write_text("Backslash\nA file whose name has a backslash.\n", encoding="utf-8")
    (folder / "star*.txt").write_text("Star\nA file whose name has a star.\n", encoding="utf-8")
    (folder / "q[1].txt").write_text("Bracket\nA file whose name has brackets.\n", encoding="utf-8")
    os.symlink("target.txt", folder / "link_ok.txt")
    os.symlink("missing.txt", folder / "dangling.txt")
    os.symlink("loop_b.txt", folder / "loop_a.txt")
    os.symlink("loop_a.txt", folder / "loop_b.txt")
    (folder / "dir.txt").mkdir()
    (folder / "dir.txt" / "inside.txt").write_text("Not matched by *.txt one level up.\n", encoding="utf-8")
    os.symlink("dir.txt", folder / "link_dir.txt")
    os.mkfifo(folder / "fifo.txt")
    os.symlink("/dev/null", folder / "null.txt")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock.txt"))
    with open(os.path.join(os.fsencode(folder), BAD_NAME), "wb") as handle:
        handle.write(b"Bad name\nThe content of a file whose name is not UTF-8.\n")


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd") / "inbox"
    make_odd_folder(folder)
    return folder


def _origin(folder, name: str) -> str:
    return display_path(os.path.join(str(folder), name))


# -- matching ------------------------------------------------------------------

def test_match_lists_every_entry_beam_would_drop(odd):
    paths = match_local(str(odd / "*.txt"))
    assert sorted(os.fsencode(p) for p in paths) == sorted(os.path.join(os.fsencode(odd), n)
                                                            for n in os.listdir(os.fsencode(odd)))
    assert len(paths) == len(EXPECTED)
    # the chunked run lists the same paths, and each path's literal pattern matches that path only
    assert matched_files([str(odd / "*.txt")]) == paths
    for path in paths:
        assert match_local(literal_pattern(path)) == [path], path


def test_glob_semantics():
    assert glob_regex("in/*.txt").match("in/back\\slash.txt")
    assert not glob_regex("in/*.txt").match("in/sub/a.txt")
    assert glob_regex("in/**.txt").match("in/sub/a.txt")
    assert not glob_regex("in/?.txt").match("in//.txt")
    assert glob_regex("in/[!b]*").match("in/a") and not glob_regex("in/[!b]*").match("in/b")
    assert glob_regex("in/[[]1].txt").match("in/[1].txt") and not glob_regex("in/[[]1].txt").match("in/1.txt")
    assert glob_regex("in/a[*].txt").match("in/a*.txt") and not glob_regex("in/a[*].txt").match("in/ab.txt")
    assert glob_regex("in/a[/]b").match("in/a/b") is None


def test_recursive_pattern_traverses_directories_and_never_follows_link_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / "b" / "y.txt").write_text("y")
    (tmp_path / "a" / "empty").mkdir()
    os.symlink("..", tmp_path / "a" / "b" / "up")  # a directory loop: glob.glob('**') recurses ~40 levels
    found = match_local(str(tmp_path / "**"))
    # directories are traversed, not matched; the symlink is listed (it is a dead letter), not followed
    assert found == sorted(str(tmp_path / p) for p in ("a/x.txt", "a/b/y.txt", "a/b/up"))
    assert match_local(str(tmp_path / "**" / "*.txt")) == [str(tmp_path / "a/b/y.txt"), str(tmp_path / "a/x.txt")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists every directory")
def test_a_directory_that_cannot_be_listed_is_matched(tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.txt").write_text("a")
    os.chmod(tmp_path / "locked", 0)
    try:
        assert match_local(str(tmp_path / "*" / "*.txt")) == [str(tmp_path / "locked")]
    finally:
        os.chmod(tmp_path / "locked", 0o755)


# -- the read transform ----------------------------------------------------------

def test_read_transform_accounts_for_every_matched_path(odd):
    run = RunInfo(run_id="test-paths", ingested_at=FIXED_NOW)
    p = make_test_pipeline()
    with p:
        read = p | ReadArticleFiles([str(odd / "*.txt")], "files", run, max_bytes=10_000, payload_cap=4096,
                                    max_title_chars=200)
        outcomes = (
            (read["items"] | "ItemOrigins" >> beam.Map(lambda i: (i["origin"], "article", None)),
             read[DEAD_LETTER] | "DeadOrigins" >> beam.Map(lambda d: (d["origin"], "dead", d["error"])))
            | beam.Flatten())
        matched = read["matched"] | beam.FlatMap(lambda batch: batch) | beam.combiners.Count.Globally()

        def check(rows):
            by_origin = {}
            for origin, outcome, error in rows:
                assert origin not in by_origin, f"{origin} came out twice"
                by_origin[origin] = (outcome, error)
            assert sorted(by_origin) == sorted(_origin(odd, n) for n in EXPECTED)
            for name, (outcome, fragment) in EXPECTED.items():
                got, error = by_origin[_origin(odd, name)]
                assert got == outcome, (name, error)
                if fragment:
                    assert fragment in error.lower(), (name, error)

        assert_that(outcomes, check, label="one outcome per path")
        assert_that(matched, equal_to([len(EXPECTED)]), label="matched count")


# -- the real run command --------------------------------------------------------

def _run_cli(inputs: str, output, *extra) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--input", inputs, "--output", str(output), "--json", *extra],
        cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)}, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return json.loads(done.stdout)


def _landed(output) -> list[tuple[str, str]]:
    with duckdb.connect() as con:
        def origins(table):
            return con.sql(f"SELECT origin FROM read_parquet('{output}/{table}/**/*.parquet')").fetchall()
        return sorted([(o, "article") for (o,) in origins("articles") + origins("duplicates")]
                      + [(o, "dead") for (o,) in origins("errors")])


@pytest.mark.parametrize("chunked", [False, True], ids=["one-run", "chunked"])
def test_run_command_lands_every_path_exactly_once(odd, tmp_path, chunked):
    extra = ("--max-files-per-run", "4") if chunked else ()
    manifest = _run_cli(str(odd / "*.txt"), tmp_path / "out", *extra)
    assert manifest["status"] == "committed"
    c = manifest["counters"]
    assert c["inputs"] == len(EXPECTED) and c["balanced"] is True
    assert (c["articles"] + c["duplicates"], c["dead_letters"]) == (6, len(EXPECTED) - 6)
    assert _landed(tmp_path / "out") == sorted((_origin(odd, n), outcome) for n, (outcome, _) in EXPECTED.items())
    if chunked:
        assert len(manifest["chunks"]) == 4


def test_undecodable_name_keeps_its_bytes_and_content(odd, tmp_path):
    _run_cli(str(odd / "bad*"), tmp_path / "out")
    with duckdb.connect() as con:
        ((origin, stage, error, raw),) = con.sql(
            f"SELECT origin, stage, error, raw FROM read_parquet('{tmp_path}/out/errors/**/*.parquet')").fetchall()
    assert origin == str(odd) + "/bad\\xff-name.txt" and stage == "read"
    assert repr(os.path.join(os.fsencode(odd), BAD_NAME)) in error
    assert raw == b"Bad name\nThe content of a file whose name is not UTF-8.\n"
