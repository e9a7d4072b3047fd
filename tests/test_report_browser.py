"""The HTML report in real headless Chromium: every chart loads, every figure has a caption, the
undated articles have their own section, and a screenshot is a real picture of the page.

Skipped when no Chromium is installed (Debian: `apt-get install chromium`); `make test-browser`
runs it with NEWSBEAM_REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("matplotlib")
from conftest import FIXED_NOW, PROJECT, make_settings, seeds_with_duplicate_and_dead_letter
from PIL import Image

from analyst.report import CHARTS, OPTIONAL_CHARTS, write_report
from analyst.screenshot import find_browser, probe, screenshot

if find_browser() is None:
    if os.environ.get("NEWSBEAM_REQUIRE_BROWSER"):
        raise RuntimeError("NEWSBEAM_REQUIRE_BROWSER is set but no Chromium is installed (apt-get install chromium)")
    pytest.skip("no Chromium installed (Debian: apt-get install chromium); `make test-browser` requires it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from pipeline.batch import run_batch

    base = tmp_path_factory.mktemp("browser")
    run_batch(make_settings(base / "output", [seeds_with_duplicate_and_dead_letter(base / "in")]), now=FIXED_NOW)
    return write_report(str(base / "output"), str(base / "report"), now=FIXED_NOW)


def test_the_page_loads_every_chart_with_a_caption(report):
    shown = probe(report["index"])
    expected = len(CHARTS)  # the seeds reach back far enough for the history chart too
    assert shown["images"] == expected and shown["broken"] == [], shown
    assert shown["figures"] == expected and shown["uncaptioned"] == 0, shown
    assert shown["overflowing"] == [], "a chart is wider than the page"
    assert "Articles without a publication date" in shown["headings"]
    assert set(OPTIONAL_CHARTS) <= set(CHARTS)


def test_screenshot_is_a_picture_of_the_report(report, tmp_path):
    png = tmp_path / "shot.png"
    screenshot(report["index"], png, 1200, 1600)
    image = Image.open(png)
    assert image.size == (1200, 1600)
    colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot looks blank"


def test_the_docs_keep_a_screenshot():
    image = Image.open(PROJECT / "docs" / "report.png")
    assert image.format == "PNG" and image.size[0] >= 800
