"""A static report of an output root: ``index.html`` plus PNG charts, all read through the analyst views.

Three layers, each usable alone:

* ``collect(con)`` runs the report's queries on a connection from
  :func:`pipeline.analyst.connect` and returns plain data (:class:`ReportData`);
* ``chart_*`` functions turn that data into PNG bytes with matplotlib's
  object API (``matplotlib.figure.Figure``, Agg canvas: no display, no pyplot
  state);
* ``write_report`` writes the PNGs and ``index.html`` (local path, or any
  Beam filesystem such as ``gs://`` when the report directory is remote).

Every chart still renders, with an explicit "no ... yet" message, on an
output with no rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import os
from typing import Any, Sequence

from pipeline.analyst import connect, join

REPORT_DIR = "report"
# Time buckets for the trend charts: the finest unit that keeps at most MAX_BUCKETS points.
BUCKET_UNITS = ("day", "week", "month", "year")
MAX_BUCKETS = 62
DPI = 100
CHARTS = {
    "topics": "topics_over_time.png",
    "languages": "languages_over_time.png",
    "sources": "top_sources.png",
    "language_mix": "language_mix.png",
    "dedup": "dedup_rate.png",
    "dead_letters": "dead_letters.png",
}
MAX_LABEL_CHARS = 60
MAX_SERIES = 8            # topics or languages drawn in a trend chart (largest first)
MAX_ANNOTATED_BARS = 120  # trend bars carry their count when there are at most this many
MIN_RUN_SLOTS = 5         # the dedup chart is at least this many bars wide, so one run is not a wall
RECENT_RUNS = 20


class ReportError(Exception):
    """The report cannot be made (matplotlib missing, report directory not writable)."""


@dataclasses.dataclass
class ReportData:
    output: str
    totals: dict[str, Any]
    unit: str
    buckets: list[dt.date]
    topic_series: dict[str, list[int]]
    all_series: list[int]
    language_series: dict[str, list[int]]
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


def _series(con, unit: str, buckets: list[dt.date], sql: str) -> dict[str, list[int]]:
    """``sql`` yields (bucket, key, n); returns key -> counts aligned with ``buckets`` (zeros filled)."""
    index = {b: i for i, b in enumerate(buckets)}
    series: dict[str, list[int]] = {}
    for bucket, key, n in _rows(con, sql.format(unit=unit)):
        series.setdefault(key, [0] * len(buckets))[index[bucket]] = n
    return dict(sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0])))


def collect(con, output: str) -> ReportData:
    """Every figure the report shows, from the views of ``con``."""
    totals = _dicts(con, """
        SELECT (SELECT count(*) FROM articles) AS articles,
               (SELECT count(*) FROM duplicates) AS duplicates,
               (SELECT count(*) FROM dead_letters) AS dead_letters,
               (SELECT count(*) FROM runs) AS runs,
               (SELECT count(DISTINCT source) FROM articles) AS sources,
               (SELECT count(DISTINCT language) FROM articles) AS languages,
               (SELECT count(*) FROM articles WHERE len(topics) > 0) AS labeled,
               (SELECT min(published_date) FROM articles) AS first_date,
               (SELECT max(published_date) FROM articles) AS last_date,
               (SELECT count(*) FROM feed_health) AS feeds""")[0]
    unit = bucket_unit(totals["first_date"], totals["last_date"])
    buckets = [r[0] for r in _rows(con, f"""
        SELECT CAST(unnest(generate_series(date_trunc('{unit}', min(published_date)),
                                           date_trunc('{unit}', max(published_date)),
                                           INTERVAL 1 {unit})) AS DATE)
        FROM articles HAVING count(*) > 0""")]
    bucket = "CAST(date_trunc('{unit}', published_date) AS DATE)"
    topic_series = _series(con, unit, buckets, f"""
        SELECT {bucket} AS b, label, count(DISTINCT article_id) FROM article_topics GROUP BY ALL""")
    all_series = _series(con, unit, buckets, f"SELECT {bucket} AS b, 'all', count(*) FROM articles GROUP BY ALL")
    language_series = _series(con, unit, buckets, f"""
        SELECT {bucket} AS b, language, count(*) FROM articles GROUP BY ALL""")
    return ReportData(
        output=output,
        totals=totals,
        unit=unit,
        buckets=buckets,
        topic_series=topic_series,
        all_series=all_series.get("all", [0] * len(buckets)),
        language_series=language_series,
        sources=_rows(con, "SELECT source, count(*) AS n FROM articles GROUP BY source ORDER BY n DESC, source"),
        languages=_rows(con, "SELECT language, count(*) AS n FROM articles GROUP BY language ORDER BY n DESC, language"),
        runs=list(reversed(_dicts(con, f"""
            SELECT run_id, started_at, inputs_read, articles, duplicates, dead_letters, balanced
            FROM runs ORDER BY started_at DESC, run_id DESC LIMIT {RECENT_RUNS}"""))),
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

def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ReportError("the report needs matplotlib: pip install 'newsbeam[report]' (make setup installs it)") from err
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots()


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


def chart_trend(data: ReportData, series: dict[str, list[int]], title: str, with_total: bool) -> bytes:
    """Grouped bars of articles per time bucket, one bar per key (topic or language), zero-filled.

    Bars side by side, so equal counts never hide each other; with ``with_total`` a wide grey bar
    behind each group shows all articles of the bucket. At most MAX_SERIES keys (largest first).
    """
    fig, ax = _figure(11, 5)
    if not data.buckets:
        _empty(ax, "No articles yet")
        ax.set_title(title)
        return _png(fig)
    shown = dict(list(series.items())[:MAX_SERIES])
    if len(series) > len(shown):
        title += f" (top {len(shown)} of {len(series)})"
    x = list(range(len(data.buckets)))
    if with_total:
        ax.bar(x, data.all_series, width=0.9, color="#dddddd", label=f"all articles ({sum(data.all_series)})")
        for xi, n in enumerate(data.all_series):
            highest = max((counts[xi] for counts in shown.values()), default=0)
            if n > highest and len(x) <= MAX_ANNOTATED_BARS:  # equal heights would print over a bar's count
                ax.text(xi, n, f"{n} in all", ha="center", va="bottom", fontsize=8, color="#777777")
    width = 0.8 / max(1, len(shown))
    annotate = len(x) * max(1, len(shown)) <= MAX_ANNOTATED_BARS
    for i, (key, counts) in enumerate(shown.items()):
        offsets = [xi - 0.4 + width * (i + 0.5) for xi in x]
        ax.bar(offsets, counts, width=width * 0.95, label=f"{key} ({sum(counts)})")
        if annotate:
            for xo, n in zip(offsets, counts):
                if n:
                    ax.text(xo, n, str(n), ha="center", va="bottom", fontsize=8)
    if not shown:
        ax.text(0.5, 0.9, "No article carries a label", ha="center", transform=ax.transAxes, color="#555555")
    step = max(1, len(x) // 24)
    ax.set_xticks(x[::step], [_bucket_label(b, data.unit) for b in data.buckets][::step], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(x) - 0.4)
    top = max([*data.all_series, *(n for counts in shown.values() for n in counts)] if with_total else
              [n for counts in shown.values() for n in counts] or [1])
    ax.set_ylim(0, top * 1.15 + 0.1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"articles per {data.unit}")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
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
        ax.set_xlabel("articles")
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
        ax.set_xlabel("articles")
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
    for key, color in parts:
        values = [r[key] or 0 for r in runs]
        ax.bar(x, values, bottom=bottom, width=0.6, color=color, label=key.replace("_", " "))
        for xi, base, value in zip(x, bottom, values):
            if value:
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
    ax.set_ylabel("inputs")
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
        _empty(ax, "No dead letters: every input became an article or a duplicate")
    else:
        _barh(ax, [f"{stage}: {error}" for stage, error, _ in reasons], [n for _, _, n in reasons],
              [str(n) for _, _, n in reasons], "#c44e52")
        ax.set_xlabel("dead letters")
    ax.set_title(f"Dead letters by stage and reason ({total} in all)")
    return _png(fig)


def render_charts(data: ReportData, top: int) -> dict[str, bytes]:
    per = f"per {data.unit}"
    return {
        CHARTS["topics"]: chart_trend(data, data.topic_series, f"Articles {per} by topic (publication date)", True),
        CHARTS["languages"]: chart_trend(data, data.language_series, f"Articles {per} by language", False),
        CHARTS["sources"]: chart_sources(data, top),
        CHARTS["language_mix"]: chart_language_mix(data),
        CHARTS["dedup"]: chart_dedup(data),
        CHARTS["dead_letters"]: chart_dead_letters(data, top),
    }


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
    span = f"{t['first_date']} to {t['last_date']}" if t["first_date"] else "no articles yet"
    inputs = t["articles"] + t["duplicates"] + t["dead_letters"]
    totals = _table(["figure", "value"], [
        ("articles", t["articles"]),
        ("publication dates", span),
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
        assert name in charts
        return (f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    sections = [
        f"<h1>newsbeam report</h1><p class='meta'>Output <code>{html.escape(data.output)}</code>, generated "
        f"{generated_at.strftime('%Y-%m-%d %H:%M UTC')}. Every figure comes from the DuckDB views "
        f"(<code>python -m pipeline query</code>).</p>",
        "<h2>Totals</h2>" + totals,
        "<h2>Topics over time</h2>",
        figure("topics", f"Articles per {data.unit} (publication date) carrying each topic label; an article with "
                         f"two labels counts once per label. Grey: all articles of the period. "
                         f"Legend: total per label."),
        _table(["label", "articles", "mean score"], data.topics),
        "<h2>Languages</h2>",
        figure("languages", f"Articles per {data.unit} (publication date) by detected language."),
        figure("language_mix", "Share of articles per detected language ('und' = undetermined)."),
        "<h2>Sources</h2>",
        figure("sources", "Articles per source (feed name, or the input name for files)."),
        "<h2>Deduplication</h2>",
        figure("dedup", "Each committed run's inputs, split into articles written, duplicates dropped and dead "
                        "letters (from the run manifests); the label is the run's dedup rate = duplicates / inputs."),
        "<h3>Largest clusters</h3>",
        _table(["story", "copies", "sources", "source names"], data.clusters),
        "<h2>Dead letters</h2>",
        figure("dead_letters", "Inputs that could not become articles, by stage and reason (table dead_letters)."),
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


def write_report(output: str, report_dir: str | None = None, *, top: int = 15,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Write ``index.html`` and the chart PNGs for ``output``; returns their paths."""
    report_dir = report_dir or join(output, REPORT_DIR)
    con = connect(output)
    try:
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
        index = join(report_dir, "index.html")
        _write(index, render_html(data, charts, generated_at).encode("utf-8"))
    except OSError as err:
        raise ReportError(f"cannot write the report to {report_dir}: {err}") from err
    return {"index": index, "charts": written, "data": data}
