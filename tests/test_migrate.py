"""Layout migration (1 -> 2) and compaction as commits: real `newsbeam` processes on a real archive.

``tests/fixtures/archive_layout1`` was written by newsbeam at a596166 (schema 1.3.0, the last
version with ``articles/published_date=.../language=...`` folders): two committed runs, the
second over ``faults.make_inputs(extra=10)`` (see fixtures/README.md). Every test copies it.

After every kill -9 (NEWSBEAM_FAULT_AFTER, transforms/storage.py) the killed root must still be
readable by DuckDB's plain Hive glob with exactly the committed article ids (one layout, never
both, never none); then recovery and a normal run leave :func:`faults.check_archive` without
problems and the same ids.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import signal

import duckdb
import pytest

from faults import PROJECT, check, make_inputs, newsbeam

FIXTURE = PROJECT / "tests" / "fixtures" / "archive_layout1"
KILLED = -signal.SIGKILL


def glob_ids(root: pathlib.Path) -> list[str]:
    """The README's promise: the plain Hive glob reads the committed rows."""
    return sorted(r[0] for r in duckdb.sql(
        f"SELECT article_id FROM read_parquet('{root}/articles/**/*.parquet', hive_partitioning=true)").fetchall())


def layout_folders(root: pathlib.Path) -> set[str]:
    return {p.name.split("=", 1)[0] for p in (root / "articles").iterdir() if p.is_dir()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("migrate")
    inputs = make_inputs(base / "in", extra=10)
    old = base / "old"
    shutil.copytree(FIXTURE, old)
    ids = glob_ids(old)
    assert len(ids) == 15 and layout_folders(old) == {"published_date"}
    trace = base / "trace.txt"
    reference = base / "reference"
    shutil.copytree(FIXTURE, reference)
    done = newsbeam("migrate", "--output", str(reference), env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    assert done.returncode == 0, done.stderr[-3000:]
    return {"base": base, "inputs": inputs, "ids": ids, "points": trace.read_text().split()}


def run(root, inputs, *extra):
    return newsbeam("run", "--no-summary", "--input", inputs, "--output", str(root), *extra)


def test_a_run_refuses_an_old_archive_until_it_is_migrated(world, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(FIXTURE, root)
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "_lock" not in p.parts)
    refused = run(root, world["inputs"])
    assert refused.returncode == 2 and "newsbeam migrate" not in refused.stderr
    assert "python -m pipeline migrate --output" in refused.stderr and "layout 1" in refused.stderr
    after = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "_lock" not in p.parts)
    assert after == before  # nothing written, nothing removed

    old_rows = duckdb.sql(f"SELECT article_id, published_date, language, title, body, run_id FROM read_parquet("
                          f"'{root}/articles/**/*.parquet', hive_partitioning=true) ORDER BY 1").fetchall()
    migrated = newsbeam("migrate", "--output", str(root), "--json")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    result = json.loads(migrated.stdout)
    assert result["status"] == "migrated" and result["rows_read"] == result["rows_written"] == 15
    assert result["files_read"] == 4 and result["files_written"] == 3
    assert layout_folders(root) == {"published_month"}
    assert json.loads((root / "_layout.json").read_text())["version"] == 2
    new_rows = duckdb.sql(f"SELECT article_id, published_date, language, title, body, run_id FROM read_parquet("
                          f"'{root}/articles/**/*.parquet', hive_partitioning=true) ORDER BY 1").fetchall()
    assert new_rows == old_rows  # every value kept, the partition values now columns
    months = duckdb.sql(f"SELECT DISTINCT published_month, strftime(published_date, '%Y-%m') FROM read_parquet("
                        f"'{root}/articles/**/*.parquet', hive_partitioning=true)").fetchall()
    assert all(a == b for a, b in months)
    again = newsbeam("migrate", "--output", str(root), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "current"

    assert run(root, world["inputs"]).returncode == 0
    result = check(str(root))
    assert result["problems"] == [] and result["article_ids"] == world["ids"]
    from analyst.views import connect

    con = connect(str(root))
    assert con.execute("SELECT count(*), count(DISTINCT article_id) FROM articles").fetchone() == (15, 15)
    assert con.execute("SELECT kind, count(*) FROM runs WHERE status = 'committed' GROUP BY ALL ORDER BY ALL"
                       ).fetchall() == [("migrate", 1), ("run", 3)]


def test_a_new_root_records_the_layout(world, tmp_path):
    root = tmp_path / "fresh"
    assert run(root, world["inputs"]).returncode == 0
    assert json.loads((root / "_layout.json").read_text())["version"] == 2
    assert layout_folders(root) == {"published_month"}


def test_the_analyst_views_name_the_migration_on_an_old_archive(tmp_path):
    from analyst.views import AnalystError, connect

    root = tmp_path / "old"
    shutil.copytree(FIXTURE, root)
    with pytest.raises(AnalystError, match="migrate"):
        connect(str(root))


def test_a_migration_passes_every_stage(world):
    assert {"parquet", "rewrite_marker", "commit_record", "rewrite_swap", "rewrite_swapped", "manifest",
            "cleanup"} <= set(world["points"]), world["points"]


def kill_migration(world, index: int, tag: str) -> None:
    root = world["base"] / f"{tag}-{index}"
    shutil.copytree(FIXTURE, root)
    killed = newsbeam("migrate", "--output", str(root), env={"NEWSBEAM_FAULT_AFTER": f"*:{index}"})
    assert killed.returncode == KILLED, (index, killed.returncode, killed.stderr[-2000:])
    # A reader at the moment of the crash: one layout, all committed rows, nothing twice.
    assert len(layout_folders(root)) == 1, (index, layout_folders(root))
    assert glob_ids(root) == world["ids"], index
    first = run(root, world["inputs"])
    if first.returncode == 2:  # killed before its commit point: rolled back, still layout 1
        assert "migrate" in first.stderr and layout_folders(root) == {"published_date"}
        assert newsbeam("migrate", "--output", str(root)).returncode == 0
        assert run(root, world["inputs"]).returncode == 0
    else:  # committed: the run finished publishing it first
        assert first.returncode == 0, first.stderr[-2000:]
    assert layout_folders(root) == {"published_month"}
    result = check(str(root))
    point = world["points"][index - 1]
    assert result["problems"] == [], (index, point, result["problems"])
    assert result["article_ids"] == world["ids"], (index, point)
    assert glob_ids(root) == world["ids"]


def test_kill_before_at_and_after_the_commit_point_of_a_migration(world):
    first = {name: number for number, name in reversed(list(enumerate(world["points"], start=1)))}
    for name in ("rewrite_marker", "commit_record", "rewrite_swap", "rewrite_swapped", "manifest"):
        kill_migration(world, first[name], "quick")


@pytest.mark.faults
def test_kill_after_every_step_of_a_migration(world):
    for index in range(1, len(world["points"]) + 1):
        kill_migration(world, index, "every")


# -- compaction ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scheduled(tmp_path_factory, world):
    """A layout-2 root after four scheduled runs, each adding a few undated articles: the current
    month partition holds one small file per run."""
    base = tmp_path_factory.mktemp("compact")
    root = base / "template"
    inputs = base / "in"
    make_inputs(inputs, extra=0)
    from faults import write_article

    for batch in range(4):
        for i in range(batch * 3, batch * 3 + 3):
            write_article(inputs / f"gen_{i:04d}.txt", 100 + i)
        assert run(root, str(inputs / "*.txt")).returncode == 0
    result = check(str(root))
    assert result["problems"] == [] and result["articles"] == 17
    trace = base / "trace.txt"
    reference = base / "reference"
    shutil.copytree(root, reference)
    done = newsbeam("compact", "--output", str(reference), "--min-files", "3", "--json",
                    env={"NEWSBEAM_FAULT_TRACE": str(trace)})
    assert done.returncode == 0, done.stderr[-3000:]
    return {"base": base, "root": root, "inputs": str(inputs / "*.txt"), "ids": result["article_ids"],
            "points": trace.read_text().split(), "reference": reference, "result": json.loads(done.stdout)}


def files_of(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted((root / "articles").rglob("*.parquet"))


def test_compaction_merges_the_small_files_of_a_partition(scheduled):
    root, result = scheduled["reference"], scheduled["result"]
    before = files_of(scheduled["root"])
    after = files_of(root)
    assert result["status"] == "compacted" and result["files_read"] >= 4 and result["files_written"] == 1
    assert len(after) == len(before) - result["files_read"] + 1
    assert result["table_files_before"] == len(before) and result["table_files_after"] == len(after)
    checked = check(str(root))
    assert checked["problems"] == [] and checked["article_ids"] == scheduled["ids"] == glob_ids(root)
    again = newsbeam("compact", "--output", str(root), "--min-files", "3", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "nothing to compact"


def test_run_compact_merges_the_small_files_of_the_months_it_wrote(scheduled, tmp_path):
    """``run --compact``: the run commits, then the month it wrote (one small file per earlier run)
    is compacted in its own commit; nothing lost, nothing doubled."""
    from faults import write_article

    root = tmp_path / "out"
    shutil.copytree(scheduled["root"], root)
    inputs = tmp_path / "in"
    shutil.copytree(pathlib.Path(scheduled["inputs"]).parent, inputs)
    write_article(inputs / "gen_new.txt", 999)
    profile = tmp_path / "profile.yaml"
    profile.write_text("extends: local\nwrite: {compact_min_files: 3}\n")
    before = files_of(root)
    done = run(root, str(inputs / "*.txt"), "--profile", str(profile), "--compact", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads(done.stdout)
    assert manifest["counters"]["articles"] == 1
    compaction = manifest["compaction"]
    assert compaction["status"] == "compacted" and compaction["files_read"] >= 5 and compaction["files_written"] == 1
    assert len(files_of(root)) == len(before) + 1 - compaction["files_read"] + 1
    checked = check(str(root))
    assert checked["problems"] == [] and checked["articles"] == 18
    assert set(scheduled["ids"]) < set(checked["article_ids"]) == set(glob_ids(root))
    again = run(root, str(inputs / "*.txt"), "--profile", str(profile), "--compact", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["compaction"] is None  # nothing new written


def test_run_compact_refuses_no_wait_before_writing(tmp_path):
    done = newsbeam("run", "--input", str(PROJECT / "data" / "seeds" / "*.txt"), "--output", str(tmp_path / "out"),
                    "--compact", "--no-wait")
    assert done.returncode == 2 and "--compact" in done.stderr
    assert not (tmp_path / "out").exists()


def test_replacing_a_run_whose_rows_were_compacted(scheduled, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(scheduled["reference"], root)
    manifests = [json.loads(p.read_text()) for p in (root / "_runs").glob("*.json")]
    first = min((m for m in manifests if m["run_id"].startswith("files-")), key=lambda m: m["started_at"])
    [compaction] = [m["run_id"] for m in manifests if m.get("rewrite")]
    refused = run(root, scheduled["inputs"], "--replace-run", compaction)
    assert refused.returncode == 2 and "replace the runs whose rows it holds" in refused.stderr
    done = run(root, scheduled["inputs"], "--replace-run", first["run_id"])
    assert done.returncode == 0, done.stderr[-3000:]
    checked = check(str(root))
    assert checked["problems"] == [] and checked["article_ids"] == scheduled["ids"]
    runs = duckdb.sql(f"SELECT DISTINCT run_id FROM read_parquet('{root}/articles/**/*.parquet')").fetchall()
    assert (first["run_id"],) not in runs


def kill_compaction(scheduled, index: int, tag: str) -> None:
    name = scheduled["points"][index - 1]
    root = scheduled["base"] / f"{tag}-{index}"
    shutil.copytree(scheduled["root"], root)
    killed = newsbeam("compact", "--output", str(root), "--min-files", "3", env={"NEWSBEAM_FAULT_AFTER": f"*:{index}"})
    assert killed.returncode == KILLED, (name, killed.stderr[-2000:])
    assert glob_ids(root) == scheduled["ids"], name  # a reader at the crash: no row twice, none lost
    assert run(root, scheduled["inputs"]).returncode == 0
    checked = check(str(root))
    assert checked["problems"] == [] and checked["article_ids"] == scheduled["ids"], (name, checked["problems"])


def test_kill_before_at_and_after_the_commit_point_of_a_compaction(scheduled):
    first = {name: number for number, name in reversed(list(enumerate(scheduled["points"], start=1)))}
    for name in ("rewrite_marker", "commit_record", "rewrite_swap", "rewrite_swapped", "manifest"):
        kill_compaction(scheduled, first[name], "kill")


@pytest.mark.faults
def test_kill_after_every_step_of_a_compaction(scheduled):
    for index in range(1, len(scheduled["points"]) + 1):
        kill_compaction(scheduled, index, "every")


# -- the publish step itself -----------------------------------------------------------------------

@pytest.mark.parametrize("atomic", [True, False])
def test_the_folder_exchange_is_idempotent_with_and_without_renameat2(tmp_path, monkeypatch, atomic):
    from transforms import layout

    if not atomic:
        monkeypatch.setattr(layout, "exchange", lambda a, b: False)
    live, staged = tmp_path / "articles", tmp_path / "_staging" / "r" / "articles"
    (live / "published_date=2026-01-06").mkdir(parents=True)
    (live / "published_date=2026-01-06" / "old.parquet").write_bytes(b"old")
    (staged / "published_month=2026-01").mkdir(parents=True)
    (staged / "published_month=2026-01" / "new.parquet").write_bytes(b"new")
    (staged / layout.MARKER).write_text("staged\n")
    for _ in range(3):  # a crash after the exchange repeats the step: nothing changes any more
        layout._swap_local(str(live), str(staged))
        assert sorted(p.name for p in live.iterdir()) == ["published_month=2026-01"]
        assert not (live / layout.MARKER).exists()
    replaced = staged if atomic else tmp_path / "_staging" / "r" / "articles-replaced"
    assert (replaced / "published_date=2026-01-06" / "old.parquet").read_bytes() == b"old"
