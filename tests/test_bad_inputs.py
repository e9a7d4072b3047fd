"""Bad files next to good ones: each ends as an article, a duplicate or a dead letter; the run completes."""

from __future__ import annotations

import os
import random
import shutil

import duckdb
import pytest

from conftest import FIXED_NOW, SEEDS, make_settings
from pipeline.batch import run_batch

MAX_BYTES = 8_000      # above every seed (largest: 5.9 kB), below huge.txt
PAYLOAD_CAP = 512      # raw bytes kept per dead letter
LATIN1_TEXT = ("Größere Verteidigungsausgaben für die Nato\n"
               "Die Außenminister äußerten sich über die Höhe der Ausgaben. Übermäßig sei das nicht.")

# file name -> (stage, error fragment) of the dead letter it must become
DEAD = {
    "empty.txt": ("parse", "empty"),
    "blank.txt": ("parse", "empty"),
    "binary.bin": ("parse", "binary"),
    "undecodable.txt": ("parse", "undecodable"),
    "huge.txt": ("read", "too large"),
    "punctuation.txt": ("normalize", "no words"),
}


def _write_inputs(folder) -> dict[str, bytes]:
    rng = random.Random(42)
    files = {
        "empty.txt": b"",
        "blank.txt": b"  \n\t \r\n   \n",
        "binary.bin": bytes(rng.randrange(256) for _ in range(3000)) + b"\x00\x00",
        "undecodable.txt": bytes(rng.randrange(0x80, 0x100) for _ in range(2000)),
        "huge.txt": ("Die Nato tagt. " * 1000).encode("utf-8"),
        "punctuation.txt": "--- *** ... !!!\n???".encode("utf-8"),
        "latin1.txt": LATIN1_TEXT.encode("latin-1"),
        "copy-of-001.txt": (SEEDS / "001_2bfb4537722b85d8.txt").read_bytes(),
    }
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, folder / seed.name)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    assert b"\x00" in files["binary.bin"] and len(files["huge.txt"]) > MAX_BYTES
    return files


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed-inputs")
    files = _write_inputs(folder)
    output = tmp_path_factory.mktemp("bad-out")
    settings = make_settings(output, [str(folder / "*")],
                             read={"max_bytes": MAX_BYTES, "dead_letter_payload_bytes": PAYLOAD_CAP})
    manifest = run_batch(settings, now=FIXED_NOW)
    return folder, files, output, manifest


def rows(output, table: str, sql: str) -> list[tuple]:
    source = f"read_parquet('{output}/{table}/**/*.parquet', hive_partitioning=true)"
    with duckdb.connect() as con:
        return con.sql(sql.format(t=source)).fetchall()


def test_the_run_completes_and_balances(bad_run):
    _, files, _, manifest = bad_run
    c = manifest["counters"]
    assert manifest["status"] == "committed"
    assert c["inputs"] == 5 + len(files)
    assert (c["articles"], c["duplicates"], c["dead_letters"]) == (6, 1, len(DEAD))
    assert c["inputs"] == c["articles"] + c["duplicates"] + c["dead_letters"] and c["balanced"] is True


def test_every_input_lands_exactly_once(bad_run):
    folder, _, output, _ = bad_run
    landed = [os.path.basename(o) for (o,) in
              rows(output, "articles", "SELECT origin FROM {t}")
              + rows(output, "duplicates", "SELECT origin FROM {t}")
              + rows(output, "errors", "SELECT origin FROM {t}")]
    assert sorted(landed) == sorted(p.name for p in folder.iterdir())


def test_dead_letters(bad_run):
    _, files, output, manifest = bad_run
    found = {os.path.basename(r[0]): r[1:] for r in rows(
        output, "errors", "SELECT origin, stage, error, raw, raw_size, run_id, ingested_date FROM {t}")}
    assert sorted(found) == sorted(DEAD)
    for name, (stage, fragment) in DEAD.items():
        got_stage, error, raw, raw_size, run_id, ingested_date = found[name]
        assert got_stage == stage, name
        assert fragment in error.lower(), f"{name}: {error}"
        assert run_id == manifest["run_id"] and ingested_date == FIXED_NOW.date()
        if stage in ("read", "parse"):
            assert raw_size == len(files[name]), name
            assert raw == files[name][:PAYLOAD_CAP], name
        assert raw is None or len(raw) <= PAYLOAD_CAP


def test_latin1_file_becomes_a_sane_article(bad_run):
    _, _, output, _ = bad_run
    (title, body, language), = rows(output, "articles",
                                    "SELECT title, body, language FROM {t} WHERE origin LIKE '%latin1.txt'")
    title_line, body_line = LATIN1_TEXT.split("\n")
    assert (title, body) == (title_line, body_line)
    assert language == "de"


def test_the_copy_of_a_seed_is_a_duplicate(bad_run):
    _, _, output, _ = bad_run
    (origin, duplicate_of, method), = rows(output, "duplicates", "SELECT origin, duplicate_of, method FROM {t}")
    kept = rows(output, "articles", "SELECT article_id, origin FROM {t} WHERE article_id = '%s'" % duplicate_of)
    assert len(kept) == 1
    assert {os.path.basename(origin), os.path.basename(kept[0][1])} == {"copy-of-001.txt", "001_2bfb4537722b85d8.txt"}
    assert method in ("id", "content_hash")


def test_duckdb_counts_match_the_manifest(bad_run):
    _, _, output, manifest = bad_run
    c = manifest["counters"]
    assert rows(output, "articles", "SELECT count(*) FROM {t}") == [(c["articles"],)]
    assert rows(output, "duplicates", "SELECT count(*) FROM {t}") == [(c["duplicates"],)]
    assert rows(output, "errors", "SELECT count(*) FROM {t}") == [(c["dead_letters"],)]
    assert dict(rows(output, "articles", "SELECT language, count(*) FROM {t} GROUP BY 1")) == c["language"]
