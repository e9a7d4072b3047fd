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
from conftest import FIXED_NOW, PROJECT, SEEDS, make_settings, seeds_with_duplicate_and_dead_letter
from PIL import Image

from analyst.views import connect
from analyst.report import (
    CHARTS,
    OPTIONAL_CHARTS,
    ReportError,
    WINDOW_DAYS,
    bucket_unit,
    truncate,
    collect,
    write_report,
)

MIN_PNG_BYTES = 5_000
MIN_SIZE = (600, 200)


@pytest.fixture(scope="module")
def rich_output(tmp_path_factory):
    """Seeds plus an exact copy of one (a duplicate) and an empty file (a dead letter), run for real."""
    from pipeline.batch import run_batch

    base = tmp_path_factory.mktemp("report")
    inputs = seeds_with_duplicate_and_dead_letter(base / "in")
    manifest = run_batch(make_settings(base / "output", [inputs]), now=FIXED_NOW)
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


REQUIRED = sorted(name for key, name in CHARTS.items() if key not in OPTIONAL_CHARTS)


def check_html(index, history: bool):
    """index.html references exactly the charts written; returns the HTML and the chart paths."""
    html = index.read_text(encoding="utf-8")
    referenced = re.findall(r"<img src='([^']+)'", html)
    expected = sorted(REQUIRED + ([CHARTS["history"]] if history else []))
    assert sorted(referenced) == expected
    on_disk = sorted(p.name for p in index.parent.glob("*.png"))
    assert on_disk == expected
    return html, [index.parent / name for name in referenced]


def test_report_on_real_output(rich_output, tmp_path):
    root, manifest = rich_output
    written = write_report(str(root), str(tmp_path / "report"), now=FIXED_NOW)
    index = tmp_path / "report" / "index.html"
    assert written["index"] == str(index)
    # the seeds' publication dates reach back to 2025: a daily window plus the whole-history chart
    html, charts = check_html(index, history=True)
    for png in charts:
        check_png(png)
    c = manifest["counters"]
    assert f"<td>articles</td><td>{c['articles']}</td>" in html
    assert f"<td>dead letters</td><td>{c['dead_letters']}</td>" in html
    assert manifest["run_id"] in html and "nato_spending" in html
    assert "<td>parse</td><td>empty file: no text</td><td>1</td>" in html  # the dead-letter table


def test_report_figures_match_the_data(rich_output):
    root, manifest = rich_output
    con = connect(str(root))
    data = collect(con, str(root))
    everything = con.execute("SELECT article_id, published_date, language, topics, date_source = 'ingested' "
                             "FROM articles").fetchall()
    # undated articles (filed under their ingestion day) are counted apart, never on a date axis
    articles = [row[:4] for row in everything if not row[4]]
    undated = [row[:4] for row in everything if row[4]]
    assert data.undated == len(undated) == 3  # seeds 000, 001 and 004 have no date
    assert sum(n for _, _, n in data.undated_by_day) == 3 and all(d == FIXED_NOW.date() for d, _, _ in data.undated_by_day)
    last = max(d for _, d, _, _ in articles)
    in_window = [a for a in articles if a[1] > last - dt.timedelta(days=WINDOW_DAYS)]
    assert data.window_start == min(d for _, d, _, _ in in_window)
    assert data.older_articles == len(articles) - len(in_window) > 0
    daily = data.daily_topics
    assert daily.unit == "day" and daily.buckets[0] == data.window_start and daily.buckets[-1] == last
    per_label = collections.Counter((d, t) for _, d, _, topics in in_window for t in topics)
    assert per_label
    for label, counts in daily.series.items():
        for day, n in zip(daily.buckets, counts):
            assert n == per_label[(day, label)], (label, day)
    assert sum(daily.total) == len(in_window)
    assert sum(sum(v) for v in data.daily_languages.series.values()) == len(in_window)
    # whole history: the dated seeds span 2025-04-01 .. 2026-01-06 (281 days): too many days, 42 weeks
    history = data.history
    assert history.unit == "week" and history.buckets[0] == dt.date(2025, 3, 31)  # weeks start on Monday
    assert history.buckets[-1] == dt.date(2026, 1, 5) and len(history.buckets) == 41
    per_week = collections.Counter((truncate(d, "week"), t) for _, d, _, topics in articles for t in topics)
    for label, counts in history.series.items():
        for week, n in zip(history.buckets, counts):
            assert n == per_week[(week, label)], (label, week)
    assert sum(history.total) == len(articles) == manifest["counters"]["articles"] - len(undated)
    assert dict(data.languages) == dict(collections.Counter(row[2] for row in everything))
    (run,) = data.runs
    assert (run["inputs_read"], run["duplicates"], run["dead_letters"]) == (
        manifest["counters"]["inputs"], manifest["counters"]["duplicates"], manifest["counters"]["dead_letters"])
    assert sum(n for _, _, n in data.dead_letter_reasons) == manifest["counters"]["dead_letters"]
    assert data.clusters and data.clusters[0][1] >= 2  # the copied seed


def test_history_chart_only_when_articles_predate_the_window(tmp_path, run_pipeline):
    """Dated articles within one window: no history chart (a stale one from before is removed);
    an undated article is listed apart, not drawn on its ingestion day."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SEEDS / "002_6eb87065acbebc2f.txt", inputs / "002.txt")  # dated 2026-01-06 in its text
    body = (SEEDS / "000_c6021543f07dff3e.txt").read_text(encoding="utf-8")
    (inputs / "000_dated.txt").write_text(" date 2026-01-04 " + body, encoding="utf-8")
    shutil.copy(SEEDS / "001_2bfb4537722b85d8.txt", inputs / "001.txt")  # no date: filed under the ingestion day
    root = tmp_path / "output"
    run_pipeline(root, [str(inputs / "*.txt")])
    (root / "report").mkdir()
    (root / "report" / CHARTS["history"]).write_bytes(b"stale")
    data = write_report(str(root), now=FIXED_NOW)["data"]
    assert data.history is None and data.older_articles == 0
    assert data.daily_topics.buckets == [dt.date(2026, 1, 4), dt.date(2026, 1, 5), dt.date(2026, 1, 6)]
    assert sum(data.daily_topics.total) == 2 and data.undated == 1
    html, charts = check_html(root / "report" / "index.html", history=False)
    for png in charts:
        check_png(png)
    assert "Articles without a publication date" in html and "<td>files</td><td>1</td>" in html


def test_report_on_an_output_with_no_articles(tmp_path, run_pipeline):
    """A committed run whose only input became a dead letter: every chart says there is nothing."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.txt").write_bytes(b"")
    root = tmp_path / "output"
    run_pipeline(root, [str(inputs / "*.txt")])
    write_report(str(root), now=FIXED_NOW)
    html, charts = check_html(root / "report" / "index.html", history=False)
    for png in charts:
        check_png(png)
    assert "no articles yet" in html


@pytest.mark.parametrize("make", ["missing", "empty folder", "a file"])
def test_report_refuses_an_output_without_committed_runs(tmp_path, make):
    root = tmp_path / "output"
    if make == "empty folder":
        root.mkdir()
    elif make == "a file":
        root.write_text("not an output root")
    with pytest.raises(ReportError):
        write_report(str(root), now=FIXED_NOW)
    result = subprocess.run([sys.executable, "-m", "pipeline", "report", "--output", str(root)],
                            capture_output=True, text=True, check=False, cwd=PROJECT, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "no committed run" in result.stderr or "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "report").exists() if root.is_dir() else True


def test_every_chart_has_units_and_a_caption(rich_output, tmp_path, monkeypatch):
    """Each chart names what its axes count (units), and each image in index.html has a caption."""
    import analyst.report as report

    figures = []
    real_png = report._png
    monkeypatch.setattr(report, "_png", lambda fig: figures.append(fig) or real_png(fig))
    root, _ = rich_output
    write_report(str(root), str(tmp_path / "r"), now=FIXED_NOW)
    assert len(figures) == len(REQUIRED) + 1  # with the history chart
    for fig in figures:
        labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
        labels += [fig._supylabel.get_text()] if getattr(fig, "_supylabel", None) else []
        text = " ".join(labels)
        assert any(unit in text for unit in ("articles", "inputs", "dead letters")), text
        titles = " ".join(ax.get_title() for ax in fig.axes) + (fig._suptitle.get_text() if fig._suptitle else "")
        assert titles.strip()
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    figures_html = re.findall(r"<figure>(.*?)</figure>", html, re.S)
    assert len(figures_html) == len(REQUIRED) + 1
    for block in figures_html:
        caption = re.search(r"<figcaption>(.+?)</figcaption>", block, re.S)
        assert caption and ("number of" in caption.group(1).lower()), block


def test_report_command(rich_output, tmp_path):
    root, _ = rich_output
    result = subprocess.run([sys.executable, "-m", "pipeline", "report", "--output", str(root),
                             "--report-dir", str(tmp_path / "r")], capture_output=True, text=True, check=False,
                            cwd=PROJECT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "r" / "index.html") in result.stdout
    check_html(tmp_path / "r" / "index.html", history=True)


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
