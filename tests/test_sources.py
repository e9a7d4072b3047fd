"""`source` per input: `--source NAME`, the profile's `sources:` map (validated), feed names."""

from __future__ import annotations

import pickle
import shutil

import duckdb
import pytest
import yaml
from conftest import FIXED_NOW, SEEDS, make_settings

from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.settings import build_settings
from transforms.sources import SourceMap, glob_regex, source_for


def test_glob_regex():
    assert glob_regex("/in/reuters/**").match("/in/reuters/2026/a.txt")
    assert glob_regex("/in/*/a.txt").match("/in/x/a.txt")
    assert not glob_regex("/in/*.txt").match("/in/x/a.txt")  # * stays within a folder
    assert glob_regex("/in/**/*.txt").match("/in/a.txt") and glob_regex("/in/**/*.txt").match("/in/x/y/a.txt")
    assert glob_regex("gs://b/[ab]?.txt").match("gs://b/a1.txt") and not glob_regex("gs://b/[ab]?.txt").match("gs://b/c1.txt")
    assert glob_regex("/in/[!a]*").match("/in/b") and not glob_regex("/in/[!a]*").match("/in/a")


def test_source_map_first_match_wins_and_survives_pickling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mapping = SourceMap([("inbox/reuters/**", "reuters"), ("inbox/**", "inbox")], "files")
    again = pickle.loads(pickle.dumps(mapping))
    for m in (mapping, again):
        assert m(str(tmp_path / "inbox/reuters/a.txt")) == "reuters"
        assert m(str(tmp_path / "inbox/dpa/a.txt")) == "inbox"
        assert m("/elsewhere/a.txt") == "files"
    assert source_for("files") == "files"


@pytest.mark.parametrize("sources, message", [
    (["a"], "sources: expected a mapping"),
    ({"inbox/**": ""}, "expected a non-empty string"),
    ({"inbox/**": "has space"}, "must be 1-100 letters"),
    ({"inbox/**": 3}, "expected a non-empty string"),
])
def test_sources_are_validated(sources, message):
    with pytest.raises(ConfigError, match=message):
        build_settings("local", {"inputs": ["x"], "sources": sources})


def test_source_name_is_validated():
    with pytest.raises(ConfigError, match="source_name"):
        build_settings("local", {"inputs": ["x"], "source_name": "a b"})


def source_counts(output) -> dict:
    con = duckdb.connect()
    rows = con.execute(f"SELECT source, count(*) FROM read_parquet('{output}/articles/**/*.parquet', "
                       "hive_partitioning=true) GROUP BY 1").fetchall()
    dead = con.execute(f"SELECT source, count(*) FROM read_parquet('{output}/errors/**/*.parquet', "
                       "hive_partitioning=true) GROUP BY 1").fetchall() if list(output.glob("errors/**/*.parquet")) else []
    return {"articles": dict(rows), "dead_letters": dict(dead)}


def test_sources_map_names_articles_and_dead_letters_by_path(tmp_path, monkeypatch):
    from pipeline.batch import run_batch

    seeds = sorted(SEEDS.glob("*.txt"))
    for folder, chosen in (("reuters", seeds[:2]), ("dpa", seeds[2:4]), ("misc", seeds[4:])):
        (tmp_path / "inbox" / folder).mkdir(parents=True)
        for seed in chosen:
            shutil.copy(seed, tmp_path / "inbox" / folder / seed.name)
    (tmp_path / "inbox" / "dpa" / "empty.txt").write_bytes(b"")  # a dead letter carries its source too
    monkeypatch.chdir(tmp_path)  # the globs are relative to the working directory
    settings = make_settings(tmp_path / "out", ["inbox/**/*.txt"], sources={"inbox/reuters/**": "reuters",
                                                                              "inbox/dpa/*.txt": "dpa"})
    manifest = run_batch(settings, now=FIXED_NOW)
    assert manifest["counters"]["balanced"]
    assert source_counts(tmp_path / "out") == {"articles": {"reuters": 2, "dpa": 2, "files": 1},
                                               "dead_letters": {"dpa": 1}}


def test_source_option(tmp_path, capsys):
    code = main(["run", "--quiet", "--no-summary", "--input", str(SEEDS / "*.txt"), "--output", str(tmp_path / "out"),
                 "--source", "wire"])
    assert code == 0
    assert source_counts(tmp_path / "out")["articles"] == {"wire": 5}


def test_sources_in_a_profile_file(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text(yaml.safe_dump({"extends": "local", "sources": {"/data/reuters/**": "reuters"}}))
    settings = build_settings(str(profile), {"inputs": ["x"]})
    assert settings.source()("/data/reuters/a.txt") == "reuters"
    assert settings.source()("/data/other/a.txt") == "files"
