"""The HTML report in a real headless browser (Chromium): a screenshot, and what the page shows.

``python -m analyst.screenshot --output OUT --png docs/report.png`` writes the report of OUT to a
temporary folder and screenshots it; ``make report-screenshot`` refreshes docs/report.png from the
bundled seeds this way. :func:`probe` loads the page and reports, from inside the browser, how many
images loaded, which did not, and which figures lack a caption (used by the browser test).
Needs a Chromium binary (Debian: ``apt-get install chromium``); exits 2 without one.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-dev-shm-usage", "--virtual-time-budget=10000")

PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const figures = [...document.querySelectorAll('figure')];
  const uncaptioned = figures.filter(f => !(f.querySelector('figcaption') || {}).textContent).length;
  const width = document.documentElement.clientWidth;
  const overflowing = images.filter(i => i.getBoundingClientRect().right > width + 1).map(i => i.getAttribute('src'));
  document.body.setAttribute('data-probe', JSON.stringify({
    images: images.length, broken, figures: figures.length, uncaptioned, overflowing,
    headings: [...document.querySelectorAll('h2, h3')].map(h => h.textContent)}));
});
</script>"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser() -> str:
    path = find_browser()
    if path is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    return path


def screenshot(index: str | os.PathLike, png: str | os.PathLike, width: int = 1200, height: int = 1600) -> None:
    """Load ``index`` (a local HTML file) and write a ``width`` x ``height`` PNG of its top."""
    url = pathlib.Path(index).resolve().as_uri()
    subprocess.run([_browser(), *FLAGS, f"--window-size={width},{height}", f"--screenshot={png}", url],
                   check=True, capture_output=True, timeout=120)


def probe(index: str | os.PathLike, width: int = 1200) -> dict:
    """What the page shows once loaded in the browser (images loaded, broken, captions, headings)."""
    index = pathlib.Path(index)
    page = index.with_name(index.stem + ".probe.html")
    page.write_text(index.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        done = subprocess.run([_browser(), *FLAGS, f"--window-size={width},1600", "--dump-dom", page.resolve().as_uri()],
                              check=True, capture_output=True, text=True, timeout=120)
    finally:
        page.unlink()
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    if not match:
        raise RuntimeError("the page did not finish loading in the browser")
    return json.loads(html.unescape(match.group(1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyst.screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="output root of a run")
    parser.add_argument("--png", required=True, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args(argv)
    if find_browser() is None:
        print("screenshot: no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    from analyst.report import ReportError, write_report

    with tempfile.TemporaryDirectory() as folder:
        try:
            written = write_report(args.output, folder)
        except ReportError as err:
            print(f"screenshot: {err}", file=sys.stderr)
            return 2
        screenshot(written["index"], args.png, args.width, args.height)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
