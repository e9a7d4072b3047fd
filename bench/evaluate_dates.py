"""Compare date parsers on the hand-written table tests/fixtures/feeds/date_forms.tsv.

    python -m bench.evaluate_dates [TABLE]

Prints, per parser, how many rows give the expected UTC instant to the second (a row that expects
no date counts as right when the parser gives none) and the mean time per string. Writes nothing.
Exits 2 when the table is missing. Candidates: transforms.dates (ours), dateparser, feedparser's own
date handlers, dateutil. htmldate is not a candidate: it finds a page's date in HTML and returns a
calendar day, not an instant.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
import time
import warnings

TABLE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "feeds" / "date_forms.tsv"
UTC = dt.timezone.utc


def load_table(path: pathlib.Path) -> list[tuple[str, dt.datetime | None, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, expected, note = (line.split("\t") + ["", ""])[:3]
        rows.append((text, dt.datetime.fromisoformat(expected) if expected else None, note))
    return rows


def _ours():
    from transforms.dates import parse_date

    return lambda text: parse_date(text).instant


def _dateparser():
    import dateparser

    from transforms.dates import LANGUAGES

    settings = {"RETURN_AS_TIMEZONE_AWARE": True, "TO_TIMEZONE": "UTC", "TIMEZONE": "UTC",
                "PREFER_DAY_OF_MONTH": "first", "STRICT_PARSING": True}
    return lambda text: dateparser.parse(text, languages=list(LANGUAGES), settings=settings)


def _feedparser():
    from feedparser.datetimes import _parse_date

    def parse(text):
        parsed = _parse_date(text)
        return dt.datetime(*parsed[:6], tzinfo=UTC) if parsed else None
    return parse


def _dateutil():
    from dateutil import parser

    from transforms.dates import TZ_OFFSETS

    zones = {name: minutes * 60 for name, minutes in TZ_OFFSETS.items()}

    def parse(text):
        try:
            value = parser.parse(text, tzinfos=zones)
        except (ValueError, OverflowError):
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return parse


CANDIDATES = {"newsbeam transforms.dates": _ours, "dateparser": _dateparser, "feedparser": _feedparser,
              "dateutil": _dateutil}


def _same(got: dt.datetime | None, expected: dt.datetime | None) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    return abs((got.astimezone(UTC) - expected).total_seconds()) < 1


def evaluate(rows, repeat: int = 5) -> list[dict]:
    results = []
    for name, factory in CANDIDATES.items():
        try:
            parse = factory()
        except ImportError as err:
            results.append({"parser": name, "error": str(err)})
            continue
        right, wrong = 0, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for text, expected, note in rows:
                try:
                    got = parse(text)
                except Exception:  # noqa: BLE001 - a crashing parser counts as wrong
                    got = None
                if _same(got, expected):
                    right += 1
                else:
                    wrong.append(note or text)
            start = time.perf_counter()
            for _ in range(repeat):
                for text, _expected, _note in rows:
                    try:
                        parse(text)
                    except Exception:  # noqa: BLE001, S110
                        pass
            per_call = (time.perf_counter() - start) / (repeat * len(rows))
        results.append({"parser": name, "right": right, "rows": len(rows), "us_per_string": per_call * 1e6,
                        "wrong": wrong})
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = pathlib.Path(argv[0]) if argv else TABLE
    if not path.is_file():
        print(f"no date table at {path}", file=sys.stderr)
        return 2
    rows = load_table(path)
    for result in evaluate(rows):
        if "error" in result:
            print(f"{result['parser']}: not installed ({result['error']})")
            continue
        print(f"{result['parser']}: {result['right']}/{result['rows']} right, "
              f"{result['us_per_string']:.0f} µs per string; wrong: {', '.join(result['wrong']) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
