"""Dates as feeds write them -> an instant in UTC, and a word when it is doubtful.

Pure functions, no Beam. ``parse_date(text)`` reads

* RFC 822 / RFC 2822 with or without the day name (``Sat, 16 Dec 2023 14:02:33 +0100``,
  ``07 Nov 2015 12:00:00 EST``), also with the month first (``Sat, Dec 16 2023 02:02:33 PM``);
* ISO 8601 / RFC 3339 (``2017-03-05T14:34:00.002+01:00``, ``2022-09-03 09:37:11+03:00``);
* day and month names of the 14 taxonomy languages (de en fr it es pt nl pl cs sk uk ru ro sv),
  abbreviated or written out, nominative or genitive, taken from the CLDR data that babel ships
  (``Seg, 24 Set 2018 19:18:49 -0300``, ``mer, 16 nov 2022 00:38:15 +0100``);
* time-zone abbreviations (MEZ/MESZ/CET/CEST, EST/EDT, PST/PDT, GMT/UTC/UT/Z, ... see ``TZ_OFFSETS``)
  and numeric offsets (``+0100``, ``+01:00``, ``GMT+2``);
* 12-hour clocks (``02:02:33 PM``).

It returns :class:`ParsedDate`: ``instant`` (aware, UTC) or None, ``precision`` (second, minute, day
or none) and ``warning`` (None when nothing is doubtful): ``no time zone, UTC assumed``,
``ambiguous time zone CST read as -06:00``, ``date only``, ``unparsed: '<text>'``.

Why not feedparser's ``*_parsed``: it reads an unknown abbreviation such as ``MEZ`` as UTC without a
word, and gives up on localized month names. Why not dateparser: measured slower and less exact on
the same table (docs/feeds.md, ``bench/evaluate_dates.py`` figures there).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from functools import lru_cache

UTC = dt.timezone.utc

# The languages of configs/topics.yaml.
LANGUAGES = ("de", "en", "fr", "it", "es", "pt", "nl", "pl", "cs", "sk", "uk", "ru", "ro", "sv")

# Offsets in minutes. Unambiguous in news feeds; AMBIGUOUS ones are read as given here and flagged.
TZ_OFFSETS = {
    "Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "WET": 0, "WEZ": 0,
    "BST": 60, "WEST": 60, "WESZ": 60, "CET": 60, "MEZ": 60, "MET": 60,
    "CEST": 120, "MESZ": 120, "MEST": 120, "EET": 120, "OEZ": 120,
    "EEST": 180, "OESZ": 180, "MSK": 180,
    "EST": -300, "EDT": -240, "CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420,
    "AKST": -540, "AKDT": -480, "HST": -600, "AST": -240, "ADT": -180, "NST": -210, "NDT": -150,
    "BRT": -180, "ART": -180, "JST": 540, "KST": 540, "HKT": 480, "SGT": 480, "AWST": 480,
    "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
    "CST": -360, "IST": 330,
}
AMBIGUOUS_TZ = frozenset({"CST", "IST", "AST", "BST"})

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE)
_OFFSET = re.compile(r"^(?:(?:GMT|UTC|UT)\s*)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_TIME = re.compile(r"^(\d{1,2})[:.h](\d{2})(?:[:.](\d{2})(?:[.,]\d+)?)?$")
_NUMERIC_DATE = re.compile(r"^(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})$")
_TOKEN = re.compile(r"[+-]\d{1,2}(?::?\d{2})?|[^\s,]+")


@dataclasses.dataclass(frozen=True)
class ParsedDate:
    instant: dt.datetime | None
    precision: str = "none"
    warning: str | None = None


def _fold(word: str) -> str:
    """Lower case, trailing dots removed, accents kept (and an accent-free twin added by the caller)."""
    return word.strip().strip(".").lower()


def _ascii(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def name_tables() -> tuple[dict[str, int], frozenset[str]]:
    """``(month token -> 1..12, weekday tokens)`` over LANGUAGES from babel's CLDR data.

    Tokens that name different months in two languages are left out (none among these 14 today,
    checked by the tests). Accent-free spellings are added (``marz`` for ``März``).
    """
    from babel import Locale

    months: dict[str, set[int]] = {}
    days: set[str] = set()
    for code in LANGUAGES:
        locale = Locale.parse(code)
        for context in ("format", "stand-alone"):
            for width in ("abbreviated", "wide"):
                for number, name in locale.months[context][width].items():
                    for token in {_fold(name), _ascii(_fold(name))}:
                        months.setdefault(token, set()).add(number)
                for name in locale.days[context][width].values():
                    days.update({_fold(name), _ascii(_fold(name))})
    # English three-letter forms and the 4-letter "sept" used by many feeds.
    for number, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                   "dec"), start=1):
        months.setdefault(name, set()).add(number)
    months.setdefault("sept", set()).add(9)
    table = {token: next(iter(numbers)) for token, numbers in months.items() if len(numbers) == 1 and token}
    return table, frozenset(d for d in days if d)


def _offset_minutes(token: str) -> tuple[int | None, str | None]:
    """(offset, warning) of a zone token; (None, None) when the token is no zone."""
    upper = token.upper()
    if upper in TZ_OFFSETS:
        minutes = TZ_OFFSETS[upper]
        if upper in AMBIGUOUS_TZ:
            sign = "+" if minutes >= 0 else "-"
            return minutes, f"ambiguous time zone {upper} read as {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return minutes, None
    match = _OFFSET.match(token)
    if match and (len(match.group(2)) == 2 or match.group(3) is None or token[:1].isalpha()):
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours <= 14 and minutes < 60:
            return sign * (hours * 60 + minutes), None
    return None, None


def _iso(text: str) -> ParsedDate | None:
    match = _ISO.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if hour is None:
            return ParsedDate(dt.datetime(int(year), int(month), int(day), tzinfo=UTC), "day", "date only")
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        naive = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
    except ValueError:
        return None
    precision = "second" if second is not None else "minute"
    if zone is None:
        return ParsedDate(naive.replace(tzinfo=UTC), precision, "no time zone, UTC assumed")
    if zone.upper() == "Z":
        return ParsedDate(naive.replace(tzinfo=UTC), precision)
    offset, _ = _offset_minutes(zone if ":" in zone or len(zone) == 5 else zone + "00")
    if offset is None:
        return None
    return ParsedDate((naive - dt.timedelta(minutes=offset)).replace(tzinfo=UTC), precision)


def parse_date(text: str | None) -> ParsedDate:
    """Read one date string; see the module docstring."""
    raw = (text or "").strip()
    if not raw:
        return ParsedDate(None)
    iso = _iso(raw)
    if iso is not None:
        return iso
    months, weekdays = name_tables()
    day = month = year = None
    hour = minute = second = None
    meridiem = None
    offset = None
    warnings: list[str] = []
    unknown: list[str] = []
    leading_name = None  # a first word that is a day name in one language and a month in another ("mar")
    for position, token in enumerate(_TOKEN.findall(raw.replace("(", " ").replace(")", " "))):
        word = _fold(token)
        if not word:
            continue
        if position == 0 and word in months and word in weekdays:
            leading_name = word
            continue
        if word in ("am", "a.m", "pm", "p.m"):
            meridiem = word[0]
            continue
        if offset is None:
            minutes, note = _offset_minutes(token.strip("."))
            if minutes is not None:
                offset = minutes
                if note:
                    warnings.append(note)
                continue
        time_match = _TIME.match(word)
        if time_match and hour is None:
            hour, minute = int(time_match.group(1)), int(time_match.group(2))
            second = int(time_match.group(3)) if time_match.group(3) is not None else None
            continue
        numeric = _NUMERIC_DATE.match(word)
        if numeric and day is None:
            first, sep, middle, last = numeric.groups()
            if len(first) == 4:
                year, month, day = int(first), int(middle), int(last)
            elif sep == "/" and int(first) <= 12 < int(middle):
                month, day, year = int(first), int(middle), int(last)
            else:
                day, month, year = int(first), int(middle), int(last)
                if sep == "/" and int(middle) <= 12 and int(first) <= 12 and first != middle:
                    warnings.append("ambiguous numeric date, read day first")
            continue
        if word in months and month is None:
            month = months[word]
            continue
        if word in weekdays or _ascii(word) in weekdays:
            continue
        if word.isdigit():
            number = int(word)
            if len(word) == 4 and year is None:
                year = number
                continue
            if day is None and 1 <= number <= 31:
                day = number
                continue
            if year is None and len(word) == 2:
                year = 2000 + number if number < 70 else 1900 + number
                continue
        if word.endswith(("st", "nd", "rd", "th")) and word[:-2].isdigit() and day is None:
            day = int(word[:-2])
            continue
        if word in ("de", "of", "the", "à", "a", "um", "o", "v", "в", "г", "года", "r", "roku", "at", "le", "el", "-"):
            continue
        unknown.append(token)
    if month is None and leading_name is not None:
        month = months[leading_name]
    if unknown or day is None or month is None or year is None:
        return ParsedDate(None, "none", f"unparsed: {raw!r}")
    if meridiem and hour is not None:
        if hour == 12:
            hour = 0
        if meridiem == "p":
            hour += 12
    try:
        naive = dt.datetime(year, month, day, hour or 0, minute or 0, second or 0)
    except ValueError:
        return ParsedDate(None, "none", f"unparsed: {raw!r}")
    if hour is None:
        precision = "day"
        warnings.append("date only")
    else:
        precision = "second" if second is not None else "minute"
    if offset is None:
        offset = 0
        if hour is not None:
            warnings.append("no time zone, UTC assumed")
    instant = (naive - dt.timedelta(minutes=offset)).replace(tzinfo=UTC)
    return ParsedDate(instant, precision, "; ".join(warnings) or None)
