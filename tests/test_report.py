"""`newsbeam report`: index.html and PNG charts from real pipeline output (and from an empty one)."""

from __future__ import annotations

import collections
import datetime as dt
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402  (a matplotlib dependency)

from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings  # noqa: E402
from pipeline.analyst import connect  # noqa: E402
from pipeline.report import CHARTS, bucket_unit, collect, write_report  # noqa: E402

MIN_PNG_BYTES = 5_000
MIN_SIZE = (600, 200)


@pytest.fixture(scope="module")
def rich_output(tmp_path_factory):
    """Seeds plus an exact copy of one (a duplicate) and an empty file (a dead letter), run for real."""
    from pipeline.batch import run_batch

    base = tmp_path_factory.mktemp("report")
    inputs = base / "in"
    inputs.mkdir()
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, inputs / seed.name)
    shutil.copy(sorted(SEEDS.glob("*.txt"))[0], inputs / "zz_copy.txt")
    (inputs / "zz_empty.txt").write_bytes(b"")
    manifest = run_batch(make_settings(base / "output", [str(inputs / "*.txt")]), now=FIXED_NOW)
    return base / "output", manifest


def check_png(path) -> Image.Image:
    assert path.stat().st_size > MIN_PNG_BYTES, path
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n", path
    image = Image.open(path)
    image.load()
    assert image.format == "PNG"
    assert image.size[0] >= MIN_SIZE[0] and image.size[1] >= MIN_SIZE[1], (path, image.size)
    colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20, f"{path} looks blank"
    return image


def check_html(index, charts):
    html = index.read_text(encoding="utf-8")
    referenced = re.findall(r"<img src='([^']+)'", html)
    assert sorted(referenced) == sorted(CHARTS.values())
    for name in referenced:
        assert (index.parent / name).exists()
    assert sorted(p.name for p in charts) == sorted(CHARTS.values())
    return html


def test_report_on_real_output(rich_output, tmp_path):
    root, manifest = rich_output
    written = write_report(str(root), str(tmp_path / "report"), now=FIXED_NOW)
    index = tmp_path / "report" / "index.html"
    assert written["index"] == str(index)
    charts = [tmp_path / "report" / name for name in CHARTS.values()]
    for png in charts:
        check_png(png)
    html = check_html(index, charts)
    c = manifest["counters"]
    assert f"<td>articles</td><td>{c['articles']}</td>" in html
    assert f"<td>dead letters</td><td>{c['dead_letters']}</td>" in html
    assert manifest["run_id"] in html and "nato_spending" in html
    assert "<td>parse</td><td>empty file: no text</td><td>1</td>" in html  # the dead-letter table


def test_report_figures_match_the_data(rich_output):
    root, manifest = rich_output
    con = connect(str(root))
    data = collect(con, str(root))
    articles = con.execute("SELECT published_date, language, topics FROM articles").fetchall()
    # seeds span 2025-04-01 .. 2026-11-21: too long for days or weeks, so months
    assert data.unit == "month" and data.buckets[0] == dt.date(2025, 4, 1) and data.buckets[-1] == dt.date(2026, 11, 1)
    assert len(data.buckets) == 20
    per_label = collections.Counter((d.replace(day=1), t) for d, _, topics in articles for t in topics)
    for label, counts in data.topic_series.items():
        for bucket, n in zip(data.buckets, counts):
            assert n == per_label[(bucket, label)], (label, bucket)
    assert sum(data.all_series) == len(articles) == manifest["counters"]["articles"]
    assert sum(sum(v) for v in data.language_series.values()) == len(articles)
    assert dict(data.languages) == dict(collections.Counter(lang for _, lang, _ in articles))
    (run,) = data.runs
    assert (run["inputs_read"], run["duplicates"], run["dead_letters"]) == (
        manifest["counters"]["inputs"], manifest["counters"]["duplicates"], manifest["counters"]["dead_letters"])
    assert sum(n for _, _, n in data.dead_letter_reasons) == manifest["counters"]["dead_letters"]
    assert data.clusters and data.clusters[0][1] >= 2  # the copied seed


def test_report_on_an_output_with_no_articles(tmp_path):
    root = tmp_path / "output"  # does not exist: no run yet
    write_report(str(root), now=FIXED_NOW)
    report = root / "report"
    charts = [report / name for name in CHARTS.values()]
    for png in charts:
        check_png(png)
    html = check_html(report / "index.html", charts)
    assert "no articles yet" in html


def test_report_command(rich_output, tmp_path):
    root, _ = rich_output
    result = subprocess.run([sys.executable, "-m", "pipeline", "report", "--output", str(root),
                             "--report-dir", str(tmp_path / "r")], capture_output=True, text=True,
                            cwd=PROJECT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "r" / "index.html") in result.stdout
    check_html(tmp_path / "r" / "index.html", [tmp_path / "r" / n for n in CHARTS.values()])


@pytest.mark.parametrize("first,last,unit", [
    (dt.date(2026, 1, 1), dt.date(2026, 1, 1), "day"),
    (dt.date(2026, 1, 1), dt.date(2026, 3, 3), "day"),      # 62 days
    (dt.date(2026, 1, 1), dt.date(2026, 3, 4), "week"),     # 63 days
    (dt.date(2025, 4, 1), dt.date(2026, 11, 21), "month"),
    (dt.date(1990, 1, 1), dt.date(2026, 1, 1), "year"),
    (None, None, "day"),
])
def test_bucket_unit(first, last, unit):
    assert bucket_unit(first, last) == unit
