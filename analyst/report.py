"""A static report of an output root: ``index.html`` plus PNG charts, all read through the analyst views.

Three layers, each usable alone:

* ``collect(con)`` runs the report's queries on a connection from
  :func:`analyst.views.connect` and returns plain data (:class:`ReportData`);
* ``chart_*`` functions turn that data into PNG bytes with matplotlib's
  object API (``matplotlib.figure.Figure``, Agg canvas: no display, no pyplot
  state);
* ``write_report`` writes the PNGs and ``index.html`` (local path, or any
  Beam filesystem such as ``gs://`` when the report directory is remote).

Every chart still renders, with an explicit "no ... yet" message, on an
output with no rows. Articles without a publication date of their own (``date_source =
'ingested'``, ``published_at`` null; they are filed under the day they were read) are never
drawn on a publication-date axis: the report counts and lists them apart. An output root that
holds no committed run is refused (:class:`ReportError`, exit 2), so a mistyped ``--output``
never turns into an empty report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import os
from collections.abc import Sequence
from typing import Any

from analyst.views import connect, join

REPORT_DIR = "report"
# Daily trend charts cover the last WINDOW_DAYS days that have articles (publication dates).
WINDOW_DAYS = 62
# The whole-history chart (drawn when articles predate the window) uses the finest of these
# units that keeps at most MAX_BUCKETS periods.
BUCKET_UNITS = ("day", "week", "month", "year")
MAX_BUCKETS = 62
DPI = 100
CHARTS = {
    "topics": "topics_per_day.png",
    "languages": "languages_per_day.png",
    "history": "topics_history.png",  # only when some articles predate the daily window
    "sources": "top_sources.png",
    "language_mix": "language_mix.png",
    "dedup": "dedup_rate.png",
    "dead_letters": "dead_letters.png",
}
OPTIONAL_CHARTS = ("history",)
MAX_LABEL_CHARS = 60
MAX_SERIES = 8            # panels (topics or languages) in a trend chart, largest first
MAX_ANNOTATED_BARS = 62   # trend bars carry their count when a panel has at most this many
MIN_LABELED_SEGMENT = 0.06  # dedup-chart segments lower than this share of the tallest bar carry no number
MIN_TREND_SLOTS = 7       # trend panels are at least this many buckets wide
MIN_RUN_SLOTS = 5         # the dedup chart is at least this many bars wide, so one run is not a wall
RECENT_RUNS = 20
UNDATED_LISTED = 20       # undated articles listed by title in the report
# Articles with a publication date of their own; the others carry the ingestion date in
# published_date and are shown apart ("undated").
DATED = "(date_source IS DISTINCT FROM 'ingested' AND published_at IS NOT NULL)"


class ReportError(Exception):
    """The report cannot be made (matplotlib missing, report directory not writable)."""


@dataclasses.dataclass
class Trend:
    """Counts per time bucket (zero-filled), per key (topic label or language), plus all articles."""

    unit: str
    buckets: list[dt.date]
    series: dict[str, list[int]]
    total: list[int]


@dataclasses.dataclass
class ReportData:
    output: str
    totals: dict[str, Any]
    window_start: dt.date | None
    older_articles: int
    undated: int
    undated_by_day: list[tuple[dt.date, str, int]]
    undated_examples: list[tuple[dt.date, str, str, str]]
    daily_topics: Trend
    daily_languages: Trend
    history: Trend | None
    sources: list[tuple[str, int]]
    languages: list[tuple[str, int]]
    runs: list[dict[str, Any]]
    dead_letter_reasons: list[tuple[str, str, int]]
    topics: list[tuple[str, int, float]]
    clusters: list[tuple[str, int, int, list[str]]]
    feeds: list[dict[str, Any]]


def _rows(con, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def _dicts(con, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def bucket_unit(first: dt.date | None, last: dt.date | None) -> str:
    """Finest of day/week/month/year with at most MAX_BUCKETS buckets between ``first`` and ``last``."""
    if first is None or last is None:
        return "day"
    days = (last - first).days
    spans = {"day": days + 1, "week": days // 7 + 2, "month": (last.year - first.year) * 12 + last.month - first.month + 1,
             "year": last.year - first.year + 1}
    for unit in BUCKET_UNITS:
        if spans[unit] <= MAX_BUCKETS:
            return unit
    return "year"


def truncate(day: dt.date, unit: str) -> dt.date:
    """Start of the ``unit`` containing ``day`` (weeks start on Monday, as DuckDB's date_trunc)."""
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    return day


def bucket_range(first: dt.date, last: dt.date, unit: str) -> list[dt.date]:
    """Every bucket start from ``first``'s bucket to ``last``'s, in order."""
    buckets, day = [], truncate(first, unit)
    while day <= last:
        buckets.append(day)
        if unit == "day":
            day += dt.timedelta(days=1)
        elif unit == "week":
            day += dt.timedelta(days=7)
        elif unit == "month":
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day = day.replace(year=day.year + 1)
    return buckets


def trend(con, unit: str, first: dt.date, last: dt.date, keys_sql: str) -> Trend:
    """Zero-filled counts per ``unit`` between ``first`` and ``last`` (inclusive).

    ``keys_sql`` is ``(published_date, key, article_id)`` rows (e.g. from ``article_topics``);
    each key counts distinct articles per bucket.
    """
    buckets = bucket_range(first, last, unit)
    index = {b: i for i, b in enumerate(buckets)}
    where = "published_date BETWEEN ? AND ?"
    bucket = f"CAST(date_trunc('{unit}', published_date) AS DATE)"
    series: dict[str, list[int]] = {}
    for b, key, n in _rows(con, f"SELECT {bucket}, key, count(DISTINCT article_id) FROM ({keys_sql}) "
                                f"WHERE {where} GROUP BY ALL", [first, last]):
        series.setdefault(key, [0] * len(buckets))[index[b]] = n
    total = [0] * len(buckets)
    for b, n in _rows(con, f"SELECT {bucket}, count(*) FROM articles WHERE {DATED} AND {where} GROUP BY ALL",
                      [first, last]):
        total[index[b]] = n
    return Trend(unit, buckets, dict(sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))), total)


TOPIC_KEYS = (f"SELECT published_date, label AS key, article_id FROM article_topics "
              f"WHERE article_id IN (SELECT article_id FROM articles WHERE {DATED})")
LANGUAGE_KEYS = f"SELECT published_date, language AS key, article_id FROM articles WHERE {DATED}"


def collect(con, output: str) -> ReportData:
    """Every figure the report shows, from the views of ``con``."""
    totals = _dicts(con, f"""
        SELECT (SELECT count(*) FROM articles) AS articles,
               (SELECT count(*) FROM duplicates) AS duplicates,
               (SELECT count(*) FROM dead_letters) AS dead_letters,
               (SELECT count(*) FROM runs WHERE kind = 'run') AS runs,
               (SELECT count(DISTINCT source) FROM articles) AS sources,
               (SELECT count(DISTINCT language) FROM articles) AS languages,
               (SELECT count(*) FROM articles WHERE len(topics) > 0) AS labeled,
               (SELECT min(published_date) FROM articles WHERE {DATED}) AS first_date,
               (SELECT max(published_date) FROM articles WHERE {DATED}) AS last_date,
               (SELECT count(*) FROM articles WHERE NOT {DATED}) AS undated,
               (SELECT count(*) FROM feed_health) AS feeds""")[0]
    first, last = totals["first_date"], totals["last_date"]
    empty = Trend("day", [], {}, [])
    window_start, older, history = None, 0, None
    daily_topics = daily_languages = empty
    if first is not None:
        # the window starts at the first article date within the last WINDOW_DAYS days
        window_start = _rows(con, f"SELECT min(published_date) FROM articles WHERE {DATED} AND published_date >= ?",
                             [last - dt.timedelta(days=WINDOW_DAYS - 1)])[0][0]
        daily_topics = trend(con, "day", window_start, last, TOPIC_KEYS)
        daily_languages = trend(con, "day", window_start, last, LANGUAGE_KEYS)
        older = totals["articles"] - totals["undated"] - sum(daily_languages.total)
        if older:
            history = trend(con, bucket_unit(first, last), first, last, TOPIC_KEYS)
    return ReportData(
        output=output,
        totals=totals,
        window_start=window_start,
        older_articles=older,
        undated=totals["undated"],
        undated_by_day=_rows(con, f"""
            SELECT published_date AS ingested, source, count(*) AS n FROM articles WHERE NOT {DATED}
            GROUP BY ALL ORDER BY ingested DESC, n DESC, source"""),
        undated_examples=_rows(con, f"""
            SELECT published_date, source, coalesce(title, left(body, 80)), origin FROM articles WHERE NOT {DATED}
            ORDER BY published_date DESC, origin LIMIT {UNDATED_LISTED}"""),
        daily_topics=daily_topics,
        daily_languages=daily_languages,
        history=history,
        sources=_rows(con, "SELECT source, count(*) AS n FROM articles GROUP BY source ORDER BY n DESC, source"),
        languages=_rows(con, "SELECT language, count(*) AS n FROM articles GROUP BY language ORDER BY n DESC, language"),
        runs=list(reversed(_dicts(con, f"""
            SELECT run_id, started_at, inputs_read, articles, duplicates, dead_letters, balanced
            FROM runs WHERE kind = 'run' ORDER BY started_at DESC, run_id DESC LIMIT {RECENT_RUNS}"""))),
        dead_letter_reasons=_rows(con, """
            SELECT stage, error, count(*) AS n FROM dead_letters GROUP BY stage, error ORDER BY n DESC, stage, error"""),
        topics=_rows(con, """
            SELECT label, count(DISTINCT article_id) AS n, round(avg(score), 2)
            FROM article_topics GROUP BY label ORDER BY n DESC, label"""),
        clusters=_rows(con, """
            SELECT coalesce(title, cluster_id), size, source_count, sources FROM clusters
            WHERE size > 1 ORDER BY size DESC, cluster_id LIMIT 10"""),
        feeds=_dicts(con, """
            SELECT feed, healthy, last_outcome, last_http_status, fetches, failures, articles, last_error
            FROM feed_health ORDER BY healthy, feed"""),
    )


# --- charts -----------------------------------------------------------------------------------

def _figure(width: float, height: float, rows: int = 1):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ReportError("the report needs matplotlib: pip install 'newsbeam[report]' (make setup installs it)") from err
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, 1, sharex=True) if rows > 1 else fig.subplots()


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#555555", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _short(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bucket_label(day: dt.date, unit: str) -> str:
    return {"day": day.isoformat(), "week": f"week of {day.isoformat()}", "month": day.strftime("%Y-%m"),
            "year": str(day.year)}[unit]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def color_map(keys: Sequence[str]) -> dict[str, str]:
    """A fixed colour per key (sorted by name), so a topic has the same colour in every chart."""
    return {key: f"C{i % 10}" for i, key in enumerate(sorted(keys))}


def chart_trend(trend: Trend, title: str, total_panel: bool, note: str = "",
                colors: dict[str, str] | None = None) -> bytes:
    """Small multiples: one bar panel per key (topic or language) over the same zero-filled time axis.

    Panels share the x axis and the y scale (the optional grey "all articles" panel on top has its
    own), so no series hides another and counts compare across panels. Bars carry their counts when
    a panel has at most MAX_ANNOTATED_BARS buckets. At most MAX_SERIES keys, largest first.
    """
    shown = dict(list(trend.series.items())[:MAX_SERIES])
    if len(trend.series) > len(shown):
        title += f" (top {len(shown)} of {len(trend.series)})"
    panels = ([("all articles", trend.total, "#999999")] if total_panel else []) + [
        (key, counts, (colors or {}).get(key, f"C{i % 10}")) for i, (key, counts) in enumerate(shown.items())]
    if not trend.buckets or not panels:
        fig, ax = _figure(11, 3)
        _empty(ax, "No articles with a publication date yet" if not trend.buckets
               else "No article carries a label in this period")
        ax.set_title(title + (f"\n{note}" if note else ""))
        return _png(fig)
    fig = _figure(11, 1.0 + 1.45 * len(panels) + (0.8 if not shown else 0), rows=len(panels))[0]
    axes = fig.axes
    x = list(range(len(trend.buckets)))
    label_top = max([n for _, counts, _ in panels[1 if total_panel else 0:] for n in counts] or [1])
    annotate = len(x) <= MAX_ANNOTATED_BARS
    for ax, (key, counts, color) in zip(axes, panels):
        ax.bar(x, counts, width=0.8, color=color)
        if annotate:
            for xi, n in zip(x, counts):
                if n:
                    ax.text(xi, n, str(n), ha="center", va="bottom", fontsize=7)
        top = max(counts) if key == "all articles" and total_panel else label_top
        ax.set_ylim(0, max(top, 1) * 1.3)
        ax.yaxis.get_major_locator().set_params(integer=True, nbins=3)
        ax.set_title(f"{key} ({_plural(sum(counts), 'article')})", loc="left", fontsize=9, pad=2)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        pad = max(0, MIN_TREND_SLOTS - len(x)) / 2  # a day or two of data is not drawn as a wall
        ax.set_xlim(-0.6 - pad, len(x) - 0.4 + pad)
        ax.tick_params(axis="x", labelbottom=False)
    if total_panel and not shown:
        axes[0].text(0.5, -0.45, "No article in this period carries a topic label", ha="center",
                     transform=axes[0].transAxes, color="#555555")
    step = max(1, -(-len(x) // 24))
    last_ax = axes[-1]
    last_ax.tick_params(axis="x", labelbottom=True)
    last_ax.set_xticks(x[::step], [_bucket_label(b, trend.unit) for b in trend.buckets][::step],
                       rotation=45, ha="right", fontsize=8)
    fig.supylabel(f"articles per {trend.unit}", fontsize=9)
    last_ax.set_xlabel(f"publication {trend.unit}" + (" (starting Monday)" if trend.unit == "week" else "")
                       + ", UTC", fontsize=9)
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=11)
    return _png(fig)


def _barh(ax, labels: list[str], values: list[float], annotations: list[str], color: str) -> None:
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=color)
    ax.set_yticks(y, [_short(label) for label in labels])
    for yi, value, note in zip(y, values, annotations):
        ax.text(value, yi, f" {note}", va="center", fontsize=9)
    ax.set_xlim(0, max(values) * 1.18)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def chart_sources(data: ReportData, top: int) -> bytes:
    shown = data.sources[:top]
    fig, ax = _figure(9, max(2.5, 0.4 * len(shown) + 1.2))
    title = "Articles per source"
    if len(data.sources) > len(shown):
        title += f" (top {len(shown)} of {len(data.sources)} sources)"
    if not shown:
        _empty(ax, "No articles yet")
    else:
        _barh(ax, [s for s, _ in shown], [n for _, n in shown], [str(n) for _, n in shown], "#4c72b0")
        ax.set_xlabel("articles (count)")
    ax.set_title(title)
    return _png(fig)


def chart_language_mix(data: ReportData) -> bytes:
    fig, ax = _figure(9, max(2.5, 0.4 * len(data.languages) + 1.2))
    total = sum(n for _, n in data.languages)
    if not total:
        _empty(ax, "No articles yet")
    else:
        _barh(ax, [lang for lang, _ in data.languages], [n for _, n in data.languages],
              [f"{n} ({n / total:.0%})" for _, n in data.languages], "#55a868")
        ax.set_xlabel("articles (count; share of all articles in brackets)")
    ax.set_title(f"Language mix ({total} articles)")
    return _png(fig)


def chart_dedup(data: ReportData) -> bytes:
    """Per run (oldest first): inputs split into articles, duplicates and dead letters; dedup rate on top."""
    fig, ax = _figure(11, 5)
    runs = data.runs
    if not runs:
        _empty(ax, "No committed runs yet")
        ax.set_title("Inputs per run: articles, duplicates, dead letters")
        return _png(fig)
    x = list(range(len(runs)))
    parts = [("articles", "#4c72b0"), ("duplicates", "#dd8452"), ("dead_letters", "#c44e52")]
    bottom = [0] * len(runs)
    highest = max(sum(r[key] or 0 for key, _ in parts) for r in runs) or 1
    for key, color in parts:
        values = [r[key] or 0 for r in runs]
        ax.bar(x, values, bottom=bottom, width=0.6, color=color, label=key.replace("_", " "))
        for xi, base, value in zip(x, bottom, values):
            if value >= MIN_LABELED_SEGMENT * highest:  # thinner segments have no room for a number
                ax.text(xi, base + value / 2, str(value), ha="center", va="center", fontsize=9, color="white")
        bottom = [b + v for b, v in zip(bottom, values)]
    for xi, run, height in zip(x, runs, bottom):
        inputs = run["inputs_read"] or 0
        rate = (run["duplicates"] or 0) / inputs if inputs else 0.0
        ax.text(xi, height, f"{rate:.1%} dup", ha="center", va="bottom", fontsize=9)
    total_inputs = sum(r["inputs_read"] or 0 for r in runs)
    total_dups = sum(r["duplicates"] or 0 for r in runs)
    overall = total_dups / total_inputs if total_inputs else 0.0
    tilt = len(runs) > 3
    ax.set_xticks(x, [_short(r["run_id"], 28) for r in runs], rotation=30 if tilt else 0,
                  ha="right" if tilt else "center", fontsize=8)
    slots = max(len(runs), MIN_RUN_SLOTS)
    pad = (slots - len(runs)) / 2
    ax.set_xlim(-0.5 - pad, len(runs) - 0.5 + pad)
    ax.set_ylim(0, max(bottom) * 1.15 or 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("inputs (count)")
    ax.set_xlabel("committed run, oldest first")
    plural = "s" if len(runs) != 1 else ""
    ax.set_title(f"Inputs per run: articles, duplicates, dead letters (dedup rate {overall:.1%} "
                 f"over the last {len(runs)} run{plural})")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _png(fig)


def chart_dead_letters(data: ReportData, top: int) -> bytes:
    reasons = data.dead_letter_reasons[:top]
    total = sum(n for _, _, n in data.dead_letter_reasons)
    fig, ax = _figure(11, max(2.5, 0.4 * len(reasons) + 1.2))
    if not reasons:
        _empty(ax, "No dead letters: every input became an article or a duplicate" if data.totals["runs"]
               else "No runs yet")
    else:
        _barh(ax, [f"{stage}: {error}" for stage, error, _ in reasons], [n for _, _, n in reasons],
              [str(n) for _, _, n in reasons], "#c44e52")
        ax.set_xlabel("dead letters (count of inputs)")
    ax.set_title(f"Dead letters by stage and reason ({total} in all)")
    return _png(fig)


def render_charts(data: ReportData, top: int) -> dict[str, bytes]:
    window = "no articles yet"
    if data.window_start is not None:
        last = data.totals["last_date"]
        window = f"on {last}" if data.window_start == last else f"{data.window_start} to {last}"
    older = (f"{_plural(data.older_articles, 'older article')} in the whole-history chart"
             if data.older_articles else "")
    topic_colors = color_map([label for label, _, _ in data.topics])
    language_colors = color_map([language for language, _ in data.languages])
    charts = {
        CHARTS["topics"]: chart_trend(data.daily_topics, f"Articles per day by topic, {window}", True, older,
                                      topic_colors),
        CHARTS["languages"]: chart_trend(data.daily_languages, f"Articles per day by language, {window}", False,
                                         older, language_colors),
        CHARTS["sources"]: chart_sources(data, top),
        CHARTS["language_mix"]: chart_language_mix(data),
        CHARTS["dedup"]: chart_dedup(data),
        CHARTS["dead_letters"]: chart_dead_letters(data, top),
    }
    if data.history is not None:
        charts[CHARTS["history"]] = chart_trend(
            data.history, f"Articles per {data.history.unit} by topic, all publication dates "
                          f"({data.totals['first_date']} to {data.totals['last_date']})", True, "", topic_colors)
    return charts


# --- html ---------------------------------------------------------------------------------------

def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z")
    return str(value)


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222}
h1{margin-bottom:0}.meta{color:#666;margin-top:.3em}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em}table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f4f4f4}.none{color:#888}
.totals td:first-child{font-weight:600}"""


def render_html(data: ReportData, charts: dict[str, bytes], generated_at: dt.datetime) -> str:
    t = data.totals
    span = (f"{t['first_date']} to {t['last_date']}" if t["first_date"]
            else "no dated articles yet" if t["articles"] else "no articles yet")
    inputs = t["articles"] + t["duplicates"] + t["dead_letters"]
    totals = _table(["figure", "value"], [
        ("articles", t["articles"]),
        ("publication dates", span),
        ("without a publication date", f"{t['undated']} (listed apart, not drawn on any date axis)"),
        ("with a topic label", f"{t['labeled']} ({t['labeled'] / t['articles']:.0%})" if t["articles"] else "0"),
        ("sources", t["sources"]),
        ("languages", t["languages"]),
        ("duplicates", f"{t['duplicates']} ({t['duplicates'] / inputs:.1%} of inputs)" if inputs else "0"),
        ("dead letters", t["dead_letters"]),
        ("committed runs", t["runs"]),
        ("feeds", t["feeds"]),
    ]).replace("<table>", "<table class='totals'>", 1)

    def figure(key: str, caption: str) -> str:
        name = CHARTS[key]
        if name not in charts:
            return ""
        return (f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    sections = [
        (f"<h1>newsbeam report</h1><p class='meta'>Output <code>{html.escape(data.output)}</code>, generated "
        f"{generated_at.strftime('%Y-%m-%d %H:%M UTC')}. Every figure comes from the DuckDB views "
        f"(<code>newsbeam query</code>).</p>"),
        "<h2>Totals</h2>" + totals,
        "<h2>Topics over time</h2>",
        figure("topics", f"Bars: number of articles per day (publication date, UTC) carrying each topic label, "
                         f"from the first publication date within {WINDOW_DAYS} days of the latest one; an article "
                         f"with two labels counts in both panels. Top panel: all dated articles of the day. "
                         f"Articles without a publication date are not drawn (see below)."),
        figure("history", f"Whole history: number of articles per {data.history.unit if data.history else 'period'} "
                          f"(publication date, UTC) carrying each label, including the "
                          f"{_plural(data.older_articles, 'article')} older than the daily window."),
        _table(["label", "articles", "mean score"], data.topics),
        "<h3>Articles without a publication date</h3>",
        (f"<p>{data.undated} article{'s' if data.undated != 1 else ''} gave no publication date "
         "(<code>date_source = 'ingested'</code>, <code>published_at</code> empty). They are filed under the "
         "day they were read, so the charts above leave them out instead of showing them as published that "
         "day. Per ingestion day and source:</p>" if data.undated else
         "<p>Every article has a publication date of its own.</p>"),
        _table(["ingested on", "source", "articles"], data.undated_by_day) if data.undated else "",
        (_table(["ingested on", "source", "title or start of text", "origin"], data.undated_examples)
         if data.undated else ""),
        "<h2>Languages</h2>",
        figure("languages", "Bars: number of articles per day (publication date, UTC) by detected language, same "
                            "window; undated articles are not drawn."),
        figure("language_mix", "Number of articles per detected language, with its share of all articles "
                               "('und' = undetermined)."),
        "<h2>Sources</h2>",
        figure("sources", "Number of articles per source (the feed's name, or the source name given for files)."),
        "<h2>Deduplication</h2>",
        figure("dedup", "Number of inputs of each committed run, split into articles written, duplicates and dead "
                        "letters (from the run manifests); the label on top is the run's dedup rate = duplicates / "
                        "inputs, in percent."),
        "<h3>Largest clusters</h3>",
        _table(["story", "copies", "sources", "source names"], data.clusters),
        "<h2>Dead letters</h2>",
        figure("dead_letters", "Number of inputs that could not become articles, by stage and reason (view "
                               "dead_letters)."),
        _table(["stage", "reason", "inputs"], data.dead_letter_reasons),
        "<h2>Runs</h2>",
        _table(["run", "started", "inputs", "articles", "duplicates", "dead letters", "balanced"],
               [tuple(r.values()) for r in reversed(data.runs)]),
    ]
    if data.feeds:
        sections += ["<h2>Feeds</h2>", _table(list(data.feeds[0].keys()), [tuple(f.values()) for f in data.feeds])]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>newsbeam report</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n")


# --- files --------------------------------------------------------------------------------------

def _write(path: str, data: bytes) -> None:
    if "://" in path:
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
            sink.write(data)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temp = f"{path}.inprogress"
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


def _delete(path: str) -> None:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        if FileSystems.exists(path):
            FileSystems.delete([path])
    elif os.path.exists(path):
        os.remove(path)


def write_report(output: str, report_dir: str | None = None, *, top: int = 15,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Write ``index.html`` and the chart PNGs for ``output``; returns their paths."""
    report_dir = report_dir or join(output, REPORT_DIR)
    if "://" not in output and not os.path.isdir(output):
        raise ReportError(f"output {output!r} does not exist (give the --output root of a run)")
    con = connect(output)
    try:
        if not _rows(con, "SELECT count(*) FROM runs")[0][0]:
            raise ReportError(f"output {output!r} holds no committed run (give the --output root of a run; "
                              f"a run that failed or was interrupted is not shown)")
        data = collect(con, output)
    finally:
        con.close()
    charts = render_charts(data, top)
    generated_at = now or dt.datetime.now(dt.timezone.utc)
    written = []
    try:
        for name, png in charts.items():
            path = join(report_dir, name)
            _write(path, png)
            written.append(path)
        for key in OPTIONAL_CHARTS:
            stale = join(report_dir, CHARTS[key])
            if CHARTS[key] not in charts:
                _delete(stale)
        index = join(report_dir, "index.html")
        _write(index, render_html(data, charts, generated_at).encode("utf-8"))
    except OSError as err:
        raise ReportError(f"cannot write the report to {report_dir}: {err}") from err
    return {"index": index, "charts": written, "data": data}
